"""GAN losses against hand-computed values (BCE at logit 0 = log 2, relativistic pairs, ...)."""

import math

import pytest
import torch

from srlib.losses import d_loss, g_loss, relativistic_d_loss, relativistic_g_loss

LOG2 = math.log(2)


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_vanilla_and_minimax_at_logit_zero():
    z = torch.zeros(4)
    assert d_loss("vanilla", z, z).item() == pytest.approx(2 * LOG2)
    assert d_loss("minimax", z, z).item() == pytest.approx(2 * LOG2)
    assert g_loss("vanilla", z).item() == pytest.approx(LOG2)       # -log D = -log 1/2
    assert g_loss("minimax", z).item() == pytest.approx(-LOG2)      # log(1 - D) = log 1/2


def test_vanilla_matches_goodfellow_eq1_at_d_three_quarters():
    x = torch.full((3,), math.log(3.0))  # sigmoid = 0.75
    assert d_loss("vanilla", x, x).item() == pytest.approx(-math.log(0.75) - math.log(0.25))
    assert g_loss("vanilla", x).item() == pytest.approx(-math.log(0.75))
    assert g_loss("minimax", x).item() == pytest.approx(math.log(0.25))


def test_minimax_saturates_where_non_saturating_does_not():
    # D confidently rejects the fake (D(G(z)) = sigmoid(-5) ~ 0.0067).
    grads = {}
    for kind in ("minimax", "vanilla"):
        f = torch.tensor([-5.0], requires_grad=True)
        g_loss(kind, f).backward()
        grads[kind] = f.grad.item()
    assert grads["minimax"] == pytest.approx(-sig(-5.0))           # d/dx log(1 - s(x)) = -s(x)
    assert grads["vanilla"] == pytest.approx(-(1 - sig(-5.0)))     # d/dx -log s(x) = -(1 - s(x))
    assert abs(grads["vanilla"]) > 100 * abs(grads["minimax"])


def test_lsgan_hand_values():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    # 1/2 mean((D(x)-1)^2) + 1/2 mean(D(G(z))^2) = 1/2 * 1/2 + 1/2 * 2
    assert d_loss("lsgan", real, fake).item() == pytest.approx(1.25)
    # 1/2 mean((D(G(z))-1)^2) = 1/2 * (1 + 1) / 2
    assert g_loss("lsgan", fake).item() == pytest.approx(0.5)


def test_hinge_hand_values():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 0.5])
    # relu(1 - real) = [0, .5, 2]; relu(1 + fake) = [0, 1, 1.5]
    assert d_loss("hinge", real, fake).item() == pytest.approx(2.5 / 3 + 2.5 / 3)
    assert g_loss("hinge", fake).item() == pytest.approx(0.5)  # -mean([-2, 0, .5])


def test_wgan_hand_values():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    assert d_loss("wgan", real, fake).item() == pytest.approx(-1.0 - 2.0)
    assert g_loss("wgan", fake).item() == pytest.approx(1.0)


def test_relativistic_average_two_element_batches():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    # D_Ra(x_r, x_f) = sigmoid(C(x_r) - mean C(x_f)); mean C(x_f) = 1, mean C(x_r) = 2.
    d_real = [sig(1 - 1), sig(3 - 1)]          # D_Ra(x_r, x_f)
    d_fake = [sig(0 - 2), sig(2 - 2)]          # D_Ra(x_f, x_r)
    l_d = -(sum(math.log(p) for p in d_real) / 2) - (sum(math.log(1 - p) for p in d_fake) / 2)
    l_g = -(sum(math.log(1 - p) for p in d_real) / 2) - (sum(math.log(p) for p in d_fake) / 2)
    # Returned as the mean of the two terms (ESRGAN's code, BasicSR).
    assert relativistic_d_loss(real, fake).item() == pytest.approx(l_d / 2)
    assert relativistic_g_loss(real, fake).item() == pytest.approx(l_g / 2)
    assert d_loss("ragan", real, fake).item() == pytest.approx(l_d / 2)
    assert g_loss("ragan", fake, real).item() == pytest.approx(l_g / 2)
    # Symmetry: G's loss is D's loss with the roles of real and fake swapped.
    assert relativistic_g_loss(real, fake).item() == pytest.approx(relativistic_d_loss(fake, real).item())
    # Invariance: adding a constant to every critic output changes nothing (only differences count).
    assert relativistic_d_loss(real + 7, fake + 7).item() == pytest.approx(l_d / 2)


