"""Network interpolation: blend the weights of a PSNR model and a GAN model.

ESRGAN (Wang et al. 2018, Sec. 3.4, Eq. 5) fine-tunes the GAN generator from the PSNR-oriented
one, so both share an architecture and sit close together in weight space. Interpolating their
parameters,

    theta_interp = (1 - alpha) * theta_PSNR + alpha * theta_GAN,      alpha in [0, 1],

gives a family of generators that moves smoothly from the faithful but blurry PSNR result
(alpha = 0) to the sharp but less faithful GAN result (alpha = 1), without retraining. The
paper argues this balances perception and distortion better than interpolating the output
images, which mixes the GAN's noise with the PSNR model's blur.
"""

from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn


def interpolate_state_dicts(sd_psnr: Mapping[str, torch.Tensor], sd_gan: Mapping[str, torch.Tensor],
                            alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * sd_psnr + alpha * sd_gan`` key by key (ESRGAN Eq. 5).

    Floating-point tensors are blended; integer buffers (e.g. BatchNorm's
    ``num_batches_tracked``) are taken from the GAN model when ``alpha >= 0.5`` and from the
    PSNR model otherwise. Both dicts must have the same keys and shapes: interpolation only makes
    sense between two fine-tunings of one architecture.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (0 = PSNR model, 1 = GAN model), got {alpha}")
    missing = set(sd_psnr) ^ set(sd_gan)
    if missing:
        raise ValueError(
            "the two state dicts do not have the same keys (different architectures?); "
            f"keys in only one of them: {sorted(missing)[:5]}"
        )
    out: dict[str, torch.Tensor] = {}
    for key, a in sd_psnr.items():
        b = sd_gan[key]
        if a.shape != b.shape:
            raise ValueError(
                f"parameter {key!r} has shape {tuple(a.shape)} in the PSNR model but "
                f"{tuple(b.shape)} in the GAN model: build both with the same sizes"
            )
        if a.is_floating_point():
            out[key] = torch.lerp(a.detach().float(), b.detach().float().to(a.device), alpha).to(a.dtype)
        else:
            out[key] = (b if alpha >= 0.5 else a).detach().clone()
    return out


def interpolate_networks(net_psnr: nn.Module, net_gan: nn.Module, alpha: float) -> nn.Module:
    """A new network (a deep copy of ``net_psnr``) carrying the interpolated weights, in eval mode.

    Neither input is modified. ``alpha = 0`` reproduces ``net_psnr``, ``alpha = 1`` ``net_gan``.
    """
    if type(net_psnr) is not type(net_gan):
        raise ValueError(
            f"cannot interpolate a {type(net_psnr).__name__} with a {type(net_gan).__name__}: "
            "network interpolation needs two trainings of the same architecture"
        )
    blended = copy.deepcopy(net_psnr)
    blended.load_state_dict(interpolate_state_dicts(net_psnr.state_dict(), net_gan.state_dict(), alpha))
    return blended.eval()
