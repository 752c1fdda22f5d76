"""Settling spectral normalisation before the first step (Miyato et al. 2018, Alg. 1).

``torch.nn.utils.spectral_norm`` divides a layer's weight ``W`` by an estimate of its largest
singular value, ``sigma(W) ~ u^T W v``, and refines ``u`` and ``v`` by one power iteration per
training-mode forward pass, starting from random vectors. A freshly built discriminator (or
one used in eval mode before any step) therefore divides by a poor estimate: it is far from
1-Lipschitz and its features can be orders of magnitude off. :func:`settle_spectral_norm` runs
the power iterations to convergence on the weights themselves, which is what that many forward
passes would do, at a fraction of the cost (no convolution, no normalised weight per pass).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


@torch.no_grad()
def settle_spectral_norm(module: nn.Module, iterations: int = 30) -> int:
    """Run ``iterations`` power iterations in every spectrally normalised layer of ``module``
    and return how many layers were settled.

    Per layer with weight matrix ``W`` (``weight_orig`` reshaped as the hook does) and stored
    vectors ``u``, ``v``: ``v <- normalize(W^T u)``, ``u <- normalize(W v)``, exactly the update
    of one training-mode forward; afterwards the layer's ``weight`` is ``W / (u^T W v)``, as the
    next forward would compute it. No parameter and no random number is touched; the updated
    ``u``, ``v`` are buffers, so they are saved with the state dict.
    """
    from torch.nn.utils.spectral_norm import SpectralNorm

    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    settled = 0
    for layer in module.modules():
        for hook in list(layer._forward_pre_hooks.values()):
            if not isinstance(hook, SpectralNorm):
                continue
            w = getattr(layer, hook.name + "_orig")
            mat = hook.reshape_weight_to_matrix(w)
            u, v = getattr(layer, hook.name + "_u"), getattr(layer, hook.name + "_v")
            for _ in range(iterations):
                v.copy_(F.normalize(torch.mv(mat.t(), u), dim=0, eps=hook.eps))
                u.copy_(F.normalize(torch.mv(mat, v), dim=0, eps=hook.eps))
            setattr(layer, hook.name, w / torch.dot(u, torch.mv(mat, v)))
            settled += 1
    return settled


__all__ = ["settle_spectral_norm"]
