"""PDD pairwise distance losses: distil distances between outputs, not the outputs.

Zhang, Lee & Yao, "Pairwise Distance Distillation for Unsupervised Real-World Image
Super-Resolution" (ECCV 2024). A specialist S (good on the synthetic source domain) adapts to
an unlabelled target domain with help from a generalist G (blind, trained on broad synthetic
degradations; in the EMA variant, an EMA copy of S). For a source image x_s and a target
image x_t, with phi_l a VGG19 layer, the official code (``DistillationLoss``, configs
``train_Real_ESRGAN_{Static,EMA}_x4``) computes:

- inter-model distance: how the two models differ on the same input, as the Gram matrix of
  the feature difference, ``D_inter(x) = Gram(phi_l(S(x)) - phi_l(G(x)))`` (``gram_change``).
  The loss asks that difference to be the same on both domains:
  ``L_inter = sum_l w_l || D_inter(x_t) - D_inter(x_s) ||_F`` (Frobenius norm over the batch),
  default layers conv2_1, conv3_1, conv4_1, conv5_1 with weight 0.25 each.
- intra-model distance: how one model's outputs differ between the two domains, as the
  element-wise ``|phi_l(M(x_t)) - phi_l(M(x_s))|``. At every spatial position the channel
  vector is turned into a distribution by a softmax, and the specialist's distribution is
  matched to the generalist's with a cross-entropy:
  ``L_intra = sum_l w_l mean_{n,h,w} [ -sum_c softmax(d_G)_c log(softmax(d_S)_c + 1e-6) ]``,
  default layers conv2_2, conv3_4, conv4_4, conv5_4 with weights 0.1, 0.3, 1, 1.

Pairs are formed by batch index: target sample i is paired with source sample i. The
generalist's features are constants. Gram matrices are normalised by C*H*W (as BasicSR's).

Two switches of the official ``DistillationLoss`` / ``SRGANRefModel`` are options here:

- ``intra_measure``: ``"ce"`` (the paper's Eq. 6, default) or ``"l1"``, the alternative of the
  paper's Tab. 3: ``mean | |phi(S(x_t)) - phi(S(x_s))| - |phi(G(x_t)) - phi(G(x_s))| |``
  (official ``cri_intra: l1``).
- ``detach_source``: treat the specialist's source-domain output ``S(x_s)`` as a constant, so
  the distance losses move only the target-domain prediction (official ``domain_opt_detach``:
  ``true`` in the static option file, ``false`` in the EMA one).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..features import VGGFeatures
from .perceptual import gram_matrix

PDD_INTER_WEIGHTS = {"conv2_1": 0.25, "conv3_1": 0.25, "conv4_1": 0.25, "conv5_1": 0.25}
PDD_INTRA_WEIGHTS = {"conv2_2": 0.1, "conv3_4": 0.3, "conv4_4": 1.0, "conv5_4": 1.0}
INTRA_MEASURES = ("ce", "l1")


def _same_shapes(*ts: torch.Tensor) -> None:
    shapes = {tuple(t.shape) for t in ts}
    if len(shapes) != 1:
        raise ValueError(f"pairwise distance losses need features of one shape, got {sorted(shapes)}; "
                         f"source and target batches must have the same size and patch size")
    if ts[0].dim() != 4:
        raise ValueError(f"expected features of shape (N, C, H, W), got {tuple(ts[0].shape)}")


def inter_model_loss(s_target: torch.Tensor, g_target: torch.Tensor,
                     s_source: torch.Tensor, g_source: torch.Tensor) -> torch.Tensor:
    """``|| Gram(s_t - g_t) - Gram(s_s - g_s) ||_F`` for one layer's features."""
    _same_shapes(s_target, g_target, s_source, g_source)
    d_target = gram_matrix(s_target - g_target.detach())
    d_source = gram_matrix(s_source - g_source.detach())
    return torch.linalg.vector_norm(d_target - d_source)


def intra_model_loss(s_target: torch.Tensor, s_source: torch.Tensor,
                     g_target: torch.Tensor, g_source: torch.Tensor,
                     eps: float = 1e-6) -> torch.Tensor:
    """Channel-softmax cross-entropy between the generalist's and the specialist's
    ``|target - source|`` feature distances, averaged over batch and positions."""
    _same_shapes(s_target, s_source, g_target, g_source)
    d_s = (s_target - s_source).abs()
    d_g = (g_target - g_source).abs().detach()
    p_s = torch.softmax(d_s, dim=1)
    p_g = torch.softmax(d_g, dim=1)
    return -(p_g * torch.log(p_s + eps)).sum(dim=1).mean()


