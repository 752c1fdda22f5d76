"""Measurements of notebook 06 (PDD): scores per domain, improvements, colour error, feature clouds.

- :func:`super_resolve` / :func:`score_models`: SR outputs of each model on the source-domain and
  target-domain test pairs (:func:`srlib.data_domains.eval_pairs`), optionally with PDD's colour
  correction (:func:`srlib.infer.color_correct`), scored as the course scores every model
  (:func:`srlib.metrics.evaluate_many`: PSNR/SSIM on Y, LPIPS when available), with the spread
  over images, plus :func:`color_error`; :func:`full_size_niqe`: NIQE on whole images with the
  HR's own score beside (the course's NIQE convention).
- :func:`improvement_rows`: the paper's Fig. 4, each method's change over the generalist.
- :func:`color_error`: the global colour shift PDD's colour correction is meant to remove: the
  mean over images and RGB channels of ``|mean(SR_c) - mean(HR_c)|`` on the 0-255 scale.
- :func:`lowlevel_features`, :func:`project_2d`, :func:`cloud_distance`: a Fig. 5-like picture.
  The paper projects low-level features of predictions on synthetic and real inputs (following
  Liu et al., "Discovering Distinctive 'Semantics' in Super-Resolution Networks",
  arXiv:2108.00406) and measures the KL divergence between the two sets (Fig. 6). Here each
  prediction is cut into crops and each crop is described by the per-channel mean and standard
  deviation of shallow VGG19 features (``conv1_2``, ``conv2_2``): statistics of local edges and
  textures with the layout averaged out. The two clouds are projected together on their first
  two principal components, and their distance is the symmetric KL divergence between Gaussians
  with diagonal covariance fitted to each cloud in the full feature space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..infer import color_correct as _color_correct
from ..infer import upscale

Pair = tuple[str, np.ndarray, np.ndarray]


def super_resolve(model: nn.Module | None, pairs: Sequence[Pair], scale: int, *, device=None,
                  color_correct: bool = False) -> list[np.ndarray]:
    """uint8 SR outputs of ``model`` (``None``: bicubic) for each pair; with ``color_correct``
    each output's channel means and stds are matched to its LR input's (PDD Sec. 3.4)."""
    from ..recipes.evaluate import bicubic_upscale

    outs = []
    for _, lr, _ in pairs:
        out = bicubic_upscale(lr, scale) if model is None else upscale(model, lr, scale=scale,
                                                                        device=device)
        outs.append(_color_correct(out, lr) if color_correct else out)
    return outs


def color_error(outputs: Sequence[np.ndarray], pairs: Sequence[Pair]) -> float:
    """Mean over images and RGB channels of ``|mean(SR_c) - mean(HR_c)|`` (0-255 scale)."""
    if len(outputs) != len(pairs):
        raise ValueError(f"{len(outputs)} outputs for {len(pairs)} pairs; give one per pair")
    errs = []
    for out, (name, _, hr) in zip(outputs, pairs):
        if out.shape != hr.shape:
            raise ValueError(f"output for {name!r} is {out.shape}, its HR {hr.shape}")
        mu_o = np.asarray(out, np.float64).reshape(-1, 3).mean(0)
        mu_h = np.asarray(hr, np.float64).reshape(-1, 3).mean(0)
        errs.append(np.abs(mu_o - mu_h).mean())
    return float(np.mean(errs))


def score_models(models: Mapping[str, nn.Module | None], pairs_by_domain: Mapping[str, Sequence[Pair]],
                 scale: int, *, device=None, color_correct: bool = False,
                 metric_names: Sequence[str] = ("psnr", "ssim", "lpips")) -> tuple[list[dict], dict]:
    """Score every model in every domain on the evaluation crops. Returns ``(rows, outputs)``.

    Each row: ``model, domain, psnr_y, psnr_y_std, ssim_y, ssim_y_std, lpips, lpips_std,
    color_error, color_error_std, notes``: means and standard deviations (``ddof=0``) over the
    images; a metric that cannot run (LPIPS without its weights) is ``None``.
    ``outputs[(model, domain)]`` is the list of SR images. NIQE is not computed here: on
    evaluation crops it rests on a handful of patches (see :func:`full_size_niqe`).
    """
    from .. import metrics

    rows, outputs = [], {}
    for mname, model in models.items():
        for domain, pairs in pairs_by_domain.items():
            outs = super_resolve(model, pairs, scale, device=device, color_correct=color_correct)
            outputs[(mname, domain)] = outs
            res = metrics.evaluate_many([(o, hr) for o, (_, _, hr) in zip(outs, pairs)],
                                        crop_border=scale, metrics=tuple(metric_names))
            row = {"model": mname, "domain": domain}
            for key in ("psnr_y", "ssim_y", "lpips"):
                vals = [r[key] for r in res["per_image"] if r.get(key) is not None]
                row[key] = float(np.mean(vals)) if vals else None
                row[f"{key}_std"] = float(np.std(vals)) if vals else None
            errs = [color_error([o], [p]) for o, p in zip(outs, pairs)]
            row.update(color_error=float(np.mean(errs)), color_error_std=float(np.std(errs)),
                       notes=res.get("notes", ""))
            rows.append(row)
    return rows, outputs


def full_size_niqe(models: Mapping[str, nn.Module | None], pairs: Sequence[Pair], scale: int, *,
                   device=None, color_correct: bool = False, tile: int | None = 128) -> list[dict]:
    """NIQE and ``hf_ratio`` on whole images (the course's NIQE convention, notebooks/README.md).

    ``pairs``: full-size ``(name, LR, HR)`` of one domain (``eval_pairs(domain, scale, None)``).
    Returns one row per model (the HR ground truth first): ``model, niqe, niqe_std, niqe_min,
    niqe_max, patches_per_image, hf_ratio`` (std over images, ``ddof=0``).
    """
    from ..niqe import load_niqe_model
    from ..niqe_eval import HR_LABEL, hf_ratio, niqe_with_count
    from ..recipes.evaluate import bicubic_upscale

    nm = load_niqe_model()
    todo = [(HR_LABEL, "hr")] + list(models.items())
    rows = []
    for label, model in todo:
        scores, counts, ratios = [], [], []
        for _, lr, hr in pairs:
            if isinstance(model, str):
                out = hr
            elif model is None:
                out = bicubic_upscale(lr, scale)
            else:
                out = upscale(model, lr, scale=scale, device=device, tile=tile)
            if color_correct and not isinstance(model, str):
                out = _color_correct(out, lr)
            sc, n = niqe_with_count(out, scale, nm)
            scores.append(sc)
            counts.append(n)
            ratios.append(1.0 if isinstance(model, str) else hf_ratio(out, hr, scale))
        v = np.array(scores, np.float64)
        rows.append({"model": label, "niqe": float(v.mean()), "niqe_std": float(v.std()),
                     "niqe_min": float(v.min()), "niqe_max": float(v.max()),
                     "patches_per_image": "/".join(map(str, counts)),
                     "hf_ratio": float(np.mean(ratios))})
    return rows


METRIC_DIRECTIONS = {"psnr_y": +1, "ssim_y": +1, "lpips": -1, "niqe": -1, "color_error": -1}
"""+1: higher is better; -1: lower is better."""


def improvement_rows(rows: Sequence[Mapping], baseline: str, domain: str = "target",
                     metrics_: Sequence[str] = ("psnr_y", "ssim_y", "lpips", "niqe")) -> list[dict]:
    """The paper's Fig. 4: for each model, ``metric - metric(baseline)`` in ``domain``.

    A missing metric (``None``, e.g. LPIPS without its weights) stays ``None``.
    """
    by = {r["model"]: r for r in rows if r["domain"] == domain}
    if baseline not in by:
        raise ValueError(f"no row for the baseline {baseline!r} in domain {domain!r}; have {sorted(by)}")
    base = by[baseline]
    out = []
    for name, r in by.items():
        if name == baseline:
            continue
        row = {"model": name}
        for m in metrics_:
            a, b = r.get(m), base.get(m)
            row[f"delta_{m}"] = None if a is None or b is None else float(a) - float(b)
        out.append(row)
    return out


def better(delta: float | None, metric: str) -> bool | None:
    """Whether a change ``delta`` of ``metric`` is an improvement (``None`` when unknown)."""
    if delta is None:
        return None
    return delta * METRIC_DIRECTIONS[metric] > 0


# ----------------------------------------------------------------------------- feature clouds

def _crops(img: np.ndarray, size: int, per_image: int) -> list[np.ndarray]:
    h, w = img.shape[:2]
    size = min(size, h, w)
    ys = np.linspace(0, h - size, int(np.ceil(np.sqrt(per_image)))).astype(int)
    xs = np.linspace(0, w - size, int(np.ceil(np.sqrt(per_image)))).astype(int)
    return [img[y:y + size, x:x + size] for y in ys for x in xs][:per_image]


@torch.no_grad()
def lowlevel_features(images: Sequence[np.ndarray], *, vgg_weights: str = "auto", seed: int = 0,
                      layers: Sequence[str] = ("conv1_2", "conv2_2"), crop: int = 48,
                      per_image: int = 9, device=None) -> np.ndarray:
    """``(n_crops, d)``: per-channel mean and std of shallow VGG19 features of each crop.

    Each uint8 image is cut into ``per_image`` crops of ``crop`` pixels on a regular grid; the
    descriptor concatenates, for each layer, the channel means and standard deviations.
    """
    from ..features import VGGFeatures

    if not images:
        raise ValueError("lowlevel_features needs at least one image")
    vgg = VGGFeatures(list(layers), weights=vgg_weights, seed=seed)
    if device is not None:
        vgg = vgg.to(device)
    rows = []
    for img in images:
        crops = _crops(np.asarray(img), crop, per_image)
        x = torch.from_numpy(np.stack(crops).astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        if device is not None:
            x = x.to(device)
        feats = vgg(x)
        parts = []
        for k in layers:
            f = feats[k].float()
            parts += [f.mean(dim=(2, 3)), f.std(dim=(2, 3))]
        rows.append(torch.cat(parts, dim=1).cpu().numpy())
    return np.concatenate(rows).astype(np.float64)


def project_2d(groups: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Project every group of feature rows on the first two principal components of all rows.

    Features are standardised (zero mean, unit variance per dimension over all groups) first.
    Returns ``{name: (n, 2)}``.
    """
    names = list(groups)
    stacked = np.concatenate([np.asarray(groups[k], np.float64) for k in names])
    mu, sd = stacked.mean(0), stacked.std(0)
    z = (stacked - mu) / np.where(sd > 0, sd, 1.0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    proj = z @ vt[:2].T
    out, i = {}, 0
    for k in names:
        n = len(groups[k])
        out[k] = proj[i:i + n]
        i += n
    return out


def cloud_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Symmetric KL divergence between diagonal Gaussians fitted to two feature clouds.

    ``KL(P||Q) + KL(Q||P)`` with ``P = N(mu_a, diag var_a)``, ``Q = N(mu_b, diag var_b)``; both
    clouds are standardised by their pooled statistics first, so the number does not depend on
    the scale of the features. 0 for identical clouds.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"two (n, d) clouds of the same d are needed, got {a.shape} and {b.shape}")
    both = np.concatenate([a, b])
    mu, sd = both.mean(0), both.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    a, b = (a - mu) / sd, (b - mu) / sd
    ma, mb = a.mean(0), b.mean(0)
    va, vb = a.var(0) + eps, b.var(0) + eps
    kl_ab = 0.5 * np.sum(va / vb + (mb - ma) ** 2 / vb - 1.0 + np.log(vb / va))
    kl_ba = 0.5 * np.sum(vb / va + (ma - mb) ** 2 / va - 1.0 + np.log(va / vb))
    return float(kl_ab + kl_ba)


__all__ = ["super_resolve", "color_error", "score_models", "full_size_niqe", "METRIC_DIRECTIONS",
           "improvement_rows",
           "better", "lowlevel_features", "project_2d", "cloud_distance"]
