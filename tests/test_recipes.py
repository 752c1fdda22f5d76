"""Recipes of notebook 02: configs per profile, step functions, caching, network interpolation."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from srlib.archs.arch_util import count_params
from srlib.recipes import (ESRGANConfig, PSNRConfig, SRGANConfig, build_discriminator,
                           build_generator, esrgan_step, interpolate_networks,
                           interpolate_state_dicts, psnr_step, srgan_step, train_esrgan,
                           train_psnr, train_srgan)
from srlib.recipes.psnr import make_scheduler
from srlib.losses import PerceptualLoss
from srlib.train import Trainer


# ----------------------------------------------------------------------------- helpers
def tiny_images(n=2, side=136, seed=0):
    """Smooth random colour images with some edges: enough structure to learn from."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = {}
    for i in range(n):
        f = rng.uniform(2, 6, size=3)
        img = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (f[c] * xx + (c + 1) * yy)) for c in range(3)], -1)
        img[side // 3: side // 2, side // 4: side // 2] = rng.uniform(0, 1, size=3)
        out[f"img{i}"] = (img * 255).round().astype(np.uint8)
    return out


def tiny_psnr(arch="msrresnet", **kw):
    values = dict(profile="smoke", arch=arch, num_feat=4, num_block=1, num_grow_ch=4, steps=3,
                  batch_size=2, lr_patch=8, lr=1e-3, period=3, ema_decay=None)
    values.update(kw)
    return PSNRConfig(**values)


class RecordingTrainer(Trainer):
    """Records, at every optimize() call, which models hold gradients after the backward."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls = []

    def optimize(self, loss, name):
        before = {n: [p.detach().clone() for p in m.parameters()] for n, m in self.raw_models.items()}
        super().optimize(loss, name)
        changed = {n: any(not torch.equal(p, q) for p, q in zip(before[n], m.parameters()))
                   for n, m in self.raw_models.items()}
        grads = {n: any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
                 for n, m in self.raw_models.items()}
        self.calls.append((name, changed, grads))
        for m in self.raw_models.values():  # so the next call's grads are its own
            for p in m.parameters():
                p.grad = None


# ----------------------------------------------------------------------- interpolation
def _pair_of_nets():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1))
    b = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1))
    a[1].num_batches_tracked.fill_(3)
    b[1].num_batches_tracked.fill_(7)
    b[1].running_mean.normal_()
    return a, b


def test_interpolation_reproduces_endpoints_exactly():
    a, b = _pair_of_nets()
    for alpha, ref in ((0.0, a), (1.0, b)):
        net = interpolate_networks(a, b, alpha)
        for k, v in net.state_dict().items():
            assert torch.equal(v, ref.state_dict()[k]), (alpha, k)


def test_interpolation_is_linear_in_between():
    a, b = _pair_of_nets()
    sa, sb = a.state_dict(), b.state_dict()
    for alpha in (0.2, 0.5, 0.8):
        sd = interpolate_state_dicts(sa, sb, alpha)
        w = sd["0.weight"]
        torch.testing.assert_close(w, (1 - alpha) * sa["0.weight"] + alpha * sb["0.weight"])
        torch.testing.assert_close(sd["1.running_mean"],
                                   (1 - alpha) * sa["1.running_mean"] + alpha * sb["1.running_mean"])
        # integer buffers are not blended: they come from the nearer endpoint
        assert int(sd["1.num_batches_tracked"]) == (7 if alpha >= 0.5 else 3)
    # linearity: equal steps in alpha give equal steps in weight space
    w = [interpolate_state_dicts(sa, sb, t)["2.weight"] for t in (0.1, 0.4, 0.7)]
    torch.testing.assert_close(w[1] - w[0], w[2] - w[1])


def test_interpolation_leaves_inputs_untouched_and_checks_inputs():
    a, b = _pair_of_nets()
    keep = {k: v.clone() for k, v in a.state_dict().items()}
    interpolate_networks(a, b, 0.5)
    assert all(torch.equal(v, keep[k]) for k, v in a.state_dict().items())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_networks(a, b, 1.5)
    with pytest.raises(ValueError, match="same keys"):
        interpolate_state_dicts({"x": torch.zeros(1)}, {"y": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match="shape"):
        interpolate_state_dicts({"x": torch.zeros(2)}, {"x": torch.zeros(3)}, 0.5)
    with pytest.raises(ValueError, match="same architecture"):
        interpolate_networks(a, nn.Linear(2, 2), 0.5)


# --------------------------------------------------------------------- configs & sizes
def test_paper_profile_carries_the_papers_numbers():
    e = ESRGANConfig.for_profile("paper")
    assert (e.pixel_weight, e.gan_weight, e.percep_weight) == (1e-2, 5e-3, 1.0)
    assert e.percep_layers == {"conv5_4": 1.0} and e.percep_criterion == "l1"
    assert (e.lr_g, e.lr_d, e.steps, e.gamma) == (1e-4, 1e-4, 400_000, 0.5)
    assert e.milestones == (50_000, 100_000, 200_000, 300_000)
    assert (e.batch_size, e.lr_patch * e.scale, e.disc_feat, e.ema_decay) == (16, 128, 64, 0.999)
    assert (e.psnr.arch, e.psnr.num_feat, e.psnr.num_block, e.psnr.num_grow_ch) == ("rrdbnet", 64, 23, 32)
    assert (e.psnr.lr, e.psnr.steps, e.psnr.period, e.psnr.pixel_loss) == (2e-4, 1_000_000, 250_000, "l1")

    s = SRGANConfig.for_profile("paper")
    assert s.gan_weight == 1e-3 and s.pixel_weight == 0.0
    assert s.content_layers == {"relu5_4": 1.0} and s.content_criterion == "l2"
    assert math.isclose(s.content_weight, 1 / 12.75)
    assert (s.lr_g, s.steps, s.milestones, s.gamma) == (1e-4, 200_000, (100_000,), 0.1)
    assert s.psnr.pixel_loss == "mse" and (s.psnr.num_feat, s.psnr.num_block) == (64, 16)

    m = PSNRConfig.for_profile("paper")
    assert (m.lr, m.betas, m.batch_size, m.lr_patch * m.scale, m.ema_decay) == (2e-4, (0.9, 0.99), 16, 128, 0.999)


def test_paper_sizes_match_basicsr_parameter_counts():
    assert count_params(build_generator(PSNRConfig.for_profile("paper"))) == 1_517_571
    assert count_params(build_generator(PSNRConfig.for_profile("paper", arch="rrdbnet"))) == 16_697_987
    assert count_params(build_discriminator(ESRGANConfig.for_profile("paper"))) == 14_499_401


def test_configs_differ_per_profile_and_pixel_loss_is_a_choice():
    for cls in (PSNRConfig, SRGANConfig, ESRGANConfig):
        cfgs = [cls.for_profile(p) for p in ("smoke", "standard", "paper")]
        assert len({c.steps for c in cfgs}) == 3, cls
    std = [PSNRConfig.for_profile("standard", pixel_loss=k) for k in ("l1", "mse", "charbonnier")]
    assert [c.pixel_loss for c in std] == ["l1", "mse", "charbonnier"]
    # the SRResNet of notebook 02 is the one SRGAN starts from, so the cache is shared
    assert SRGANConfig.for_profile("standard").psnr == PSNRConfig.for_profile("standard")
    assert ESRGANConfig.for_profile("standard").percep_layers == {"conv3_4": 1.0}


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="pixel_loss"):
        PSNRConfig.for_profile("smoke", pixel_loss="l3")
    with pytest.raises(ValueError, match="arch"):
        PSNRConfig.for_profile("smoke", arch="vdsr")
    with pytest.raises(ValueError, match="lr_patch=32"):
        ESRGANConfig.for_profile("smoke", lr_patch=24)
    with pytest.raises(ValueError, match="RRDBNet"):
        ESRGANConfig.for_profile("smoke", psnr=PSNRConfig.for_profile("smoke"))
    with pytest.raises(ValueError, match="SRResNet"):
        SRGANConfig.for_profile("smoke", psnr=PSNRConfig.for_profile("smoke", arch="rrdbnet"))


def test_schedulers_follow_basicsr():
    p = nn.Parameter(torch.zeros(1))
    cfg = tiny_psnr(lr=2e-4, schedule="cosine", period=10, eta_min=1e-7)
    opt = torch.optim.Adam([p], lr=cfg.lr)
    sched, lrs = make_scheduler(opt, cfg), []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [1e-7 + 0.5 * (2e-4 - 1e-7) * (1 + math.cos(math.pi * (t % 10) / 10)) for t in range(12)]
    np.testing.assert_allclose(lrs, want, rtol=1e-6)
    cfg = ESRGANConfig.for_profile("smoke", milestones=(2, 4), gamma=0.5, lr_g=1e-4)
    opt = torch.optim.Adam([p], lr=cfg.lr_g)
    sched, lrs = make_scheduler(opt, cfg), []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lrs, [1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5])


# --------------------------------------------------------------------------- PSNR step
class ConstantSR(nn.Module):
    """Outputs a learnable constant image of the right size: losses are easy to compute by hand."""

    def __init__(self, value=0.0):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x):
        n, ch, h, w = x.shape
        return self.c.expand(n, ch, 4 * h, 4 * w)


@pytest.mark.parametrize("kind,expected", [("l1", 0.5), ("mse", 0.25),
                                            ("charbonnier", math.sqrt(0.25 + 1e-6))])
def test_psnr_step_uses_the_chosen_pixel_loss(kind, expected):
    g = ConstantSR(0.25)
    tr = Trainer({"G": g}, {"G": torch.optim.SGD(g.parameters(), lr=0.1)},
                 lambda t, b, s: psnr_step(t, b, s, pixel_loss=kind), device="cpu", progress=False)
    batch = {"lr": torch.zeros(2, 3, 2, 2), "hr": torch.full((2, 3, 8, 8), 0.75)}
    out = psnr_step(tr, batch, 0, pixel_loss=kind)
    assert math.isclose(float(out[f"l_{kind}"]), expected, rel_tol=1e-6)
    assert float(g.c.detach()) > 0.25  # moved toward the target


def test_psnr_training_reduces_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = tiny_psnr()
    g = build_generator(cfg)
    lr_img = torch.rand(2, 3, 8, 8)
    up = nn.functional.interpolate(lr_img, scale_factor=4, mode="bilinear", align_corners=False)
    hr = up + 0.2  # a brightness shift the residual branch has to learn
    tr = Trainer({"G": g}, {"G": torch.optim.Adam(g.parameters(), lr=5e-3)},
                 lambda t, b, s: psnr_step(t, b, s, pixel_loss="l1"), device="cpu", progress=False)
    tr.fit(lambda s: {"lr": lr_img, "hr": hr}, 25)
    losses = [h["l_l1"] for h in tr.history]
    assert losses[0] > 0.15 and np.mean(losses[-5:]) < 0.5 * losses[0]


def test_train_psnr_caches_and_reloads(tmp_path, monkeypatch):
    images = tiny_images(side=40)
    cfg = tiny_psnr(pixel_loss="charbonnier")
    first = train_psnr(cfg, device="cpu", cache_dir=tmp_path, progress=False, images=images)
    assert not first.cached and len(first.history) == 3 and "l_charbonnier" in first.history[0]
    assert not first.model.training

    import srlib.recipes.psnr as psnr_mod
    monkeypatch.setattr(psnr_mod, "make_batch_fn", lambda *a, **k: pytest.fail("retrained"))
    second = train_psnr(cfg, device="cpu", cache_dir=tmp_path, progress=False, images=images)
    assert second.cached
    for k, v in first.model.state_dict().items():
        assert torch.equal(v, second.model.state_dict()[k])


# ---------------------------------------------------------------------------- GAN steps
def _gan_trainer(step_fn, G, D, percep):
    opts = {"G": torch.optim.Adam(G.parameters(), lr=1e-3), "D": torch.optim.Adam(D.parameters(), lr=1e-3)}
    return RecordingTrainer({"G": G, "D": D, "VGG": percep}, opts, step_fn, device="cpu", progress=False)


def _gan_batch():
    torch.manual_seed(1)
    return {"lr": torch.rand(2, 3, 32, 32), "hr": torch.rand(2, 3, 128, 128)}


@pytest.mark.parametrize("recipe", ["srgan", "esrgan"])
def test_gan_step_freezes_d_in_the_g_step_and_leaves_vgg_alone(recipe):
    torch.manual_seed(0)
    if recipe == "srgan":
        cfg = SRGANConfig.for_profile("smoke", psnr=tiny_psnr(), disc_feat=2)
        percep = PerceptualLoss({"relu1_1": 1.0}, weights="random", criterion="l2")
        step = lambda t, b, s: srgan_step(t, b, s, content=percep, content_weight=1.0, gan_weight=1e-3)
    else:
        cfg = ESRGANConfig.for_profile("smoke", psnr=tiny_psnr("rrdbnet"), disc_feat=2)
        percep = PerceptualLoss({"conv1_2": 1.0}, weights="random")
        step = lambda t, b, s: esrgan_step(t, b, s, percep=percep, pixel_weight=1e-2, gan_weight=5e-3)
    G, D = build_generator(cfg.psnr), build_discriminator(cfg)
    vgg_before = [p.clone() for p in percep.parameters()]
    tr = _gan_trainer(step, G, D, percep)
    out = step(tr, _gan_batch(), 0)
    (n1, changed1, grads1), (n2, changed2, grads2) = tr.calls
    assert (n1, n2) == ("G", "D")  # BasicSR order: G step first, then D
    assert grads1 == {"G": True, "D": False, "VGG": False} and changed1 == {"G": True, "D": False, "VGG": False}
    assert grads2 == {"G": False, "D": True, "VGG": False} and changed2 == {"G": False, "D": True, "VGG": False}
    assert all(torch.equal(a, b) for a, b in zip(vgg_before, percep.parameters()))
    assert all(p.requires_grad for p in D.parameters())  # unfrozen again afterwards
    assert all(math.isfinite(float(v)) for v in out.values())


def test_esrgan_losses_have_the_papers_weights():
    """The logged terms are eta * L1, L_percep and lambda * L_G^Ra computed by hand."""
    torch.manual_seed(0)
    cfg = ESRGANConfig.for_profile("smoke", psnr=tiny_psnr("rrdbnet"), disc_feat=2)
    G, D = build_generator(cfg.psnr), build_discriminator(cfg)
    percep = PerceptualLoss({"conv1_2": 1.0}, weights="random")
    batch = _gan_batch()
    with torch.no_grad():
        sr = G(batch["lr"])
        D.eval()  # batch-norm in eval mode: identical logits on every call
        real, fake = D(batch["hr"]), D(sr)
        l1 = (sr - batch["hr"]).abs().mean()
        p = percep.total(sr, batch["hr"])
        bce = nn.functional.binary_cross_entropy_with_logits
        g_ra = 0.5 * (bce(real - fake.mean(), torch.zeros_like(real))
                      + bce(fake - real.mean(), torch.ones_like(fake)))
    tr = Trainer({"G": G, "D": D}, {"G": torch.optim.SGD(G.parameters(), lr=0.0),
                                    "D": torch.optim.SGD(D.parameters(), lr=0.0)},
                 lambda *a: {}, device="cpu", progress=False)
    out = esrgan_step(tr, batch, 0, percep=percep, pixel_weight=1e-2, gan_weight=5e-3)
    torch.testing.assert_close(out["l_g_pix"], 1e-2 * l1)
    torch.testing.assert_close(out["l_g_percep"], p)
    torch.testing.assert_close(out["l_g_gan"], 5e-3 * g_ra)


def test_discriminator_learns_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = SRGANConfig.for_profile("smoke", psnr=tiny_psnr(), disc_feat=4)
    G, D = build_generator(cfg.psnr), build_discriminator(cfg)
    percep = PerceptualLoss({"relu1_1": 1.0}, weights="random", criterion="l2")
    batch = _gan_batch()
    opts = {"G": torch.optim.Adam(G.parameters(), lr=1e-4), "D": torch.optim.Adam(D.parameters(), lr=1e-3)}
    step = lambda t, b, s: srgan_step(t, b, s, content=percep, content_weight=1.0, gan_weight=1e-3)
    tr = Trainer({"G": G, "D": D}, opts, step, device="cpu", progress=False)
    tr.fit(lambda s: batch, 8)
    d = [h["l_d"] for h in tr.history]
    assert d[-1] < d[0]
    assert tr.history[-1]["out_d_real"] > tr.history[-1]["out_d_fake"]


# ------------------------------------------------------------- end to end, tiny, cached
def test_gan_recipes_start_from_the_cached_psnr_model(tmp_path):
    images = tiny_images()
    s_cfg = SRGANConfig.for_profile("smoke", psnr=tiny_psnr(), disc_feat=2, steps=2, lr_g=0.0,
                                    batch_size=1, vgg_weights="random",
                                    content_layers={"relu1_1": 1.0})
    srgan = train_srgan(s_cfg, device="cpu", cache_dir=tmp_path, progress=False, images=images)
    psnr = train_psnr(s_cfg.psnr, device="cpu", cache_dir=tmp_path, progress=False, images=images)
    assert psnr.cached  # trained once, by the SRGAN recipe
    # with a zero generator learning rate, SRGAN's G is exactly the PSNR model it started from
    for k, v in psnr.model.state_dict().items():
        assert torch.equal(v, srgan.model.state_dict()[k]), k
    assert {"l_g_content", "l_g_gan", "l_d"} <= set(srgan.history[-1])
    assert srgan.config.vgg_weights == "random"  # "auto" would be resolved before keying the cache

    e_cfg = ESRGANConfig.for_profile("smoke", psnr=tiny_psnr("rrdbnet"), disc_feat=2, steps=2,
                                     batch_size=1, vgg_weights="random",
                                     percep_layers={"conv1_1": 1.0})
    esrgan = train_esrgan(e_cfg, device="cpu", cache_dir=tmp_path, progress=False, images=images)
    assert {"l_g_pix", "l_g_percep", "l_g_gan", "l_d"} <= set(esrgan.history[-1])
    rrdb = train_psnr(e_cfg.psnr, device="cpu", cache_dir=tmp_path, progress=False, images=images)
    assert rrdb.cached
    moved = [not torch.equal(v, rrdb.model.state_dict()[k]) for k, v in esrgan.model.state_dict().items()]
    assert any(moved)  # fine-tuned away from its initialisation


# ------------------------------------------------------------------------- evaluation
def test_evaluation_helpers_score_like_the_metrics_module():
    from srlib import metrics
    from srlib.recipes.evaluate import bicubic_upscale, interpolation_sweep, results_row, score, super_resolve

    rng = np.random.default_rng(0)
    hr = (rng.uniform(0, 1, (104, 104, 3)) * 255).astype(np.uint8)
    lr = hr[::4, ::4].copy()
    pairs = [("a", lr, hr)]
    up = bicubic_upscale(lr, 4)
    assert up.shape == hr.shape and up.dtype == np.uint8
    row = results_row("bicubic", super_resolve(None, pairs, 4), pairs, 4)
    assert list(row)[:5] == ["method", "psnr_y", "ssim_y", "lpips", "niqe"]
    assert math.isclose(row["psnr_y"], float(metrics.psnr(up, hr, 4)))
    with pytest.raises(ValueError, match="scale"):
        score([up[:100]], pairs, 4)

    torch.manual_seed(0)
    a, b = build_generator(tiny_psnr()), build_generator(tiny_psnr())
    rows, outs = interpolation_sweep(a, b, [0.0, 1.0], pairs, 4, device="cpu")
    assert [r["alpha"] for r in rows] == [0.0, 1.0]
    np.testing.assert_array_equal(outs[0.0][0], super_resolve(a, pairs, 4, device="cpu")[0])
    np.testing.assert_array_equal(outs[1.0][0], super_resolve(b, pairs, 4, device="cpu")[0])
