"""Pixel losses: L1, L2 (MSE) and Charbonnier.

A pixel loss compares SR output and ground truth value by value. L2 is the maximum-likelihood
loss under Gaussian noise and is what PSNR measures, but it regresses to the mean of the
plausible outputs (blur); L1 (Laplacian likelihood) is less sensitive to outliers and is the
default of EDSR and ESRGAN's pre-training. Charbonnier (Lai et al., "Deep Laplacian Pyramid
Networks for Fast and Accurate Super-Resolution", CVPR 2017, Eq. 2) is a smooth L1:
``rho(d) = sqrt(d^2 + eps^2)`` with ``eps = 1e-3``, differentiable at zero.

Every function takes ``pred`` and ``target`` of the same shape and a ``reduction``
(``"mean"``, ``"sum"`` or ``"none"``); the ``nn.Module`` wrappers add a ``loss_weight``.
"""

from __future__ import annotations

import torch
from torch import nn

REDUCTIONS = ("mean", "sum", "none")


def reduce_loss(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``"mean"`` / ``"sum"`` / ``"none"`` to element-wise loss values."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")


def check_pair(pred: torch.Tensor, target: torch.Tensor, what: str = "loss") -> None:
    """Both tensors, same shape: a clear error instead of silent broadcasting."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(f"{what} expects two torch.Tensors, got {type(pred).__name__} and "
                         f"{type(target).__name__}")
    if pred.shape != target.shape:
        raise ValueError(f"{what}: prediction shape {tuple(pred.shape)} differs from target shape "
                         f"{tuple(target.shape)}; crop or resize so that they match")


def l1_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error ``|pred - target|``."""
    check_pair(pred, target, "l1_loss")
    return reduce_loss((pred.float() - target.float()).abs(), reduction)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error ``(pred - target)^2`` (the L2 loss that PSNR measures)."""
    check_pair(pred, target, "mse_loss")
    return reduce_loss((pred.float() - target.float()).pow(2), reduction)


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3,
                     reduction: str = "mean") -> torch.Tensor:
    """Charbonnier penalty ``sqrt((pred - target)^2 + eps^2)`` (LapSRN, Lai et al. 2017, Eq. 2).

    ``eps`` is the LapSRN value 1e-3 (a distance, squared inside the root). BasicSR's
    ``CharbonnierLoss`` adds its ``eps=1e-12`` without squaring, i.e. ``eps_here = 1e-6``.
    """
    check_pair(pred, target, "charbonnier_loss")
    if eps <= 0:
        raise ValueError(f"charbonnier_loss needs eps > 0 (got {eps}); LapSRN uses 1e-3")
    diff = pred.float() - target.float()
    return reduce_loss(torch.sqrt(diff.pow(2) + eps * eps), reduction)


class _PixelLoss(nn.Module):
    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
        self.loss_weight = loss_weight
        self.reduction = reduction


class L1Loss(_PixelLoss):
    """``loss_weight * l1_loss(pred, target)``."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * l1_loss(pred, target, self.reduction)


class MSELoss(_PixelLoss):
    """``loss_weight * mse_loss(pred, target)``."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * mse_loss(pred, target, self.reduction)


class CharbonnierLoss(_PixelLoss):
    """``loss_weight * charbonnier_loss(pred, target, eps)``."""

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", eps: float = 1e-3):
        super().__init__(loss_weight, reduction)
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * charbonnier_loss(pred, target, self.eps, self.reduction)
