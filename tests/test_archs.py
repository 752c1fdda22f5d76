"""Architectures: exact BasicSR parameter counts and key names, shapes, and hand-computed
behaviour of the residual scalings, the bilinear base, EDSR's normalisation and CSD slicing."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from srlib.archs import (
    ARCHS, EDSR, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, MSRResNet,
    RRDBNet, UNetDiscriminatorSN, VGGStyleDiscriminator, count_params, pixel_unshuffle,
)
from srlib.archs.rrdbnet import RRDB, ResidualDenseBlock

torch.set_num_threads(1)


def tiny_rrdb(scale=4):
    return RRDBNet(3, 3, scale=scale, num_feat=8, num_block=2, num_grow_ch=4)


def zero_(module):
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    return module


# ---- exact parameter counts (reference numbers of the official models) -------------------
@pytest.mark.parametrize("make, expected", [
    (lambda: RRDBNet(3, 3), 16_697_987),
    (lambda: RRDBNet(3, 3, scale=2), 16_703_171),  # conv_first sees 12 channels: +9*64*9
    (lambda: MSRResNet(), 1_517_571),
    (lambda: EDSR(3, 3), 1_517_571),
    (lambda: EDSR(3, 3, num_feat=256, num_block=32, res_scale=0.1), 43_089_923),
    (lambda: VGGStyleDiscriminator(3, 64), 14_499_401),
    (lambda: UNetDiscriminatorSN(3), 4_376_897),
])
def test_parameter_counts(make, expected):
    assert count_params(make()) == expected


def test_csd_student_parameter_count():
    with torch.device("meta"):
        teacher = EDSR(3, 3, num_feat=256, num_block=32, upscale=4, res_scale=0.1)
    # 0.25 x 256 = 64 channels: conv_first 3*64*9+64, 64 body convs of 64*64*9+64,
    # conv_after_body 64*64*9+64, two upsampler convs 64->256, conv_last 64*3*9+3
    by_hand = (3 * 64 * 9 + 64) + 65 * (64 * 64 * 9 + 64) + 2 * (64 * 256 * 9 + 256) + (64 * 3 * 9 + 3)
    assert by_hand == 2_699_267
    assert teacher.num_params(0.25) == 2_699_267
    assert teacher.num_params(1.0) == count_params(teacher) == 43_089_923
    assert 15.9 < teacher.num_params(1.0) / teacher.num_params(0.25) < 16.0
    # the student is exactly an EDSR 64 x 32
    with torch.device("meta"):
        assert count_params(EDSR(3, 3, num_feat=64, num_block=32)) == 2_699_267


# ---- state-dict keys -----------------------------------------------------------------------
def test_rrdbnet_keys_match_basicsr():
    keys = set(tiny_rrdb().state_dict())
    for k in ["conv_first.weight", "body.0.rdb1.conv1.weight", "body.1.rdb3.conv5.bias",
              "conv_body.weight", "conv_up1.weight", "conv_up2.weight", "conv_hr.weight",
              "conv_last.weight", "conv_last.bias"]:
        assert k in keys
    assert len(keys) == 2 * (2 + 2 * 3 * 5 + 4)  # weights+biases of conv_first, 30 body convs, 4 tail convs


def test_edsr_keys_match_basicsr():
    keys = list(EDSR(3, 3, num_feat=8, num_block=2).state_dict())
    assert keys == ["conv_first.weight", "conv_first.bias",
                    "body.0.conv1.weight", "body.0.conv1.bias", "body.0.conv2.weight", "body.0.conv2.bias",
                    "body.1.conv1.weight", "body.1.conv1.bias", "body.1.conv2.weight", "body.1.conv2.bias",
                    "conv_after_body.weight", "conv_after_body.bias",
                    "upsample.0.weight", "upsample.0.bias", "upsample.2.weight", "upsample.2.bias",
                    "conv_last.weight", "conv_last.bias"]  # the mean is not saved (as BasicSR)


def test_msrresnet_and_discriminator_keys():
    assert {"conv_first.weight", "body.15.conv2.bias", "upconv1.weight", "upconv2.weight",
            "conv_hr.weight", "conv_last.weight"} <= set(MSRResNet(num_feat=4).state_dict())
    assert "upconv2.weight" not in MSRResNet(num_feat=4, upscale=2).state_dict()
    unet = UNetDiscriminatorSN(3, num_feat=4).state_dict()
    for i in range(1, 9):
        assert {f"conv{i}.weight_orig", f"conv{i}.weight_u", f"conv{i}.weight_v"} <= set(unet)
    assert {"conv0.weight", "conv0.bias", "conv9.weight", "conv9.bias"} <= set(unet)
    vgg = VGGStyleDiscriminator(3, 4, input_size=256).state_dict()
    assert {"conv5_1.weight", "bn5_1.running_mean", "linear1.weight", "linear2.bias"} <= set(vgg)
    assert "conv5_0.weight" not in VGGStyleDiscriminator(3, 4).state_dict()


# ---- shapes --------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_shapes(scale):
    model = tiny_rrdb(scale)
    assert model.conv_first.weight.shape[1] == 3 * {4: 1, 2: 4, 1: 16}[scale]
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 3, 8 * scale, 8 * scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_msrresnet_and_edsr_shapes(scale):
    x = torch.rand(1, 3, 6, 5)
    assert MSRResNet(num_feat=8, num_block=1, upscale=scale)(x).shape == (1, 3, 6 * scale, 5 * scale)
    assert EDSR(3, 3, num_feat=8, num_block=1, upscale=scale)(x).shape == (1, 3, 6 * scale, 5 * scale)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="scale"):
        RRDBNet(3, 3, scale=3)
    with pytest.raises(ValueError, match="upscale"):
        EDSR(3, 3, upscale=5)
    with pytest.raises(ValueError, match="multiples of 2"):
        tiny_rrdb(2)(torch.rand(1, 3, 7, 8))


# ---- hand-computed behaviour ---------------------------------------------------------------
def test_pixel_unshuffle_layout_and_inverse():
    x = torch.arange(2 * 2 * 4 * 6, dtype=torch.float32).view(2, 2, 4, 6)
    y = pixel_unshuffle(x, 2)
    assert y.shape == (2, 8, 2, 3)
    # channel c*4 + i*2 + j holds x[c, i::2, j::2]
    assert torch.equal(y[:, 1 * 4 + 1 * 2 + 0], x[:, 1, 1::2, 0::2])
    assert torch.equal(y, F.pixel_unshuffle(x, 2))
    assert torch.equal(F.pixel_shuffle(y, 2), x)


def test_residual_scaling_of_dense_blocks_is_0_2():
    rdb = zero_(ResidualDenseBlock(4, 2))
    with torch.no_grad():
        rdb.conv5.bias.fill_(1.0)
    x = torch.randn(1, 4, 3, 3)
    assert torch.allclose(rdb(x), x + 0.2)  # x + 0.2 * conv5(...) with conv5 == 1
    rrdb = zero_(RRDB(4, 2))
    for r in (rrdb.rdb1, rrdb.rdb2, rrdb.rdb3):
        with torch.no_grad():
            r.conv5.bias.fill_(1.0)
    # three dense blocks: x + 0.6; then RRDB: 0.2 * (x + 0.6) + x
    assert torch.allclose(rrdb(x), 1.2 * x + 0.12, atol=1e-6)


def test_rrdbnet_tail_uses_nearest_upsampling():
    model = zero_(tiny_rrdb())
    with torch.no_grad():  # make every tail conv copy channel 0 (centre tap) and conv_first too
        for conv in (model.conv_first, model.conv_up1, model.conv_up2, model.conv_hr, model.conv_last):
            conv.weight[0, 0, 1, 1] = 1.0
    x = torch.rand(1, 3, 3, 3)  # positive, so LeakyReLU is the identity
    out = model(x)[0, 0]
    assert torch.allclose(out, x[0, 0].repeat_interleave(4, 0).repeat_interleave(4, 1))


def test_msrresnet_adds_bilinear_base():
    model = zero_(MSRResNet(num_feat=8, num_block=1, upscale=4))
    x = torch.rand(1, 3, 5, 4)
    base = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert torch.allclose(model(x), base)


def test_edsr_normalisation_and_mean():
    model = zero_(EDSR(3, 3, num_feat=8, num_block=1))
    out = model(torch.rand(1, 3, 4, 4))
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    assert torch.allclose(out, mean.expand_as(out))  # zero network output -> 0 / 255 + mean
    with torch.no_grad():  # conv_last bias of 255 adds exactly 1 after dividing by img_range
        model.conv_last.bias.fill_(255.0)
    assert torch.allclose(model(torch.rand(1, 3, 4, 4)), mean + 1.0)


def _basicsr_edsr_forward(m, x):
    """BasicSR's EDSR forward, written with the modules themselves (no slicing)."""
    h = (x - m.mean) * m.img_range
    h = m.conv_first(h)
    r = m.conv_after_body(m.body(h)) + h
    return m.conv_last(m.upsample(r)) / m.img_range + m.mean


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_width_one_equals_plain_forward(scale):
    torch.manual_seed(0)
    m = EDSR(3, 3, num_feat=8, num_block=2, upscale=scale, res_scale=0.1)
    x = torch.rand(2, 3, 5, 6)
    assert torch.allclose(m(x), _basicsr_edsr_forward(m, x), atol=1e-5)
    assert torch.allclose(m(x, width=1.0), m(x))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_student_is_the_leading_slice(scale):
    torch.manual_seed(0)
    teacher = EDSR(3, 3, num_feat=16, num_block=2, upscale=scale, res_scale=0.1)
    student = EDSR(3, 3, num_feat=4, num_block=2, upscale=scale, res_scale=0.1)
    sd = {}
    for k, v in student.state_dict().items():
        t = teacher.state_dict()[k]
        sd[k] = t[tuple(slice(0, n) for n in v.shape)]  # leading slice in every dimension
    student.load_state_dict(sd)
    x = torch.rand(1, 3, 5, 4)
    assert torch.allclose(teacher(x, width=0.25), _basicsr_edsr_forward(student, x), atol=1e-5)
    assert not torch.allclose(teacher(x, width=0.25), teacher(x), atol=1e-3)


