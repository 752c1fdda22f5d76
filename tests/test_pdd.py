"""Notebook 06 (PDD): domains, the distance-loss options, the recipe's configurations, the studies."""

import math

import numpy as np
import pytest
import torch

from srlib import data_domains
from srlib.features import VGGFeatures
from srlib.infer import color_correct
from srlib.losses.distance import PairwiseDistanceLoss, intra_model_loss_l1
from srlib.recipes.pdd import PDDConfig, train_pdd
from srlib.recipes.psnr import build_generator
from srlib.recipes.realworld import RealWorldConfig
from srlib.studies import pdd as study


# --- tiny shared setup ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    """Smoke configs and random pretrained models; tiny synthetic domains."""
    g = RealWorldConfig.for_profile("smoke", "generalist", usm_hr=False)
    s = RealWorldConfig.for_profile("smoke", "specialist")
    torch.manual_seed(0)
    G, S = build_generator(g.esrgan.psnr), build_generator(s.esrgan.psnr)
    rng = np.random.default_rng(0)
    source = {f"src{i}": rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for i in range(2)}
    target_lr = {f"tgt{i}": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for i in range(2)}
    return g, s, G, S, source, target_lr


def _cfg(tiny, method, **kw):
    g, s = tiny[:2]
    values = dict(steps=2, d_init_steps=0, batch_size=1, lr_patch=8, percep_layers={"conv1_2": 0.1},
                  inter_layers={"conv2_1": 1.0}, intra_layers={"conv1_2": 1.0}, disc_feat=4,
                  vgg_weights="random", precision="fp32")
    values.update(kw)
    return PDDConfig.for_profile("smoke", method, generalist=g, specialist=s, **values)


def _train(tiny, cfg, tmp_path):
    G, S, source, target_lr = tiny[2:]
    return train_pdd(cfg, generalist=G, specialist=S, device="cpu", cache_dir=tmp_path,
                     progress=False, source=source, target_lr=target_lr)


# --- the target domain is unlabelled ----------------------------------------------------------

def test_domains_are_disjoint_from_each_other_and_from_the_test_photos():
    from srlib import data

    src, tgt = set(data_domains.SOURCE_IMAGES), set(data_domains.TARGET_IMAGES)
    assert not src & tgt
    assert not (src | tgt) & set(data.PHOTO_SPLITS["test"])
    assert (src | tgt) <= set(data.PHOTO_SPLITS["train"])


def test_target_training_set_holds_lr_images_only():
    lr = data_domains.target_train_lr(4)
    from srlib import data

    train = data.load_images("photos", "train")
    for name, img in lr.items():
        h, w = train[name].shape[:2]
        assert img.shape == (h // 4, w // 4, 3) and img.dtype == np.uint8


def test_mixed_batches_never_carry_a_target_hr():
    rng = np.random.default_rng(1)
    source = {"s": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)}
    target_lr = {"t": rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)}
    mb = data_domains.MixedBatches(source, target_lr, scale=4, lr_patch=8, batch_size=3, seed=0)
    for step in range(4):
        batch = mb(step)
        assert set(batch) == {"lr_s", "hr_s", "lr_t"}
        assert batch["lr_t"].shape == (3, 3, 8, 8) and batch["hr_s"].shape == (3, 3, 32, 32)
        # every target patch is a crop of the LR image itself
        t = (target_lr["t"].astype(np.float32) / 255)
        for patch in batch["lr_t"].permute(0, 2, 3, 1).numpy():
            views = [t, t[:, ::-1], t[::-1], t.transpose(1, 0, 2), t[:, ::-1].transpose(1, 0, 2),
                     t[::-1].transpose(1, 0, 2), t[::-1, ::-1], t[::-1, ::-1].transpose(1, 0, 2)]
            assert any(np.allclose(v[y:y + 8, x:x + 8], patch) for v in views
                       for y in range(13) for x in range(13))
    with pytest.raises(AssertionError, match="unlabelled"):
        data_domains.check_unlabelled({**mb(0), "hr_t": torch.zeros(3, 3, 32, 32)}, 8)
    with pytest.raises(AssertionError, match="LR patches"):
        data_domains.check_unlabelled({**mb(0), "lr_t": torch.zeros(3, 3, 32, 32)}, 8)


