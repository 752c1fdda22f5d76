"""CSD (notebook 05): channel-splitting EDSR, the joint objective, the negatives, the cost studies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from srlib.archs.edsr import EDSR
from srlib.features import VGGFeatures
from srlib.losses import ContrastiveLoss, contrastive_ratio
from srlib.recipes.csd import (AtWidth, CSDConfig, bicubic_negatives, build_trainer, csd_losses,
                               notebook_configs, replace, resolve_config, train_csd)
from srlib.studies.csd import (count_flops, cpu_ms, fit_line, negatives_cost,
                               peak_memory, peak_memory_method)


def _tiny(num_feat=16, num_block=2, upscale=4, seed=0):
    torch.manual_seed(seed)
    return EDSR(3, 3, num_feat=num_feat, num_block=num_block, upscale=upscale)


def _sliced_state(net: EDSR, c: int) -> dict:
    """The student's state dict built by hand from the teacher's keys (independent of EDSR._layers)."""
    out = {}
    for k, v in net.state_dict().items():
        if k.startswith("conv_first."):
            out[k] = v[:c]
        elif k.startswith("conv_last."):
            out[k] = v[:, :c] if k.endswith("weight") else v
        elif k.startswith("upsample."):
            r2 = v.shape[0] // net.num_feat
            out[k] = v[: r2 * c, :c] if k.endswith("weight") else v[: r2 * c]
        else:
            out[k] = v[:c, :c] if k.endswith("weight") else v[:c]
    return out


@pytest.mark.parametrize("upscale", [2, 3, 4])
def test_student_forward_equals_standalone_edsr_with_sliced_weights(upscale):
    net = _tiny(num_feat=16, upscale=upscale)
    x = torch.rand(2, 3, 10, 12)
    student = EDSR(3, 3, num_feat=4, num_block=2, upscale=upscale)
    student.load_state_dict(_sliced_state(net, 4))
    with torch.no_grad():
        ref = student(x)
        assert torch.allclose(net(x, width=0.25), ref, atol=1e-5)
        assert torch.allclose(net.extract(0.25)(x), ref, atol=1e-5)
        assert torch.allclose(AtWidth(net, 0.25)(x), ref, atol=1e-5)
        # and the slice is not the whole network: the teacher differs
        assert not torch.allclose(net(x), ref, atol=1e-3)
    assert net.num_params(0.25) == sum(p.numel() for p in student.parameters())


def test_student_gradients_reach_only_leading_slices():
    net = _tiny()
    net(torch.rand(2, 3, 8, 8), width=0.25).abs().mean().backward()
    c = 4
    for name, p in net.named_parameters():
        g = p.grad
        assert g is not None, name
        mask = torch.zeros_like(g, dtype=torch.bool)
        if name.startswith("conv_first."):
            mask[:c] = True
        elif name.startswith("conv_last."):
            if name.endswith("weight"):
                mask[:, :c] = True
            else:
                mask[:] = True
        elif name.startswith("upsample."):
            r2 = g.shape[0] // net.num_feat
            if name.endswith("weight"):
                mask[: r2 * c, :c] = True
            else:
                mask[: r2 * c] = True
        elif name.endswith("weight"):
            mask[:c, :c] = True
        else:
            mask[:c] = True
        assert g[~mask].abs().sum().item() == 0.0, f"{name}: gradient outside the student's slice"
        assert g[mask].abs().max().item() > 0.0, f"{name}: no gradient inside the slice"


def _smoke_cfg(**kw):
    base = dict(vgg_weights="random", steps=4, period=4, batch_size=4, lr_patch=8, num_feat=8,
                num_block=1, neg_num=2)
    base.update(kw)
    return resolve_config(CSDConfig.for_profile("smoke", **base))


def _images():
    rng = np.random.default_rng(0)
    return {f"im{i}": (rng.random((48, 48, 3)) * 255).astype(np.uint8) for i in range(3)}


def test_joint_step_updates_both_widths():
    cfg = _smoke_cfg()
    trainer = build_trainer(cfg, torch.device("cpu"), progress=False)
    net = trainer.raw_models["G"]
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    from srlib.recipes.psnr import make_batch_fn
    trainer.fit(make_batch_fn(cfg, _images()), 1)
    c = net.width_channels(cfg.width)
    w0, w1 = before["body.0.conv1.weight"], net.body[0].conv1.weight.detach()
    assert not torch.equal(w0[:c, :c], w1[:c, :c]), "the student's slice did not move"
    assert not torch.equal(w0[c:, c:], w1[c:, c:]), "the rest of the teacher did not move"
    assert set(trainer.history[-1]) >= {"l_student", "l_teacher", "l_cl"}


def test_csd_losses_match_eq4_by_hand():
    net = _tiny(num_feat=8, num_block=1)
    torch.manual_seed(1)
    lr, hr = torch.rand(3, 3, 6, 6), torch.rand(3, 3, 24, 24)
    vgg = VGGFeatures(["relu1_1", "relu2_1"], weights="random", normalize_input=False)
    with torch.no_grad():  # non-zero biases, so that the input range matters
        for m in vgg.features:
            if isinstance(m, nn.Conv2d):
                m.bias.uniform_(-0.5, 0.5)
    layer_w = {"relu1_1": 0.5, "relu2_1": 2.0}
    con = ContrastiveLoss(layer_w, backbone=vgg, input_range=255.0, use_input_norm=False)
    total, parts = csd_losses(net, lr, hr, width=0.25, scale=4, lambda_tl=0.7, lambda_cl=3.0,
                              neg_num=2, rgb_range=255.0, contrast=con)
    with torch.no_grad():
        t, s = net(lr), net(lr, width=0.25)
        negs = F.interpolate(lr[:2], scale_factor=4, mode="bicubic", align_corners=False)
        fs, ft, fn = vgg(s * 255), vgg(t * 255), vgg(negs * 255)
        cl = 0.0
        for name, w in layer_w.items():
            d_pos = (fs[name] - ft[name]).abs().mean()
            d_neg = sum((fs[name] - fn[name][k:k + 1]).abs().mean() for k in range(2))
            cl += w * d_pos / (d_neg + 1e-7)
        ref = 255 * (s - hr).abs().mean() + 0.7 * 255 * (t - hr).abs().mean() + 3.0 * cl
    assert total.item() == pytest.approx(ref.item(), rel=1e-5)
    assert parts["l_cl"].item() == pytest.approx(float(cl), rel=1e-5)
    # the input range changes the value when VGG has biases (issue: official 0..255 input)
    con01 = ContrastiveLoss(layer_w, backbone=vgg, input_range=1.0, use_input_norm=False)
    assert con01(s, t, negs).item() != pytest.approx(parts["l_cl"].item(), rel=1e-3)


def test_contrastive_input_range_options():
    with pytest.raises(ValueError, match="input_range"):
        ContrastiveLoss(weights="random", use_input_norm=True, input_range=255.0)
    with pytest.raises(ValueError, match="positive"):
        ContrastiveLoss(weights="random", use_input_norm=False, input_range=0)
    # the random stand-in has zero biases: features are positively homogeneous, range-free
    a = ContrastiveLoss({"relu2_1": 1.0}, weights="random", use_input_norm=False)
    b = ContrastiveLoss({"relu2_1": 1.0}, weights="random", use_input_norm=False, input_range=255.0)
    s, t, n = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.rand(3, 3, 16, 16)
    assert a(s, t, n).item() == pytest.approx(b(s, t, n).item(), rel=1e-4)


def test_bicubic_negatives_are_the_first_k_lr_images():
    lr = torch.rand(5, 3, 4, 4)
    negs = bicubic_negatives(lr, 4, 3)
    assert negs.shape == (3, 3, 16, 16) and not negs.requires_grad
    assert torch.allclose(negs, F.interpolate(lr[:3], scale_factor=4, mode="bicubic", align_corners=False))
    with pytest.raises(ValueError, match="batch"):
        bicubic_negatives(lr, 4, 6)


def test_config_validation():
    with pytest.raises(ValueError, match="neg_num"):
        CSDConfig.for_profile("smoke", neg_num=5)  # batch 4
    with pytest.raises(ValueError, match="method"):
        CSDConfig.for_profile("smoke", method="distill")
    with pytest.raises(ValueError, match="width"):
        CSDConfig.for_profile("smoke", width=0.3)
    paper = CSDConfig.for_profile("paper")
    assert (paper.num_feat, paper.num_block, paper.res_scale, paper.width) == (256, 32, 0.1, 0.25)
    assert (paper.lambda_cl, paper.lambda_tl, paper.neg_num, paper.lr, paper.steps) == (200.0, 1.0, 10, 1e-4, 400_000)
    cfgs = notebook_configs("standard")
    assert {c.steps for c in cfgs.values()} == {cfgs["csd"].steps}
    assert cfgs["joint"].lambda_cl == 0 and cfgs["csd"].lambda_cl == 200
    assert sorted(c.neg_num for k, c in cfgs.items() if k.startswith("csd")) == [1, 4, 10]


def test_train_csd_smoke_and_cache(tmp_path):
    cfg = _smoke_cfg()
    a = train_csd(cfg, device="cpu", cache_dir=tmp_path, progress=False, images=_images())
    assert not a.cached and isinstance(a.model, EDSR) and a.model.num_feat == 8
    assert "l_cl" in a.history[-1]
    b = train_csd(cfg, device="cpu", cache_dir=tmp_path, progress=False, images=_images())
    assert b.cached
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])
    s = train_csd(replace(cfg, method="student"), device="cpu", cache_dir=tmp_path, progress=False,
                  images=_images())
    assert s.model.num_feat == 2 and "l_pix" in s.history[-1]


def test_count_flops_matches_conv_arithmetic():
    net = _tiny(num_feat=8, num_block=1, upscale=4)
    h = w = 5

    def conv(cin, cout, hh, ww):
        return 2 * cin * cout * 9 * hh * ww

    c = 8
    expected = conv(3, c, h, w) + 2 * conv(c, c, h, w) + conv(c, c, h, w)  # first, block, after_body
    expected += conv(c, 4 * c, h, w) + conv(c, 4 * c, 2 * h, 2 * w)     # two x2 upsampling convs
    expected += conv(c, 3, 4 * h, 4 * w)
    assert count_flops(net, (h, w)) == expected
    cs = 2
    expected_s = (conv(3, cs, h, w) + 3 * conv(cs, cs, h, w) + conv(cs, 4 * cs, h, w)
                  + conv(cs, 4 * cs, 2 * h, 2 * w) + conv(cs, 3, 4 * h, 4 * w))
    assert count_flops(net, (h, w), width=0.25) == expected_s == count_flops(net.extract(0.25), (h, w))


def test_cpu_ms_reports_a_median():
    net = _tiny(num_feat=4, num_block=1)
    res = cpu_ms(net, 8, repeats=3, warmup=0)
    assert res["cpu_ms"] == sorted(res["runs_ms"])[1] and res["cpu_ms"] > 0


def test_peak_memory_sees_a_large_allocation():
    if peak_memory_method("cpu") is None:
        pytest.skip("no way to read peak memory on this platform")

    def alloc():
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        return float(x[-1])

    peak_memory(alloc)  # warm-up
    _, peak = peak_memory(alloc)
    assert peak >= 60 * 2**20
    _, small = peak_memory(lambda: 1 + 1)
    assert small < 16 * 2**20


def test_negatives_ablation_measures_time_and_memory():
    cfg = _smoke_cfg(batch_size=4, neg_num=4)
    rows = negatives_cost(cfg, [1, 4], steps=1, images=_images())
    assert [r["K"] for r in rows] == [1, 4]
    for r in rows:
        assert r["step_s"] > 0 and len(r["step_runs_s"]) == 1
        if r["memory_method"] is not None:
            assert r["peak_mb"] is not None and r["peak_mb"] >= 0
    with pytest.raises(ValueError, match="joint"):
        negatives_cost(replace(cfg, lambda_cl=0.0), [1])


def test_fit_line():
    fit = fit_line([1, 4, 10], [3.0, 9.0, 21.0])
    assert fit["slope"] == pytest.approx(2.0) and fit["intercept"] == pytest.approx(1.0)
    assert fit["r2"] == pytest.approx(1.0)
    noisy = fit_line([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0])
    assert 0 < noisy["r2"] < 1
    with pytest.raises(ValueError):
        fit_line([1, 1], [2, 3])


def test_dry_run_configs_keep_the_ablations_order_within_the_batch():
    """Paper Ks 1, 4, 10 become 1, 2, 3 (negatives come from the batch), batch max(K, 2), one step."""
    from srlib.recipes import csd

    paper = csd.notebook_configs("paper")
    dry = csd.dry_run_configs(paper)
    assert set(dry) == set(paper)
    assert csd.ablation_keys(paper) == {1: "csd_k1", 4: "csd_k4", 10: "csd"}
    assert csd.ablation_keys(dry) == {1: "csd_k1", 2: "csd_k4", 3: "csd"}
    for key, c in dry.items():
        assert c.neg_num <= c.batch_size == max(c.neg_num, 2), key
        assert (c.steps, c.lr_patch, c.num_feat, c.num_block) == (1, 12, paper[key].num_feat, paper[key].num_block)
