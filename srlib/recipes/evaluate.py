"""Measuring the recipes on held-out images, the way the SR papers report them.

Every method (bicubic, a trained generator, an interpolated one) turns the LR test images into
SR images; :func:`score` compares them with the HR ground truth as BasicSR does: PSNR and SSIM on
the BT.601 Y channel with a border of ``scale`` pixels removed, LPIPS (AlexNet) when its
backbone is available, and NIQE of the SR image alone (no reference; lower is more natural).
Means are over images. A metric that cannot run is ``None`` with the reason in ``notes``.

:func:`interpolation_sweep` applies :func:`~srlib.recipes.interpolate.interpolate_networks`
over a list of alphas and scores each blend: the perception-distortion curve of ESRGAN Fig. 8.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..degradations import imresize
from .interpolate import interpolate_networks

Pair = tuple[str, np.ndarray, np.ndarray]  # (name, LR uint8, HR uint8), as data.eval_pairs yields


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-style bicubic enlargement of a uint8 image: the "no learning" baseline."""
    up = imresize(np.asarray(lr).astype(np.float64), float(scale))
    return np.clip(np.round(up), 0, 255).astype(np.uint8)


def super_resolve(model: nn.Module | None, pairs: Sequence[Pair], scale: int,
                  device=None, tile: int | None = None) -> list[np.ndarray]:
    """SR outputs (uint8 H x W x 3) of ``model`` for every pair; ``None`` means bicubic."""
    if model is None:
        return [bicubic_upscale(lr, scale) for _, lr, _ in pairs]
    from ..infer import upscale

    return [upscale(model, lr, scale=scale, device=device, tile=tile) for _, lr, _ in pairs]


def score(outputs: Sequence[np.ndarray], pairs: Sequence[Pair], scale: int,
          metric_names: Iterable[str] = metrics.ALL_METRICS) -> dict:
    """Mean ``psnr_y``, ``ssim_y``, ``lpips`` (or None), ``niqe`` over the images, plus ``notes``."""
    if len(outputs) != len(pairs):
        raise ValueError(f"{len(outputs)} SR outputs for {len(pairs)} test pairs; give one per pair")
    for out, (name, _, hr) in zip(outputs, pairs):
        if out.shape != hr.shape:
            raise ValueError(f"SR output for {name!r} is {out.shape}, its ground truth {hr.shape}: "
                             "the model's scale does not match the data's")
    res = metrics.evaluate_many([(o, hr) for o, (_, _, hr) in zip(outputs, pairs)], crop_border=scale,
                                metrics=tuple(metric_names))
    return {k: res.get(k) for k in ("psnr_y", "ssim_y", "lpips", "niqe", "notes")}


def results_row(method: str, outputs: Sequence[np.ndarray], pairs: Sequence[Pair], scale: int) -> dict:
    """One row of the results table: ``method, psnr_y, ssim_y, lpips, niqe`` (+ ``notes``)."""
    return {"method": method, **score(outputs, pairs, scale)}


@torch.no_grad()
def interpolation_sweep(net_psnr: nn.Module, net_gan: nn.Module, alphas: Sequence[float],
                        pairs: Sequence[Pair], scale: int, device=None,
                        progress: bool = False) -> tuple[list[dict], dict]:
    """Score ``interpolate_networks(net_psnr, net_gan, alpha)`` for each alpha.

    Returns ``(rows, outputs)``: rows with ``alpha`` and the metrics of :func:`score`, and
    ``{alpha: [SR images]}`` for pictures. ``progress`` shows a bar over the alphas.
    """
    rows, outputs = [], {}
    if progress:
        from tqdm.auto import tqdm
        alphas = tqdm(list(alphas), desc="interpolation sweep", leave=False)
    for alpha in alphas:
        net = interpolate_networks(net_psnr, net_gan, float(alpha))
        outs = super_resolve(net, pairs, scale, device=device)
        outputs[float(alpha)] = outs
        rows.append({"alpha": float(alpha), **score(outs, pairs, scale)})
    return rows, outputs
