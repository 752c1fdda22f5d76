"""Semantic self-distillation loss: match the discriminator's features of SR and HR.

The seed paper of notebook 04 (Park et al. 2024) trains the generator with
``L_G = L_pixel + kappa * L_semantic`` where ``L_semantic`` is an L1 distance between the
intermediate features that the GAN discriminator itself computes for the SR output and for
the HR image. The discriminator, trained on the data at hand, acts as a learned and
category-specific feature extractor, so no ImageNet VGG is needed. The same form is the
discriminator feature-matching loss of pix2pixHD (Wang et al., CVPR 2018, Eq. 4):
``sum_i 1/N_i || D^(i)(x) - D^(i)(G(s)) ||_1``, the mean absolute difference per layer.

``feature_fn`` is any callable mapping images to features: a tensor, a list/tuple of tensors
(one per layer) or a dict of them. HR features are targets (no gradient); gradients flow to
the generator through the SR branch.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

Features = torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor]


def _as_dict(feats: Features) -> dict:
    if isinstance(feats, torch.Tensor):
        return {0: feats}
    if isinstance(feats, Mapping):
        return dict(feats)
    if isinstance(feats, (list, tuple)):
        return dict(enumerate(feats))
    raise ValueError(f"feature_fn must return a tensor, a list/tuple of tensors or a dict of "
                     f"tensors, got {type(feats).__name__}")


def semantic_loss(feature_fn: Callable[[torch.Tensor], Features], sr: torch.Tensor,
                  hr: torch.Tensor, layer_weights: Mapping | Sequence[float] | None = None) -> torch.Tensor:
    """``sum_j w_j * mean|f_j(sr) - f_j(hr)|`` over the layers ``feature_fn`` returns.

    ``layer_weights``: ``None`` (all 1), a sequence (by position) or a mapping (by key).
    """
    if sr.shape != hr.shape:
        raise ValueError(f"semantic_loss: SR shape {tuple(sr.shape)} differs from HR shape "
                         f"{tuple(hr.shape)}")
    sr_feats = _as_dict(feature_fn(sr))
    with torch.no_grad():
        hr_feats = _as_dict(feature_fn(hr.detach()))
    if sr_feats.keys() != hr_feats.keys():
        raise ValueError("feature_fn returned different layers for SR and HR")
    if layer_weights is None:
        weights = {k: 1.0 for k in sr_feats}
    elif isinstance(layer_weights, Mapping):
        weights = dict(layer_weights)
    else:
        weights = dict(enumerate(layer_weights))
    unknown = [k for k in weights if k not in sr_feats]
    if unknown or not weights:
        raise ValueError(f"layer_weights name layers {unknown} that feature_fn does not return "
                         f"(it returns {list(sr_feats)})")
    loss = sr.new_zeros(())
    for k, w in weights.items():
        if sr_feats[k].shape != hr_feats[k].shape:
            raise ValueError(f"feature {k!r} has shape {tuple(sr_feats[k].shape)} for SR but "
                             f"{tuple(hr_feats[k].shape)} for HR")
        loss = loss + w * (sr_feats[k] - hr_feats[k]).abs().mean()
    return loss