def test_relativistic_g_gradient_reaches_fakes_through_both_terms():
    real = torch.tensor([1.0, 3.0])
    fake = torch.tensor([0.0, 2.0], requires_grad=True)
    relativistic_g_loss(real, fake).backward()
    # d/df_j of 0.5*[mean softplus(r_i - mean f) + mean softplus(-(f_j - mean r))]
    r = [1.0, 3.0]
    f = [0.0, 2.0]
    mf, mr = sum(f) / 2, sum(r) / 2
    term_real = sum(-sig(ri - mf) for ri in r) / 2 / 2          # via mean f, per fake element
    for j in range(2):
        term_fake = -(1 - sig(f[j] - mr)) / 2
        assert fake.grad[j].item() == pytest.approx(0.5 * (term_real + term_fake))


def test_patch_discriminator_outputs_are_averaged():
    real = torch.zeros(2, 1, 3, 3)
    fake = torch.zeros(2, 1, 3, 3)
    assert d_loss("vanilla", real, fake).item() == pytest.approx(2 * LOG2)
    assert relativistic_d_loss(real, fake).item() == pytest.approx(LOG2)


def test_bad_kind_and_missing_real_logits():
    with pytest.raises(ValueError, match="unknown GAN loss kind"):
        d_loss("wasserstein", torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match="real_logits"):
        g_loss("ragan", torch.zeros(2))


def test_relativistic_d_loss_detaches_the_other_sides_mean_like_current_basicsr():
    """BasicSR's ESRGANModel (since 2020): real term BCE(r - mean(f).detach(), 1), fake term
    BCE(f - mean(r).detach(), 0), each halved. Gradients by hand: dL/dr_i = 0.5 (s(r_i - mf) - 1) / n,
    dL/df_j = 0.5 s(f_j - mr) / m; the coupled (2018) form adds the cross terms."""
    r0, f0 = [0.5, -1.0, 2.0], [0.3, -0.7]
    mr, mf = sum(r0) / 3, sum(f0) / 2
    r = torch.tensor(r0, dtype=torch.float64, requires_grad=True)
    f = torch.tensor(f0, dtype=torch.float64, requires_grad=True)
    relativistic_d_loss(r, f).backward()
    want_r = [0.5 * (sig(x - mf) - 1) / 3 for x in r0]
    want_f = [0.5 * sig(y - mr) / 2 for y in f0]
    assert r.grad.tolist() == pytest.approx(want_r, rel=1e-12)
    assert f.grad.tolist() == pytest.approx(want_f, rel=1e-12)
    assert d_loss("ragan", r.detach(), f.detach()).item() == pytest.approx(
        0.5 * (sum(-math.log(sig(x - mf)) for x in r0) / 3 + sum(-math.log(1 - sig(y - mr)) for y in f0) / 2))

    # the coupled form: same value, each term also differentiates the other side's mean
    r2, f2 = r.detach().clone().requires_grad_(), f.detach().clone().requires_grad_()
    from srlib.losses.gan import relativistic_d_loss_coupled

    coupled = relativistic_d_loss_coupled(r2, f2)
    assert coupled.item() == pytest.approx(relativistic_d_loss(r, f).item(), rel=1e-12)
    coupled.backward()
    cross_r = -sum(0.5 * sig(y - mr) / 2 for y in f0) / 3     # fake term through mean(r)
    cross_f = -sum(0.5 * (sig(x - mf) - 1) / 3 for x in r0) / 2  # real term through mean(f)
    assert r2.grad.tolist() == pytest.approx([g + cross_r for g in want_r], rel=1e-12)
    assert f2.grad.tolist() == pytest.approx([g + cross_f for g in want_f], rel=1e-12)
    assert (r2.grad - r.grad).abs().max() > 0.05
