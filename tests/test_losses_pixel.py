"""Pixel losses against hand-computed values."""

import math

import pytest
import torch

from srlib.losses import CharbonnierLoss, L1Loss, MSELoss, charbonnier_loss, l1_loss, mse_loss


def test_l1_and_mse_hand_values_and_reductions():
    pred = torch.tensor([0.0, 1.0, -3.0])
    target = torch.zeros(3)
    assert l1_loss(pred, target).item() == pytest.approx(4 / 3)
    assert l1_loss(pred, target, reduction="sum").item() == pytest.approx(4.0)
    assert torch.equal(l1_loss(pred, target, reduction="none"), torch.tensor([0.0, 1.0, 3.0]))
    assert mse_loss(pred, target).item() == pytest.approx(10 / 3)
    assert mse_loss(pred, target, reduction="sum").item() == pytest.approx(10.0)


def test_charbonnier_is_sqrt_d2_plus_eps2():
    # d = 3, eps = 4 -> sqrt(9 + 16) = 5; d = 0 -> eps.
    assert charbonnier_loss(torch.tensor([3.0]), torch.tensor([0.0]), eps=4.0).item() == pytest.approx(5.0)
    assert charbonnier_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(1e-3)
    d = torch.tensor([0.5, -0.25])
    expected = (math.sqrt(0.25 + 1e-6) + math.sqrt(0.0625 + 1e-6)) / 2
    assert charbonnier_loss(d, torch.zeros(2)).item() == pytest.approx(expected, rel=1e-6)
    # Smooth at zero: the gradient there is 0, unlike L1's subgradient sign(0).
    x = torch.zeros(1, requires_grad=True)
    charbonnier_loss(x, torch.zeros(1)).backward()
    assert x.grad.item() == 0.0
    # Far from zero it behaves like L1: slope -> 1.
    y = torch.tensor([10.0], requires_grad=True)
    charbonnier_loss(y, torch.zeros(1)).backward()
    assert y.grad.item() == pytest.approx(1.0, abs=1e-8)


def test_module_wrappers_apply_weight():
    p, t = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    assert L1Loss(loss_weight=0.5)(p, t).item() == pytest.approx(0.75)
    assert MSELoss(loss_weight=2.0, reduction="sum")(p, t).item() == pytest.approx(10.0)
    assert CharbonnierLoss(eps=1.0)(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(1.0)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="differs from target"):
        l1_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match="reduction"):
        mse_loss(torch.zeros(2), torch.zeros(2), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        L1Loss(reduction="avg")
    with pytest.raises(ValueError, match="eps > 0"):
        charbonnier_loss(torch.zeros(2), torch.zeros(2), eps=0.0)