def intra_model_loss_l1(s_target: torch.Tensor, s_source: torch.Tensor,
                        g_target: torch.Tensor, g_source: torch.Tensor) -> torch.Tensor:
    """The L1 alternative to Eq. 6 (Tab. 3): ``mean | |s_t - s_s| - |g_t - g_s| |``."""
    _same_shapes(s_target, s_source, g_target, g_source)
    d_s = (s_target - s_source).abs()
    d_g = (g_target - g_source).abs().detach()
    return (d_s - d_g).abs().mean()


_INTRA = {"ce": intra_model_loss, "l1": intra_model_loss_l1}


class PairwiseDistanceLoss(nn.Module):
    """PDD's inter- and intra-model distance losses on VGG19 features.

    ``forward(s_target, g_target, s_source, g_source)`` takes the specialist's and the
    generalist's SR outputs on a target-domain batch and on a source-domain batch (same
    shapes) and returns ``(inter, intra)``, each already multiplied by its weight.
    :meth:`from_features` does the same from VGG features computed elsewhere (a recipe that
    also needs them for its perceptual loss runs the backbone once).

    ``intra_measure``: ``"ce"`` (Eq. 6) or ``"l1"`` (Tab. 3). ``detach_source``: no gradient
    through the specialist's source output (the static configuration; see the module doc).
    """

    def __init__(self, inter_weights: dict[str, float] | None = None,
                 intra_weights: dict[str, float] | None = None, weights: str | Path = "auto",
                 inter_weight: float = 1.0, intra_weight: float = 1.0,
                 use_input_norm: bool = True, seed: int = 0, backbone: VGGFeatures | None = None,
                 intra_measure: str = "ce", detach_source: bool = False):
        super().__init__()
        if intra_measure not in INTRA_MEASURES:
            raise ValueError(f"unknown intra_measure {intra_measure!r}; use one of "
                             f"{', '.join(INTRA_MEASURES)} ('ce' is the paper's Eq. 6)")
        self.intra_measure, self.detach_source = intra_measure, bool(detach_source)
        self.inter_weights = dict(PDD_INTER_WEIGHTS if inter_weights is None else inter_weights)
        self.intra_weights = dict(PDD_INTRA_WEIGHTS if intra_weights is None else intra_weights)
        self.inter_weight, self.intra_weight = float(inter_weight), float(intra_weight)
        layers = list(dict.fromkeys([*self.inter_weights, *self.intra_weights]))
        if backbone is None:
            backbone = VGGFeatures(layers, weights=weights, normalize_input=use_input_norm, seed=seed)
        missing = [k for k in layers if k not in backbone.layers]
        if missing:
            raise ValueError(f"the backbone does not provide layers {missing}")
        self.vgg = backbone

    @property
    def backbone(self) -> str:
        return self.vgg.backbone

    def forward(self, s_target: torch.Tensor, g_target: torch.Tensor, s_source: torch.Tensor,
                g_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _same_shapes(s_target, g_target, s_source, g_source)
        if self.detach_source:
            s_source = s_source.detach()
        f_st, f_ss = self.vgg(s_target), self.vgg(s_source)
        with torch.no_grad():
            f_gt, f_gs = self.vgg(g_target.detach()), self.vgg(g_source.detach())
        return self.from_features(f_st, f_gt, f_ss, f_gs)

    def from_features(self, f_st: dict, f_gt: dict, f_ss: dict, f_gs: dict
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inter, intra)`` from ``{layer: features}`` of S(x_t), G(x_t), S(x_s), G(x_s).

        The generalist's features are detached here; with ``detach_source`` so are S(x_s)'s.
        """
        missing = [k for k in [*self.inter_weights, *self.intra_weights]
                   if k not in f_st or k not in f_gt or k not in f_ss or k not in f_gs]
        if missing:
            raise ValueError(f"features for layers {sorted(set(missing))} are missing; compute "
                             f"every layer of {self.vgg.layers}")
        if self.detach_source:
            f_ss = {k: v.detach() for k, v in f_ss.items()}
        f_gt = {k: v.detach() for k, v in f_gt.items()}
        f_gs = {k: v.detach() for k, v in f_gs.items()}
        ref = next(iter(f_st.values()))
        inter = ref.new_zeros(())
        intra = ref.new_zeros(())
        if self.inter_weight > 0:
            for k, w in self.inter_weights.items():
                inter = inter + w * inter_model_loss(f_st[k], f_gt[k], f_ss[k], f_gs[k])
        if self.intra_weight > 0:
            measure = _INTRA[self.intra_measure]
            for k, w in self.intra_weights.items():
                intra = intra + w * measure(f_st[k], f_ss[k], f_gt[k], f_gs[k])
        return self.inter_weight * inter, self.intra_weight * intra