def test_leading_slice_before_pixel_shuffle_is_leading_channels_after():
    torch.manual_seed(0)
    feat, c = torch.randn(1, 8, 3, 3), 2
    w, b = torch.randn(32, 8, 3, 3), torch.randn(32)  # conv 8 -> 4*8 before PixelShuffle(2)
    full = F.pixel_shuffle(F.conv2d(feat, w, b, padding=1), 2)
    part = F.pixel_shuffle(F.conv2d(feat, w[: 4 * c], b[: 4 * c], padding=1), 2)
    assert torch.allclose(part, full[:, :c])


def test_edsr_student_trains_only_the_leading_slice():
    m = EDSR(3, 3, num_feat=8, num_block=1, upscale=2)
    m(torch.rand(1, 3, 4, 4), width=0.5).sum().backward()
    g = m.body[0].conv1.weight.grad
    assert g[:4, :4].abs().sum() > 0 and g[4:].abs().sum() == 0 and g[:, 4:].abs().sum() == 0
    assert m.conv_last.weight.grad[:, 4:].abs().sum() == 0
    assert m.upsample[0].weight.grad[16:].abs().sum() == 0


def test_edsr_rejects_bad_width():
    m = EDSR(3, 3, num_feat=8, num_block=1)
    for bad in (0.0, 1.5, 0.3):
        with pytest.raises(ValueError, match="width"):
            m(torch.rand(1, 3, 4, 4), width=bad)


