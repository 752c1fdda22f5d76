"""Tests for srlib.gan_toy: the ring data, the mode metrics, the alternating GAN step, the
generator-gradient analysis and the small training loops (tiny sizes, all fast)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from srlib import gan_toy
from srlib.gan_toy import (ModeStats, generator_logit_grad, mode_stats, ring_centers,
                           sample_ring)


# ----------------------------------------------------------------------------- ring data


def test_ring_centers_are_on_the_circle_and_evenly_spaced():
    c = ring_centers(8, 2.0)
    assert c.shape == (8, 2)
    np.testing.assert_allclose(np.hypot(c[:, 0], c[:, 1]), 2.0, atol=1e-12)
    np.testing.assert_allclose(c[0], [2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(c[2], [0.0, 2.0], atol=1e-12)  # 90 degrees
    np.testing.assert_allclose(c[1], [np.sqrt(2), np.sqrt(2)], atol=1e-12)
    gaps = np.linalg.norm(c - np.roll(c, 1, axis=0), axis=1)
    np.testing.assert_allclose(gaps, 2 * 2.0 * np.sin(np.pi / 8), atol=1e-12)


def test_sample_ring_modes_spread_and_balance():
    g = torch.Generator().manual_seed(0)
    x, modes = sample_ring(8000, std=0.05, generator=g, return_modes=True)
    assert x.shape == (8000, 2) and x.dtype == torch.float32
    c = torch.as_tensor(ring_centers(), dtype=torch.float32)
    resid = x - c[modes]
    assert abs(resid.std().item() - 0.05) < 0.003          # the asked-for spread
    assert resid.mean(0).abs().max().item() < 0.005        # centred on its mode
    counts = torch.bincount(modes, minlength=8).numpy()
    assert counts.min() > 850 and counts.max() < 1150      # uniform over 8 modes (1000 each)
    # every sample is nearest to its own mode
    nearest = torch.cdist(x, c).argmin(1)
    assert torch.equal(nearest, modes)


def test_sample_ring_is_repeatable_and_checks_input():
    a = sample_ring(5, generator=torch.Generator().manual_seed(3))
    b = sample_ring(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="n must be"):
        sample_ring(0)
    with pytest.raises(ValueError, match="n_modes"):
        ring_centers(0)


# ----------------------------------------------------------------------------- mode_stats


def test_mode_stats_all_samples_on_one_centre_cover_one_mode():
    c = ring_centers()
    s = mode_stats(np.repeat(c[3:4], 100, axis=0), c, 0.02)
    assert isinstance(s, ModeStats)
    covered, hq, counts = s
    assert covered == 1 and hq == 1.0
    assert counts.tolist() == [0, 0, 0, 100, 0, 0, 0, 0]


def test_mode_stats_evenly_spread_samples_cover_all_modes():
    c = ring_centers()
    rng = np.random.default_rng(0)
    x = np.repeat(c, 30, axis=0) + rng.normal(0, 0.02, (240, 2))
    covered, hq, counts = mode_stats(x, c, 0.02, min_count=20)
    assert covered == 8
    # a 2-D Gaussian lands within 3 std of its centre with probability 1 - exp(-9/2) = 0.989
    assert hq > 0.95
    assert counts.sum() == round(hq * 240)


def test_mode_stats_far_samples_are_not_high_quality():
    c = ring_centers()
    x = np.zeros((50, 2))  # the centre of the ring: 2.0 away from every mode
    covered, hq, counts = mode_stats(x, c, 0.02)
    assert covered == 0 and hq == 0.0 and counts.sum() == 0


def test_mode_stats_threshold_and_min_count_by_hand():
    c = np.array([[0.0, 0.0], [10.0, 0.0]])
    # distances to mode 0: 0.29 (in, 3*0.1=0.3), 0.31 (out), and 3 points at mode 1
    x = np.array([[0.29, 0.0], [0.0, 0.31], [10, 0], [10, 0.1], [9.9, 0]])
    covered, hq, counts = mode_stats(x, c, 0.1, min_count=2)
    assert counts.tolist() == [1, 3]
    assert covered == 1                       # mode 0 has 1 < 2 high-quality samples
    assert hq == pytest.approx(4 / 5)
    assert mode_stats(x, c, 0.1, min_count=1).modes_covered == 2
    assert mode_stats(torch.as_tensor(x), c, 0.1, min_count=1).modes_covered == 2


def test_mode_stats_rejects_bad_input():
    c = ring_centers()
    with pytest.raises(ValueError, match="same D"):
        mode_stats(np.zeros((4, 3)), c, 0.02)
    with pytest.raises(ValueError, match="diverged"):
        mode_stats(np.full((4, 2), np.nan), c, 0.02)
    with pytest.raises(ValueError, match="std"):
        mode_stats(np.zeros((4, 2)), c, 0.0)


# ----------------------------------------------------------------------------- gradient analysis


@pytest.mark.parametrize("g_form,loss_fn", [
    ("minimax", lambda l: torch.log(1 - torch.sigmoid(l))),
    ("non_saturating", lambda l: -torch.log(torch.sigmoid(l))),
])
def test_generator_logit_grad_matches_autograd(g_form, loss_fn):
    logits = torch.linspace(-6, 6, 25, dtype=torch.float64, requires_grad=True)
    loss_fn(logits).sum().backward()
    d = torch.sigmoid(logits).detach().numpy()
    np.testing.assert_allclose(generator_logit_grad(d, g_form), logits.grad.numpy(), atol=1e-10)


def test_generator_logit_grad_vanishes_only_for_minimax_when_d_wins():
    d = np.array([1e-4, 0.5, 1 - 1e-4])
    mm = np.abs(generator_logit_grad(d, "minimax"))
    ns = np.abs(generator_logit_grad(d, "non_saturating"))
    assert mm[0] < 1e-3 and ns[0] > 0.999     # D wins (rejects fakes): minimax is silent
    assert mm[1] == ns[1] == 0.5              # the two forms agree where D is undecided
    with pytest.raises(ValueError, match="g_form"):
        generator_logit_grad(d, "wasserstein")
    with pytest.raises(ValueError, match="probabilities"):
        generator_logit_grad([1.5], "minimax")


# ----------------------------------------------------------------------------- the alternating step


def _tiny_pair(seed=0):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    return G, D


def _grads(loss, params):
    return torch.autograd.grad(loss, list(params))


@pytest.mark.parametrize("kind,g_form", [("vanilla", "non_saturating"), ("vanilla", "minimax"),
                                         ("lsgan", "non_saturating")])
def test_gan_step_is_d_step_then_g_step_through_the_updated_d(kind, g_form):
    """Replay Algorithm 1 by hand with SGD and compare every weight after one gan_step."""
    G, D = _tiny_pair()
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    lr = 0.1
    real = torch.randn(16, 2, dtype=torch.float64)
    z = torch.randn(16, 2, dtype=torch.float64)
    out = gan_toy.gan_step(G, D, torch.optim.SGD(G.parameters(), lr), torch.optim.SGD(D.parameters(), lr),
                           real, z, kind, g_form)

    def d_loss(r, f):
        if kind == "lsgan":
            return 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()
        return -F.logsigmoid(r).mean() - torch.log1p(-torch.sigmoid(f)).mean()

    def g_loss(f):
        if kind == "lsgan":
            return 0.5 * ((f - 1) ** 2).mean()
        if g_form == "minimax":
            return torch.log1p(-torch.sigmoid(f)).mean()
        return -F.logsigmoid(f).mean()

    # D step on the old D with a fixed fake batch
    fake = G0(z).detach()
    gd = _grads(d_loss(D0(real), D0(fake)), D0.parameters())
    with torch.no_grad():
        for p, g in zip(D0.parameters(), gd):
            p -= lr * g
    # G step through the *updated* D
    gg = _grads(g_loss(D0(G0(z))), G0.parameters())
    with torch.no_grad():
        for p, g in zip(G0.parameters(), gg):
            p -= lr * g
    for a, b in zip(D.parameters(), D0.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # D was frozen in the G step: its .grad holds the D-loss gradient only (nothing added by G's)
    for p, g in zip(D.parameters(), gd):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=1e-12)
    for a, b in zip(G.parameters(), G0.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert set(out) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(p.requires_grad for p in D.parameters())  # unfrozen again afterwards


def test_gan_step_freezes_d_in_g_step_and_keeps_g_out_of_d_step():
    G, D = _tiny_pair(1)
    seen = []  # (phase, any D param requires grad, does D's input carry G's graph)
    D.register_forward_hook(lambda m, inp, out: seen.append(
        (any(p.requires_grad for p in m.parameters()), inp[0].requires_grad)))
    opt_g = torch.optim.SGD(G.parameters(), 0.1)
    opt_d = torch.optim.SGD(D.parameters(), 0.1)
    g_before = [p.detach().clone() for p in G.parameters()]
    d_snap = {}

    def spy_d_step(*a, **k):  # record the weights right after the D step, before the G step
        d_snap["d"] = [p.detach().clone() for p in D.parameters()]
        d_snap["g"] = [p.detach().clone() for p in G.parameters()]
        return orig_step(*a, **k)

    orig_step = opt_d.step
    opt_d.step = spy_d_step
    gan_toy.gan_step(G, D, opt_g, opt_d, torch.randn(8, 2, dtype=torch.float64),
                     torch.randn(8, 2, dtype=torch.float64))
    # D step: D trainable, real input and a detached fake; G step: D frozen, fake carries G's graph
    assert seen == [(True, False), (True, False), (False, True)]
    # the D step did not move G (G only moves in the G step)
    for a, b in zip(d_snap["g"], g_before):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(G.parameters(), g_before))


def test_gan_step_g_step_leaves_d_weights_unchanged():
    """Even with an optimizer that would move D on any gradient, the G step must not touch D."""
    G, D = _tiny_pair(2)
    opt_d = torch.optim.SGD(D.parameters(), 0.1)
    after_d_step = {}
    orig = opt_d.step

    def step():
        orig()
        after_d_step["w"] = [p.detach().clone() for p in D.parameters()]

    opt_d.step = step
    gan_toy.gan_step(G, D, torch.optim.SGD(G.parameters(), 0.1), opt_d,
                     torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64))
    for a, b in zip(D.parameters(), after_d_step["w"]):
        assert torch.equal(a, b)


def test_gan_step_rejects_unknown_forms_and_reports_divergence():
    G, D = _tiny_pair()
    args = (G, D, torch.optim.SGD(G.parameters(), 0.1), torch.optim.SGD(D.parameters(), 0.1),
            torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="g_form"):
        gan_toy.gan_step(*args, "vanilla", "wasserstein")
    with pytest.raises(ValueError, match="only for loss_kind='vanilla'"):
        gan_toy.gan_step(*args, "lsgan", "minimax")
    real = torch.full((4, 2), float("nan"), dtype=torch.float64)
    with pytest.raises(gan_toy.TrainingDivergedError):
        gan_toy.gan_step(*args[:4], real, args[5])


def test_generator_input_grads_match_the_analytic_logit_gradient():
    """For D(x) = w.x + b the gradient wrt the fake point is dL/dlogit * w, so its norm is
    |dL/dlogit| * |w|: the measured curve must equal the analytic one times |w|."""
    G = nn.Identity()
    D = nn.Linear(2, 1).double()
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[3.0, -4.0]]))
        D.bias.zero_()
    z = torch.randn(50, 2, dtype=torch.float64)
    for form in ("minimax", "non_saturating"):
        d_fake, norms = gan_toy.generator_input_grads(G, D, z, form)
        np.testing.assert_allclose(norms, 5.0 * np.abs(generator_logit_grad(d_fake, form)),
                                   rtol=1e-9)
    assert D.weight.grad is None  # D untouched


# ----------------------------------------------------------------------------- loops (tiny)


def test_train_toy_gan_records_history_snapshots_and_stats():
    r = gan_toy.train_toy_gan(steps=6, batch_size=16, hidden=8, depth=1, snapshot_steps=(0, 3, 6),
                              eval_every=3, n_eval=64, grid_size=9, seed=1)
    assert r.history["step"] == list(range(1, 7))
    assert len(r.history["d_loss"]) == 6 and all(0 <= v <= 1 for v in r.history["d_real"])
    assert [s["step"] for s in r.snapshots] == [0, 3, 6]
    assert r.snapshots[0]["samples"].shape == (64, 2) and r.snapshots[0]["surface"].shape == (9, 9)
    assert r.coverage["step"] == [0, 3, 6]
    assert isinstance(r.final, ModeStats)
    # same seed, same run
    r2 = gan_toy.train_toy_gan(steps=6, batch_size=16, hidden=8, depth=1, snapshot_steps=(6,),
                               eval_every=3, n_eval=64, grid_size=9, seed=1)
    np.testing.assert_array_equal(r.snapshots[-1]["samples"], r2.snapshots[-1]["samples"])


def test_decision_surface_grid_orientation():
    """Row i is y, column j is x: a D that scores x only varies along columns."""
    D = nn.Linear(2, 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[1.0, 0.0]]))
        D.bias.zero_()
    s = gan_toy.decision_surface(D, "lsgan", extent=2.0, grid_size=5)
    np.testing.assert_allclose(s[0], [-2, -1, 0, 1, 2], atol=1e-6)
    np.testing.assert_allclose(s[:, 0], -2.0, atol=1e-6)


def test_glyph_patches_and_a_few_dcgan_steps():
    x = gan_toy.glyph_patches(12, seed=0, n_images=4)
    assert x.shape == (12, 1, 32, 32) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    assert (x.flatten(1).std(1) >= 0.15 - 1e-6).all()    # no blank patches
    assert torch.equal(x, gan_toy.glyph_patches(12, seed=0, n_images=4))
    r = gan_toy.train_dcgan(x, steps=2, batch_size=4, ngf=4, z_dim=8, snapshot_steps=(0, 2),
                            n_show=4)
    assert [s["step"] for s in r.snapshots] == [0, 2]
    assert r.snapshots[-1]["images"].shape == (4, 1, 32, 32)
    with pytest.raises(gan_toy.DatasetError, match="32, 32"):
        gan_toy.train_dcgan(torch.zeros(2, 1, 16, 16))


def test_tile_layout():
    imgs = np.zeros((3, 1, 2, 2), np.float32)
    imgs[1] = 1
    t = gan_toy.tile(imgs, ncols=2, pad=1, pad_value=0.5)
    assert t.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    assert (t[1:3, 4:6] == 1).all() and (t[1:3, 1:3] == 0).all() and t[0, 0, 0] == 0.5


def test_single_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with gan_toy.single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# ----------------------------------------------------------------------------- figures and SN


def test_settle_spectral_norm_converges_to_the_true_largest_singular_value():
    from srlib.archs.gan_nets import MLPDiscriminator

    torch.manual_seed(0)
    D = MLPDiscriminator(hidden=32, depth=3, spectral_norm=True)
    n = gan_toy.settle_spectral_norm(D, iterations=200)
    assert n == 4  # three hidden layers and the output layer
    for layer in D.modules():
        if hasattr(layer, "weight_orig"):
            w = layer.weight_orig.detach()
            sigma = torch.linalg.matrix_norm(w, ord=2)
            est = torch.dot(layer.weight_u, w @ layer.weight_v)
            assert float(est) == pytest.approx(float(sigma), rel=1e-4)
            # the normalised weight in use has spectral norm 1 before any training step
            assert float(torch.linalg.matrix_norm(layer.weight, ord=2)) == pytest.approx(1.0, rel=1e-4)


def test_toy_run_with_spectral_norm_starts_from_a_settled_d():
    res = gan_toy.train_toy_gan(steps=1, hidden=16, spectral_norm=True, snapshot_steps=(0,),
                                n_eval=200, grid_size=8, batch_size=32)
    for layer in res.D.modules():
        if hasattr(layer, "weight_orig"):
            assert float(torch.linalg.matrix_norm(layer.weight, ord=2)) == pytest.approx(1.0, abs=0.05)


def test_side_by_side_title_does_not_overlap_the_panel_titles():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = gan_toy.train_toy_gan(steps=2, hidden=8, snapshot_steps=(2,), n_eval=100, grid_size=8,
                                batch_size=16)
    fig = gan_toy.plot_final_side_by_side({"a": res, "b": res}, title="after 2 steps, seed 0")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    top_of_titles = max(ax.title.get_window_extent(r).y1 for ax in fig.axes)
    assert fig._suptitle.get_window_extent(r).y0 >= top_of_titles
    plt.close(fig)