def test_pdd_trainer_never_touches_a_target_hr(tiny, tmp_path, monkeypatch):
    """Training from LR-only target images works while every way to a target HR is cut off."""
    from srlib import data, degradations

    def forbidden(*a, **k):
        raise AssertionError("the target-domain trainer touched a target HR image")

    monkeypatch.setattr(degradations, "hidden_degradation", forbidden)
    monkeypatch.setattr(data_domains, "target_train_lr", forbidden)
    real_load = data.load_images

    def guarded(name, split, **k):
        out = real_load(name, split, **k)
        if any(n in out for n in data_domains.TARGET_IMAGES):
            raise AssertionError("the target-domain trainer loaded the target photos")
        return out

    monkeypatch.setattr(data, "load_images", guarded)
    seen = []
    import srlib.recipes.pdd as pdd_mod
    real_check = pdd_mod.check_unlabelled
    monkeypatch.setattr(pdd_mod, "check_unlabelled", lambda b, p: (seen.append(sorted(b)), real_check(b, p)))
    for method in ("naive", "static", "ema"):
        out = _train(tiny, _cfg(tiny, method), tmp_path)
        assert not out.cached
    assert seen and all(keys == ["hr_s", "lr_s", "lr_t"] for keys in seen)


# --- the three configurations -------------------------------------------------------------------

@pytest.mark.parametrize("method", ["naive", "static", "ema"])
def test_each_method_trains_a_few_steps_and_changes_s(tiny, tmp_path, method):
    cfg = _cfg(tiny, method, steps=3, d_init_steps=1)
    out = _train(tiny, cfg, tmp_path)
    hist = out.history
    assert hist[-1]["step"] == 3 and all(math.isfinite(v) for r in hist for v in r.values())
    if method == "naive":
        assert "l_naive" in hist[-1] and "l_inter" not in hist[-1]
    else:
        assert "l_inter" in hist[-1] and "l_intra" in hist[-1]
    init = tiny[2] if method == "ema" else tiny[3]
    changed = any(not torch.equal(v, init.state_dict()[k]) for k, v in out.run["S"].items())
    assert changed
    again = _train(tiny, cfg, tmp_path)
    assert again.cached


def test_static_keeps_the_generalist_frozen(tiny, tmp_path):
    out = _train(tiny, _cfg(tiny, "static", steps=3), tmp_path)
    G = tiny[2]
    for k, v in G.state_dict().items():
        assert torch.equal(out.run["G"][k], v), k
    assert "S_ema" not in out.run.keys()


def test_ema_teacher_follows_decay_0999(tiny, tmp_path):
    cfg = _cfg(tiny, "ema", steps=1)
    assert cfg.ema_decay == 0.999
    out = _train(tiny, cfg, tmp_path)
    init = tiny[2].state_dict()
    s1, ema = out.run["S"], out.run["S_ema"]
    moved = 0
    for k, v in init.items():
        if not v.is_floating_point():
            continue
        want = 0.999 * v + 0.001 * s1[k]
        assert torch.allclose(ema[k], want, atol=1e-7, rtol=0), k
        moved += int(not torch.equal(s1[k], v))
    assert moved > 0  # S did change, so the check above is not trivially init == ema


def test_detach_follows_the_official_option_files(tiny):
    assert _cfg(tiny, "static").detach is True
    assert _cfg(tiny, "ema").detach is False
    assert _cfg(tiny, "ema", detach_source=True).detach is True
    with pytest.raises(ValueError, match="method"):
        _cfg(tiny, "supervised")
    with pytest.raises(ValueError, match="intra_measure"):
        _cfg(tiny, "ema", intra_measure="kl")


def test_paper_profile_matches_the_official_options(tiny):
    c = PDDConfig.for_profile("paper", "ema")
    assert (c.steps, c.batch_size, c.lr_patch, c.d_init_steps, c.warmup_steps) == (100_000, 8, 48, 300, 5)
    assert c.wavelet_weight == 0.5 and c.wavelet_weights == (1.0, 0.1, 0.01)
    assert c.gan_weight == 1e-2 and c.ema_decay == 0.999 and c.lr_g == 1e-4 and c.milestones == (25_000,)
    assert c.percep_layers == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    assert PDDConfig.for_profile("paper", "static").warmup_steps == 0


# --- distance-loss options ---------------------------------------------------------------------

def test_intra_l1_by_hand():
    s_t = torch.tensor([3.0, 0.0]).view(1, 2, 1, 1)
    s_s = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    g_t = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    g_s = torch.zeros(1, 2, 1, 1)
    # |s_t - s_s| = [2, 0]; |g_t - g_s| = [0, 1]; mean |[2, -1]| = 1.5
    assert intra_model_loss_l1(s_t, s_s, g_t, g_s).item() == pytest.approx(1.5)


