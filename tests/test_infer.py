"""Tests of srlib.infer: tiled upscaling and colour correction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from srlib.errors import ImageReadError
from srlib.infer import as_float_image, color_correct, to_uint8, upscale


def conv_net(n_convs: int, scale: int = 2, seed: int = 0) -> nn.Module:
    """``n_convs`` 3x3 convs then pixel shuffle: receptive radius ``n_convs`` LR pixels."""
    torch.manual_seed(seed)
    layers, ch = [], 3
    for i in range(n_convs):
        out = 3 * scale * scale if i == n_convs - 1 else 8
        layers += [nn.Conv2d(ch, out, 3, padding=1)] + ([nn.Tanh()] if i < n_convs - 1 else [])
        ch = out
    return nn.Sequential(*layers, nn.PixelShuffle(scale), nn.Sigmoid())


def reference(model, img_u8, scale):
    x = torch.from_numpy(img_u8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        return model.eval()(x)[0].permute(1, 2, 0).numpy()


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (37, 29, 3), dtype=np.uint8)


def test_untiled_equals_the_model_output(image):
    model = conv_net(2)
    out = upscale(model, image, scale=2, device="cpu", pre_pad=0)
    assert out.dtype == np.uint8 and out.shape == (74, 58, 3)
    np.testing.assert_array_equal(out, to_uint8(reference(model, image, 2)))
    # with mirrored context (the default) the interior is the same, only the border changes
    padded = upscale(model, image, scale=2, device="cpu").astype(int)
    assert np.abs(padded[6:-6, 6:-6] - out[6:-6, 6:-6].astype(int)).max() <= 1


def test_tiles_agree_with_whole_image_when_overlap_covers_receptive_field(image):
    model = conv_net(2)  # receptive radius 2 < overlap 3
    whole = upscale(model, image, scale=2).astype(int)
    tiled = upscale(model, image, scale=2, tile=8, tile_overlap=3).astype(int)
    assert np.abs(tiled - whole).max() <= 1


def test_overlap_controls_error_for_a_wide_receptive_field(image):
    model = conv_net(8, seed=1)  # receptive radius 8
    whole = reference(model, image, 2)
    errs = {ov: np.abs(upscale(model, image, scale=2, tile=8, tile_overlap=ov, pre_pad=0) / 255.0 - whole).max()
            for ov in (0, 2, 8)}
    assert errs[0] > 3 / 255  # seams are visible without overlap: the check can fail
    assert errs[0] > errs[2] >= errs[8]
    assert errs[8] <= 1 / 255 + 1e-6


def test_only_a_tile_reaches_the_model(image):
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = conv_net(2)

        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return self.net(x)

    upscale(Spy(), image, scale=2, tile=10, tile_overlap=4, pre_pad=0)
    assert len(seen) == 4 * 3 and max(max(s) for s in seen) <= 10 + 2 * 4
    seen.clear()  # with mirrored context, a piece gets max(overlap, pre_pad) on each side
    upscale(Spy(), image, scale=2, tile=10, tile_overlap=4, pre_pad=6)
    assert len(seen) == 4 * 3 and max(max(s) for s in seen) <= 10 + 2 * 6


def test_image_smaller_than_tile_and_other_input_forms():
    model = conv_net(2)
    small = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    base = upscale(model, small, scale=2, tile=64)
    assert base.shape == (10, 14, 3)
    as_float = small.astype(np.float32) / 255
    np.testing.assert_array_equal(upscale(model, as_float, scale=2), base)
    tensor = torch.from_numpy(as_float).permute(2, 0, 1)
    np.testing.assert_array_equal(upscale(model, tensor, scale=2), base)
    np.testing.assert_array_equal(upscale(model, tensor[None], scale=2), base)
    gray = upscale(model, small[..., 0], scale=2)
    assert gray.shape == (10, 14, 3)


def test_eval_mode_is_used_and_training_mode_restored(image):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.Dropout(0.5), nn.PixelShuffle(2))
    model.train()
    a = upscale(model, image, scale=2)
    b = upscale(model, image, scale=2, tile=9)
    assert np.abs(a.astype(int) - b).max() <= 1  # no dropout: eval mode is deterministic
    assert model.training


def test_pad_multiple_for_models_that_need_even_sizes():
    class NeedsEven(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = conv_net(2)

        def forward(self, x):
            assert x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0
            return self.net(x)

    img = np.random.default_rng(2).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    out = upscale(NeedsEven(), img, scale=2, tile=5, tile_overlap=2, pad_multiple=2)
    assert out.shape == (18, 22, 3)


def test_bad_inputs_are_explained(image):
    model = conv_net(2)
    with pytest.raises(ValueError, match="scale=3"):
        upscale(model, image, scale=3)
    with pytest.raises(ValueError, match="fp16 inference needs a CUDA"):
        upscale(model, image, scale=2, dtype="fp16", device="cpu")
    with pytest.raises(ImageReadError, match="alpha"):
        upscale(model, np.zeros((4, 4, 4), np.uint8), scale=2)
    with pytest.raises(ImageReadError, match=r"\[0, 1\]"):
        as_float_image(np.full((4, 4, 3), 200.0, np.float32))
    with pytest.raises(ImageReadError, match="uint8 or float"):
        as_float_image(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(ValueError, match="tile"):
        upscale(model, image, scale=2, tile=0)


def test_bf16_on_cpu_is_close_to_fp32(image):
    model = conv_net(2)
    a = upscale(model, image[:8, :8], scale=2).astype(int)
    b = upscale(model, image[:8, :8], scale=2, dtype="bf16", device="cpu").astype(int)
    assert np.abs(a - b).max() <= 8


# ------------------------------------------------------------------ colour correction
def test_color_correct_hand_computed():
    # one channel of sr: [0.2, 0.4] (mean 0.3, std 0.1); of lr: [0.5, 0.7] -> mean 0.6, std 0.1,
    # so sr maps to [0.5, 0.7]; lr2 = [0.4, 0.8] (std 0.2) stretches it to [0.4, 0.8].
    sr = np.array([[[0.2] * 3, [0.4] * 3]], np.float32)
    lr = np.array([[[0.5, 0.4, 0.3], [0.7, 0.8, 0.3]]], np.float32)
    out = color_correct(sr, lr)
    np.testing.assert_allclose(out[0, :, 0], [0.5, 0.7], atol=1e-6)
    np.testing.assert_allclose(out[0, :, 1], [0.4, 0.8], atol=1e-6)
    np.testing.assert_allclose(out[0, :, 2], [0.3, 0.3], atol=1e-6)  # flat lr channel: its mean


def test_color_correct_matches_statistics_and_forms():
    rng = np.random.default_rng(3)
    lr = rng.uniform(0.3, 0.6, (16, 16, 3)).astype(np.float32)
    sr = np.clip(rng.uniform(0.2, 0.8, (64, 64, 3)) * [1.0, 0.8, 0.6] + [0, 0.1, 0.2], 0, 1).astype(np.float32)
    out = color_correct(sr, lr)
    np.testing.assert_allclose(out.mean((0, 1)), lr.mean((0, 1)), atol=1e-5)
    np.testing.assert_allclose(out.std((0, 1)), lr.std((0, 1)), atol=1e-5)
    t = color_correct(torch.from_numpy(sr).permute(2, 0, 1)[None], torch.from_numpy(lr).permute(2, 0, 1)[None])
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy(), out, atol=1e-5)
    u8 = color_correct(to_uint8(sr), to_uint8(lr))
    assert u8.dtype == np.uint8


def test_upscale_with_color_correct_matches_input_colours():
    model = conv_net(2)  # a random net shifts colours far from the input
    img = np.random.default_rng(4).integers(40, 200, (16, 16, 3), dtype=np.uint8)
    out = upscale(model, img, scale=2, tile=7, color_correct=True) / 255.0
    lr = img / 255.0
    np.testing.assert_allclose(out.mean((0, 1)), lr.mean((0, 1)), atol=3e-3)
    np.testing.assert_allclose(out.std((0, 1)), lr.std((0, 1)), atol=3e-3)


class _BorderDarkening(torch.nn.Module):
    """x4 nearest upsampling after a zero-padded 3x3 mean: a constant image comes out darker in
    its outermost row and column, like a briefly trained RRDBNet (no image-space skip)."""

    def forward(self, x):
        k = torch.full((3, 1, 3, 3), 1 / 9, dtype=x.dtype)
        y = torch.nn.functional.conv2d(x, k, padding=1, groups=3)
        return torch.nn.functional.interpolate(y, scale_factor=4, mode="nearest")


def test_pre_pad_removes_the_border_line_of_zero_padded_networks():
    img = np.full((20, 24, 3), 128, np.uint8)
    old = upscale(_BorderDarkening(), img, scale=4, pre_pad=0)
    assert old[-1, 40, 0] < 100 and old[40, -1, 0] < 100  # the dark line (the old behaviour)
    out = upscale(_BorderDarkening(), img, scale=4)  # default: mirrored context
    assert out.shape == (80, 96, 3) and (out == 128).all()
    tiled = upscale(_BorderDarkening(), img, scale=4, tile=8, tile_overlap=2)
    assert (tiled == 128).all()
    with pytest.raises(ValueError, match="pre_pad"):
        upscale(_BorderDarkening(), img, scale=4, pre_pad=-1)


def test_pre_pad_keeps_results_of_border_free_models_and_tiny_images():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)

    class Nearest(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    for p in (0, 3, 8):  # 8 > side: clamped to what a reflection allows
        out = upscale(Nearest(), img, scale=2, pre_pad=p)
        assert np.array_equal(out, img.repeat(2, 0).repeat(2, 1))
