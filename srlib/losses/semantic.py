"""Semantic self-distillation loss: match the discriminator's features of SR and HR.

The seed paper of notebook 04 (Park et al. 2024) trains the generator with
``L_G = L_pixel + kappa * L_semantic`` where ``L_semantic`` is an L1 distance between the
intermediate features that the GAN discriminator itself computes for the SR output and for
the HR image. The discriminator, trained on the data at hand, acts as a learned and
category-specific feature extractor, so no ImageNet VGG is needed. The same form is the
discriminator feature-matching loss of pix2pixHD (Wang et al., CVPR 2018, Eq. 4):
``sum_i 1/N_i || D^(i)(x) - D^(i)(G(s)) ||_1``, the mean absolute difference per layer.

``feature_fn`` is any callable mapping a batch of images to per-image features: a tensor, a
list/tuple of tensors (one per layer) or a dict of them. HR features are targets (no gradient); gradients flow to
the generator through the SR branch. Features are compared in fp32 (they may come from a bf16
autocast forward pass).

The blog post on the paper writes ``L_semantic(x, y) = BCE(D(x), 0) + BCE(D(y), 1)`` and
``L_G = L_pixel(x_HR, x_SR) + kappa * L_semantic(x_SR, y_SR)``. Read literally, that
``L_semantic`` is the discriminator's own real/fake loss (:func:`literal_semantic_loss`), which
a generator cannot sensibly minimise (its second term does not depend on the generator, its
first rewards being recognised as fake). The course reads it as: D is trained with that BCE
(category-aware), and the generator's semantic term is :func:`semantic_loss` on D's
intermediate features; the literal adversarial reading (the generator minimises
``BCE(D(SR), 1)``) runs as an ablation in :mod:`srlib.recipes.semantic`.
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
    SR and HR go through ``feature_fn`` in ONE call (concatenated along the batch), so a
    network whose forward pass updates state (spectral norm's power iteration in training mode)
    compares both with the same weights; ``feature_fn`` must treat images independently (no
    batch norm). The HR half is detached: the gradient reaches the generator through SR only.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"semantic_loss: SR shape {tuple(sr.shape)} differs from HR shape "
                         f"{tuple(hr.shape)}")
    n = sr.shape[0]
    both = _as_dict(feature_fn(torch.cat([sr, hr.detach()], dim=0)))
    sr_feats = {k: v[:n] for k, v in both.items()}
    hr_feats = {k: v[n:].detach() for k, v in both.items()}
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
        loss = loss + w * (sr_feats[k].float() - hr_feats[k].float()).abs().mean()
    return loss


def literal_semantic_loss(d_x: torch.Tensor, d_y: torch.Tensor) -> torch.Tensor:
    """The blog's formula read literally: ``BCE(D(x), 0) + BCE(D(y), 1)`` on logits.

    With ``x`` the SR image and ``y`` the HR image this is exactly the (vanilla, BCE)
    discriminator loss: what D minimises in every GAN recipe of notebook 04. Each term is the
    mean over its elements (``binary_cross_entropy_with_logits``), computed in fp32.
    """
    import torch.nn.functional as F

    if not isinstance(d_x, torch.Tensor) or not isinstance(d_y, torch.Tensor):
        raise ValueError("literal_semantic_loss expects the discriminator logits as tensors")
    d_x, d_y = d_x.float(), d_y.float()
    return (F.binary_cross_entropy_with_logits(d_x, torch.zeros_like(d_x))
            + F.binary_cross_entropy_with_logits(d_y, torch.ones_like(d_y)))