def test_detach_source_stops_gradients_through_the_source_output():
    vgg = VGGFeatures(["conv1_2", "conv2_1"], weights="random", seed=0)
    for detach in (False, True):
        loss = PairwiseDistanceLoss({"conv2_1": 1.0}, {"conv1_2": 1.0}, backbone=vgg,
                                    detach_source=detach, intra_measure="l1")
        s_t = torch.rand(1, 3, 8, 8, requires_grad=True)
        s_s = torch.rand(1, 3, 8, 8, requires_grad=True)
        inter, intra = loss(s_t, torch.rand(1, 3, 8, 8), s_s, torch.rand(1, 3, 8, 8))
        (inter + intra).backward()
        assert s_t.grad is not None and s_t.grad.abs().sum() > 0
        assert (s_s.grad is None) == detach
    with pytest.raises(ValueError, match="intra_measure"):
        PairwiseDistanceLoss(backbone=vgg, intra_measure="kl", inter_weights={}, intra_weights={})


# --- colour correction and studies -------------------------------------------------------------

def test_color_correction_matches_each_channel_mean_and_std_of_the_lr():
    rng = np.random.default_rng(0)
    lr = rng.uniform(0.2, 0.8, (16, 16, 3)).astype(np.float32)
    sr = np.clip(rng.uniform(0, 1, (64, 64, 3)) * 0.5 + [0.3, 0.0, 0.1], 0, 1).astype(np.float32)
    out = color_correct(sr, lr)
    assert np.allclose(out.reshape(-1, 3).mean(0), lr.reshape(-1, 3).mean(0), atol=1e-5)
    assert np.allclose(out.reshape(-1, 3).std(0), lr.reshape(-1, 3).std(0), atol=1e-5)


def test_color_error_by_hand_and_correction_removes_a_shift():
    hr = np.full((8, 8, 3), 100, np.uint8)
    shifted = hr.copy()
    shifted[..., 0] += 30  # +30 on R only: mean over channels 10
    pair = [("x", hr[::4, ::4], hr)]
    assert study.color_error([shifted], pair) == pytest.approx(10.0)
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    from srlib.recipes.evaluate import bicubic_upscale
    from srlib.degradations import bicubic_degrade

    lr = bicubic_degrade(hr, 4)
    sr = np.clip(bicubic_upscale(lr, 4).astype(int) + [25, -15, 10], 0, 255).astype(np.uint8)
    pairs = [("x", lr, hr)]
    assert study.color_error([sr], pairs) > 10
    assert study.color_error([color_correct(sr, lr)], pairs) < 2


def test_improvement_rows_and_direction():
    rows = [{"model": "generalist", "domain": "target", "psnr_y": 20.0, "ssim_y": 0.5, "lpips": None, "niqe": 6.0},
            {"model": "pdd", "domain": "target", "psnr_y": 21.5, "ssim_y": 0.55, "lpips": None, "niqe": 5.0},
            {"model": "pdd", "domain": "source", "psnr_y": 99.0, "ssim_y": 0.9, "lpips": None, "niqe": 1.0}]
    (d,) = study.improvement_rows(rows, "generalist")
    assert d["delta_psnr_y"] == pytest.approx(1.5) and d["delta_niqe"] == pytest.approx(-1.0)
    assert d["delta_lpips"] is None
    assert study.better(d["delta_niqe"], "niqe") and study.better(d["delta_psnr_y"], "psnr_y")
    with pytest.raises(ValueError, match="baseline"):
        study.improvement_rows(rows, "specialist")


def test_cloud_distance_and_projection():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (200, 5))
    assert study.cloud_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    near, far = rng.normal(0.2, 1, (200, 5)), rng.normal(2.0, 1, (200, 5))
    assert study.cloud_distance(a, far) > study.cloud_distance(a, near) > 0
    # invariant to a common rescaling of the features
    assert study.cloud_distance(3 * a, 3 * far) == pytest.approx(study.cloud_distance(a, far))
    proj = study.project_2d({"a": a, "b": far})
    assert proj["a"].shape == (200, 2) and proj["b"].shape == (200, 2)
    # the first component separates the two clouds
    assert abs(proj["a"][:, 0].mean() - proj["b"][:, 0].mean()) > 2


def test_lowlevel_features_shape():
    imgs = [np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8) for i in range(2)]
    f = study.lowlevel_features(imgs, vgg_weights="random", crop=16, per_image=4)
    assert f.shape == (8, 2 * (64 + 128))


# --- the specialist / generalist recipe ---------------------------------------------------------

