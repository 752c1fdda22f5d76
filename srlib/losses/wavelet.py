"""Orthonormal 2-D Haar wavelet transform and the PDD wavelet loss.

One level of the 2-D Haar DWT maps every 2x2 block ``[[a, b], [c, d]]`` (a top-left, b
top-right, c bottom-left, d bottom-right) to four sub-band coefficients:

    LL = ( a + b + c + d) / 2     local average (low-pass in both directions)
    HL = (-a + b - c + d) / 2     right minus left column: vertical edges
    LH = (-a - b + c + d) / 2     bottom minus top row: horizontal edges
    HH = ( a - b - c + d) / 2     diagonal detail

The four rows are orthonormal, so the transform preserves energy (Parseval) and its
transpose is its inverse. This is the sign and scale convention of the PDD repository's
``_dwt_haar_split``; it is implemented here as a stride-2 grouped convolution (and the inverse
as the matching transposed convolution).

Wavelet loss (Zhang, Lee & Yao, "Pairwise Distance Distillation for Unsupervised Real-World
Image Super-Resolution", ECCV 2024; the official code's ``WeightedWvtLoss``, used as the
pixel loss on labelled synthetic data with weights ``[1, 0.1, 0.01]`` and ``loss_weight``
0.5): ``L_wvt = w_LL * L1(LL) + w_H * L1([HL, LH]) + w_HH * L1(HH)``, each L1 a mean over its
sub-band(s) of SR vs. ground truth. Down-weighting the high-frequency bands lets the GAN and
perceptual terms, not a pixel-wise regression, decide the fine texture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Rows: LL, HL, LH, HH; each a 2x2 filter over [[a, b], [c, d]].
_HAAR = 0.5 * torch.tensor([
    [[1.0, 1.0], [1.0, 1.0]],
    [[-1.0, 1.0], [-1.0, 1.0]],
    [[-1.0, -1.0], [1.0, 1.0]],
    [[1.0, -1.0], [-1.0, 1.0]],
])

PDD_WAVELET_WEIGHTS = (1.0, 0.1, 0.01)


def _filters(channels: int, like: torch.Tensor) -> torch.Tensor:
    # (4*C, 1, 2, 2): for channel c, output channels 4c..4c+3 are its LL, HL, LH, HH.
    return _HAAR.to(device=like.device, dtype=like.dtype).repeat(channels, 1, 1).unsqueeze(1)


def haar_dwt(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-level orthonormal Haar DWT of ``(N, C, H, W)`` (H, W even) -> ``(LL, HL, LH, HH)``.

    Each sub-band has shape ``(N, C, H/2, W/2)``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"haar_dwt expects a tensor of shape (N, C, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt needs even height and width, got {h}x{w}; crop or pad the "
                         f"images to even sizes first")
    y = F.conv2d(x, _filters(c, x), stride=2, groups=c).view(n, c, 4, h // 2, w // 2)
    return y[:, :, 0], y[:, :, 1], y[:, :, 2], y[:, :, 3]


def haar_idwt(ll: torch.Tensor, hl: torch.Tensor, lh: torch.Tensor, hh: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt`: the transposed convolution with the same filters."""
    if not (ll.shape == hl.shape == lh.shape == hh.shape) or ll.dim() != 4:
        raise ValueError("haar_idwt expects four sub-bands of the same shape (N, C, h, w), got "
                         f"{[tuple(t.shape) for t in (ll, hl, lh, hh)]}")
    n, c, h, w = ll.shape
    y = torch.stack([ll, hl, lh, hh], dim=2).view(n, 4 * c, h, w)
    return F.conv_transpose2d(y, _filters(c, ll), stride=2, groups=c)


def wavelet_loss(pred: torch.Tensor, target: torch.Tensor,
                 weights: tuple[float, float, float] = PDD_WAVELET_WEIGHTS) -> torch.Tensor:
    """PDD's weighted Haar wavelet L1 loss (see the module docstring).

    ``weights = (w_LL, w_H, w_HH)``; the L1 over ``[HL, LH]`` is one mean over both bands.
    """
    if pred.shape != target.shape:
        raise ValueError(f"wavelet_loss: prediction shape {tuple(pred.shape)} differs from target "
                         f"shape {tuple(target.shape)}")
    if len(weights) != 3:
        raise ValueError(f"wavelet_loss weights are (w_LL, w_HL+LH, w_HH), got {weights!r}")
    p_ll, p_hl, p_lh, p_hh = haar_dwt(pred)
    t_ll, t_hl, t_lh, t_hh = haar_dwt(target)
    loss_ll = (p_ll - t_ll).abs().mean()
    loss_h = torch.cat([p_hl - t_hl, p_lh - t_lh], dim=1).abs().mean()
    loss_hh = (p_hh - t_hh).abs().mean()
    return weights[0] * loss_ll + weights[1] * loss_h + weights[2] * loss_hh


class WaveletLoss(nn.Module):
    """``loss_weight * wavelet_loss(pred, target, weights)``; PDD trains with loss_weight 0.5."""

    def __init__(self, weights: tuple[float, float, float] = PDD_WAVELET_WEIGHTS,
                 loss_weight: float = 1.0):
        super().__init__()
        self.weights = tuple(float(w) for w in weights)
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * wavelet_loss(pred, target, self.weights)
