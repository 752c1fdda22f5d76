"""Perceptual (VGG feature) and style (Gram) losses.

Johnson et al., "Perceptual Losses for Real-Time Style Transfer and Super-Resolution"
(ECCV 2016), compare images through a fixed ImageNet network phi instead of pixel by pixel:

- feature reconstruction loss (their Eq. 2): ``|| phi_j(y_hat) - phi_j(y) ||`` at layer j;
- style reconstruction loss (their Eqs. 3-4): the distance between Gram matrices
  ``G_j(x)[c, c'] = sum_{h,w} phi_j(x)[c,h,w] phi_j(x)[c',h,w] / (C_j H_j W_j)``.

SRGAN (Ledig et al. 2017, Eq. 5) used VGG19 ``relu5_4`` with an MSE; ESRGAN (Wang et al. 2018,
Sec. 3.3, L_percep in Eq. 3: ``L_G = L_percep + lambda L_G^Ra + eta L_1``) moved the tap BEFORE
the activation (``conv5_4``) because post-ReLU features are sparse and lose brightness
information, and uses an L1 distance. :class:`PerceptualLoss` follows BasicSR's
``PerceptualLoss``: a weighted sum over named layers of a criterion (``"l1"``, ``"l2"``, or
``"fro"``: the Frobenius norm of the difference), times ``perceptual_weight``; the style term
is the same sum over Gram matrices, times ``style_weight``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..features import VGGFeatures
from .pixel import check_pair

CRITERIA = ("l1", "l2", "fro")


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix of features ``(N, C, H, W) -> (N, C, C)``, normalised by ``C*H*W``.

    ``G[n, c, c'] = sum_{h,w} x[n,c,h,w] x[n,c',h,w] / (C H W)`` (Johnson et al. 2016, Eq. 3;
    BasicSR's ``_gram_mat``).
    """
    if x.dim() != 4:
        raise ValueError(f"gram_matrix expects features of shape (N, C, H, W), got {tuple(x.shape)}")
    n, c, h, w = x.shape
    f = x.float().reshape(n, c, h * w)
    with torch.autocast(f.device.type, enabled=False):  # fp32 even inside a bf16 forward pass
        return f.bmm(f.transpose(1, 2)) / (c * h * w)


def feature_distance(a: torch.Tensor, b: torch.Tensor, criterion: str) -> torch.Tensor:
    """``"l1"``: mean |a-b|; ``"l2"``: mean (a-b)^2; ``"fro"``: ||a-b||_F over the whole batch."""
    a, b = a.float(), b.float()  # features may come from a bf16 forward pass; distances in fp32
    if criterion == "l1":
        return (a - b).abs().mean()
    if criterion == "l2":
        return (a - b).pow(2).mean()
    if criterion == "fro":
        return torch.linalg.vector_norm(a - b)
    raise ValueError(f"unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")


class PerceptualLoss(nn.Module):
    """VGG19 perceptual and style loss (ESRGAN / BasicSR).

    Args:
        layer_weights: ``{layer_name: weight}``; ``conv*`` taps are before the ReLU.
            ESRGAN: ``{"conv5_4": 1.0}``; Real-ESRGAN and PDD: ``{"conv1_2": 0.1,
            "conv2_2": 0.1, "conv3_4": 1, "conv4_4": 1, "conv5_4": 1}``.
        weights: VGG19 weights (``"auto"``, ``"imagenet"``, ``"random"`` or a .pth path), see
            :mod:`srlib.features`. Ignored when ``backbone`` is given.
        criterion: ``"l1"`` (ESRGAN), ``"l2"`` (SRGAN) or ``"fro"``.
        perceptual_weight, style_weight: multipliers of the two terms; a term with weight 0 is
            not computed and returned as 0.
        use_input_norm: ImageNet mean/std normalisation of the [0, 1] inputs.
        seed: seed of the random stand-in backbone.
        backbone: an existing :class:`VGGFeatures` to share between several losses; it must
            provide every layer of ``layer_weights``.

    ``forward(x, gt)`` returns ``(percep, style)``; :meth:`total` returns their sum. Features
    of ``gt`` are computed without gradient (it is the target).
    """

    def __init__(self, layer_weights: dict[str, float] | None = None, weights: str | Path = "auto",
                 criterion: str = "l1", perceptual_weight: float = 1.0, style_weight: float = 0.0,
                 use_input_norm: bool = True, seed: int = 0, backbone: VGGFeatures | None = None):
        super().__init__()
        self.layer_weights = dict(layer_weights if layer_weights is not None else {"conv5_4": 1.0})
        if not self.layer_weights:
            raise ValueError("PerceptualLoss needs at least one layer, e.g. {'conv5_4': 1.0}")
        if criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
        self.criterion = criterion
        self.perceptual_weight = float(perceptual_weight)
        self.style_weight = float(style_weight)
        if backbone is None:
            backbone = VGGFeatures(list(self.layer_weights), weights=weights,
                                   normalize_input=use_input_norm, seed=seed)
        else:
            missing = [k for k in self.layer_weights if k not in backbone.layers]
            if missing:
                raise ValueError(f"the shared backbone does not provide layers {missing}; build it "
                                 f"with VGGFeatures({sorted(set(backbone.layers) | set(missing))})")
        self.vgg = backbone

    @property
    def backbone(self) -> str:
        """Which feature backbone this loss uses (for provenance records)."""
        return self.vgg.backbone

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_pair(x, gt, "PerceptualLoss")
        x_feats = self.vgg(x)
        with torch.no_grad():
            gt_feats = self.vgg(gt.detach())
        zero = x.new_zeros(())
        percep, style = zero, zero
        if self.perceptual_weight > 0:
            percep = sum(w * feature_distance(x_feats[k], gt_feats[k], self.criterion)
                         for k, w in self.layer_weights.items()) * self.perceptual_weight
        if self.style_weight > 0:
            style = sum(w * feature_distance(gram_matrix(x_feats[k]), gram_matrix(gt_feats[k]),
                                             self.criterion)
                        for k, w in self.layer_weights.items()) * self.style_weight
        return percep, style

    def total(self, x: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """``percep + style`` as one scalar."""
        percep, style = self(x, gt)
        return percep + style