def test_realworld_batches_follow_the_role():
    from srlib.degradations import bicubic_degrade
    from srlib.recipes.realworld import _SourceBatches

    rng = np.random.default_rng(3)
    images = {"a": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)}
    spec = RealWorldConfig.for_profile("smoke", "specialist")
    gen = RealWorldConfig.for_profile("smoke", "generalist")
    assert gen.usm_hr and not spec.usm_hr and gen.degradation == "second_order"
    b = _SourceBatches(spec, 8, 2, seed=0, images=images)(0)
    lr_want = bicubic_degrade(b["hr"][0].permute(1, 2, 0).numpy().astype(np.float64), 4)
    assert np.allclose(b["lr"][0].permute(1, 2, 0).numpy(), np.clip(lr_want, 0, 1), atol=1e-5)
    gb = _SourceBatches(gen, 8, 2, seed=0, images=images)
    b0, b0_again, b1 = gb(0), gb(0), gb(1)
    assert b0["lr"].shape == (2, 3, 8, 8) and b0["hr"].shape == (2, 3, 32, 32)
    assert torch.equal(b0["lr"], b0_again["lr"]) and torch.equal(b0["hr"], b0_again["hr"])
    assert not torch.equal(b0["lr"], b1["lr"])
    # the target is the unsharp-masked crop: USM adds energy at edges, never changes flat areas much
    from srlib.degradations import usm_sharp
    plain = _SourceBatches(dataclasses_replace(gen, usm_hr=False), 8, 2, seed=0, images=images)(0)["hr"]
    assert torch.allclose(b0["hr"][0], torch.from_numpy(np.ascontiguousarray(
        usm_sharp(plain[0].permute(1, 2, 0).numpy()).transpose(2, 0, 1))), atol=1e-5)


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_course_checkpoints_are_registered():
    from srlib import checkpoints

    checkpoints._load_registry()
    for role in ("specialist", "generalist"):
        cfg = checkpoints.course_config(f"pdd_{role}", "standard")
        assert cfg.role == role and (cfg.esrgan.psnr.steps, cfg.esrgan.steps) == (1500, 300)
        assert checkpoints.course_config(f"pdd_{role}", "smoke").esrgan.psnr.steps == 2


def test_score_models_and_full_size_niqe_on_bicubic():
    from srlib import metrics
    from srlib.niqe_eval import HR_LABEL
    from srlib.recipes.evaluate import bicubic_upscale

    pairs = data_domains.eval_pairs("target", 4, 96)[:2]
    rows, outs = study.score_models({"bicubic": None}, {"target": pairs}, 4)
    (row,) = rows
    want = [metrics.psnr(bicubic_upscale(lr, 4), hr, 4) for _, lr, hr in pairs]
    assert row["psnr_y"] == pytest.approx(np.mean(want)) and row["psnr_y_std"] == pytest.approx(np.std(want))
    assert row["model"] == "bicubic" and row["domain"] == "target" and len(outs[("bicubic", "target")]) == 2
    full = data_domains.eval_pairs("target", 4, 192)[:1]
    niqe_rows = study.full_size_niqe({"bicubic": None}, full, 4)
    assert [r["model"] for r in niqe_rows] == [HR_LABEL, "bicubic"]
    assert niqe_rows[0]["hf_ratio"] == 1.0 and niqe_rows[1]["hf_ratio"] < 1.0  # bicubic is smoother than HR


# --- the generalist's GAN stage is Real-ESRGAN's --------------------------------------------