# ---- discriminators ------------------------------------------------------------------------
def test_vgg_discriminator_output_and_size_check():
    d = VGGStyleDiscriminator(3, 4)
    assert d(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    with pytest.raises(ValueError, match="128"):
        d(torch.rand(1, 3, 96, 96))


def test_unet_discriminator_spectral_norm():
    torch.manual_seed(0)
    d = UNetDiscriminatorSN(3, num_feat=4)
    x = torch.rand(1, 3, 16, 16)
    assert d(x).shape == (1, 1, 16, 16)
    for _ in range(30):  # power iterations run in training mode
        d(x)
    w = d.conv2.weight.reshape(d.conv2.weight.shape[0], -1)
    assert abs(torch.linalg.matrix_norm(w, ord=2).item() - 1.0) < 1e-2
    # a saved state dict (weight_orig/u/v) reproduces the same function in eval mode
    d.eval()
    d2 = UNetDiscriminatorSN(3, num_feat=4)
    d2.load_state_dict(d.state_dict())
    d2.eval()
    assert torch.allclose(d(x), d2(x), atol=1e-6)
    assert not UNetDiscriminatorSN(3, 4, skip_connection=False)(x).equal(d(x))


# ---- small GANs ----------------------------------------------------------------------------
def test_mlp_gan_shapes_and_spectral_norm():
    g, d = MLPGenerator(z_dim=2, hidden=16, depth=3), MLPDiscriminator(hidden=16, depth=3)
    assert g(torch.randn(5, 2)).shape == (5, 2) and d(torch.randn(5, 2)).shape == (5, 1)
    # depth 3: Linear(2,16), Linear(16,16) x2, Linear(16,2)
    assert count_params(g) == (2 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 2 + 2)
    sn = MLPDiscriminator(hidden=16, depth=2, spectral_norm=True)
    assert sum(k.endswith("weight_orig") for k in sn.state_dict()) == 3


def test_dcgan_shapes_and_counts():
    g = DCGANGenerator(z_dim=2, ngf=2, channels=1)
    img = g(torch.randn(3, 2))
    assert img.shape == (3, 1, 32, 32) and img.abs().max() <= 1.0
    # ConvT 2->8, 8->4, 4->2, 2->1 (4x4, no bias) + BN(8), BN(4), BN(2)
    assert count_params(g) == 16 * (2 * 8 + 8 * 4 + 4 * 2 + 2 * 1) + 2 * (8 + 4 + 2)
    d = DCGANDiscriminator(ngf=4, channels=1)
    assert d(img).shape == (3, 1)
    dsn = DCGANDiscriminator(ngf=4, channels=1, spectral_norm=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in dsn.modules())
    assert dsn(img).shape == (3, 1)


def test_archs_registry():
    assert ARCHS == {"rrdbnet": RRDBNet, "msrresnet": MSRResNet, "edsr": EDSR}