def test_generalist_takes_realesrgans_losses_and_the_specialist_esrgans():
    from srlib.recipes.esrgan import ESRGANConfig
    from srlib.recipes.realworld import REALESRGAN_LOSSES

    for profile in ("smoke", "standard", "paper"):
        g = RealWorldConfig.for_profile(profile, "generalist")
        s = RealWorldConfig.for_profile(profile, "specialist")
        e = ESRGANConfig.for_profile(profile)
        assert (g.gan_recipe, s.gan_recipe) == ("realesrgan", "esrgan")
        assert (g.esrgan.pixel_weight, g.esrgan.percep_weight, g.esrgan.gan_weight) == (1.0, 1.0, 0.1)
        assert g.esrgan.percep_layers == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0,
                                          "conv4_4": 1.0, "conv5_4": 1.0} == REALESRGAN_LOSSES["percep_layers"]
        assert (s.esrgan.pixel_weight, s.esrgan.gan_weight, s.esrgan.percep_layers) == (
            e.pixel_weight, e.gan_weight, e.percep_layers)
        # below the paper profile the schedules are ESRGAN's for both; at it the generalist's are
        # Real-ESRNet's and Real-ESRGAN's (256-px patches, batch 12 x 4 GPUs, EMA, constant rate)
        for c in ((g, s) if profile != "paper" else (s,)):
            assert (c.esrgan.steps, c.esrgan.batch_size, c.esrgan.lr_g, c.esrgan.ema_decay) == (
                e.steps, e.batch_size, e.lr_g, e.ema_decay)
            assert c.esrgan.psnr == dataclasses_replace(e.psnr, precision=c.esrgan.psnr.precision)
    gp = RealWorldConfig.for_profile("paper", "generalist")
    assert (gp.esrgan.psnr.steps, gp.esrgan.psnr.lr, gp.esrgan.psnr.schedule, gp.esrgan.psnr.milestones,
            gp.esrgan.psnr.ema_decay, gp.esrgan.psnr.batch_size, gp.esrgan.psnr.lr_patch * 4) == (
        1_000_000, 2e-4, "multistep", (1_000_000,), 0.999, 48, 256)
    assert (gp.esrgan.steps, gp.esrgan.lr_g, gp.esrgan.lr_d, gp.esrgan.milestones, gp.esrgan.ema_decay,
            gp.esrgan.batch_size, gp.esrgan.lr_patch * 4) == (400_000, 1e-4, 1e-4, (400_000,), 0.999, 48, 256)
    # asked-for stage lengths win over the paper schedules, the rest of them stays
    short = RealWorldConfig.for_profile("paper", "generalist", psnr_steps=10, gan_steps=5)
    assert (short.esrgan.psnr.steps, short.esrgan.steps, short.esrgan.batch_size, short.esrgan.psnr.ema_decay) == (
        10, 5, 48, 0.999)


def test_realesrgan_step_by_hand():
    """G: 1 * L1(sr, usm HR) + L_percep(sr, usm HR) + 0.1 * BCE(D(sr), 1) over the logit map;
    D: BCE(D(plain HR), 1) + BCE(D(sr), 0). A plain HR that differs from the target shows which
    one D sees."""
    from srlib.archs.discriminators import UNetDiscriminatorSN
    from srlib.losses import PerceptualLoss
    from srlib.recipes.psnr import PSNRConfig
    from srlib.recipes.realworld import realesrgan_step
    from srlib.train import Trainer

    torch.manual_seed(0)
    G = build_generator(PSNRConfig.for_profile("smoke", arch="rrdbnet", num_feat=4, num_block=1, num_grow_ch=2))
    D = UNetDiscriminatorSN(3, 4).eval()  # eval: spectral norms fixed, identical logits on every call
    percep = PerceptualLoss({"conv1_2": 0.1, "conv2_2": 1.0}, weights="random")
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    plain = (hr * 0.5).contiguous()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    with torch.no_grad():
        sr = G(lr)
        fake, real_plain = D(sr), D(plain)
        want = {"l_g_pix": (sr - hr).abs().mean(), "l_g_percep": percep.total(sr, hr),
                "l_g_gan": 0.1 * bce(fake, torch.ones_like(fake)),
                "l_d": bce(real_plain, torch.ones_like(real_plain)) + bce(fake, torch.zeros_like(fake))}
    tr = Trainer({"G": G, "D": D}, {"G": torch.optim.SGD(G.parameters(), lr=0.0),
                                    "D": torch.optim.SGD(D.parameters(), lr=0.0)},
                 lambda *a: {}, device="cpu", progress=False)
    out = realesrgan_step(tr, {"lr": lr, "hr": hr, "gan_hr": plain}, 0, percep=percep,
                          pixel_weight=1.0, gan_weight=0.1)
    for k, v in want.items():
        torch.testing.assert_close(out[k], v, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # without a plain HR, D's real images are the target
        real_t = D(hr)
    out = realesrgan_step(tr, {"lr": lr, "hr": hr}, 0, percep=percep, pixel_weight=1.0, gan_weight=0.1)
    torch.testing.assert_close(out["l_d"], bce(real_t, torch.ones_like(real_t)) + bce(fake, torch.zeros_like(fake)),
                               rtol=1e-5, atol=1e-6)


def test_generalist_batches_carry_the_plain_hr_for_the_discriminator():
    from srlib.recipes.realworld import _SourceBatches

    rng = np.random.default_rng(4)
    images = {"a": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)}
    gen = RealWorldConfig.for_profile("smoke", "generalist")
    b = _SourceBatches(gen, 8, 2, seed=0, images=images)(0)
    plain = _SourceBatches(dataclasses_replace(gen, usm_hr=False), 8, 2, seed=0, images=images)(0)["hr"]
    assert b["gan_hr"].shape == b["hr"].shape == (2, 3, 32, 32)
    torch.testing.assert_close(b["gan_hr"], plain)  # the crop itself, not the sharpened target
    assert not torch.allclose(b["gan_hr"], b["hr"])
