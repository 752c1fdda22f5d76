"""Measurements of notebook 04: per-category scores, high-frequency ratio, D-feature probes, claims.

- :func:`score_by_category`: PSNR-Y, SSIM-Y, NIQE (with its patch count), LPIPS (or None) and
  ``hf_ratio`` (the course's mean-absolute-Laplacian ratio, :func:`srlib.niqe_eval.hf_ratio`)
  per image, with means per category and over categories; :func:`hr_niqe_rows` the HR's own NIQE.
- :func:`pooled_features`, :func:`pca_2d`, :func:`linear_probe`: does the discriminator's trunk
  learn category semantics? Global-average-pooled features of held-out HR patches, projected
  to 2-D by PCA, and the accuracy of a linear classifier trained on the train split's patches
  and tested on the test split's.
- :func:`claims`: the seed table's comparisons as directions, each held / not held / not
  resolved at our scale, with a paired noise band over test images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from .. import metrics

#: The results table of the seed text (blog post on Park 2024): text and face sets, x4 (as the
#: post reports it; other data, scale and metric code than this course).
PAPER_TABLE = (
    {"method": "edsr", "psnr_y": 27.42, "ssim_y": 0.78, "pi": 2.54, "lpips": 0.234},
    {"method": "multiclass", "psnr_y": 28.01, "ssim_y": 0.80, "pi": 2.31, "lpips": 0.198},
    {"method": "vgg", "psnr_y": 27.85, "ssim_y": 0.79, "pi": 2.48, "lpips": 0.205},
    {"method": "semantic", "psnr_y": 28.29, "ssim_y": 0.82, "pi": 2.14, "lpips": 0.182},
)
HIGHER_IS_BETTER = {"psnr_y": True, "ssim_y": True, "niqe": False, "pi": False, "lpips": False,
                    "hf_ratio": None}


# ----------------------------------------------------------------------------- scores

def score_images(outputs: Sequence[np.ndarray], pairs: Sequence[tuple], scale: int,
                 niqe_model=None) -> list[dict]:
    """Per-image ``psnr_y, ssim_y, lpips`` (None when unavailable), ``niqe`` with the number of
    96-px patches it rests on, and ``hf_ratio`` (:func:`srlib.niqe_eval.hf_ratio`), all after a
    border crop of ``scale`` pixels. An image with no whole NIQE patch gets ``niqe`` None."""
    from .. import niqe_eval
    from ..niqe import load_niqe_model

    m = load_niqe_model(niqe_model)
    rows = []
    for out, (name, _, hr) in zip(outputs, pairs, strict=True):
        if out.shape != hr.shape:
            raise ValueError(f"SR output for {name!r} is {out.shape}, its ground truth {hr.shape}")
        r = metrics.evaluate(out, hr, crop_border=scale, metrics=("psnr", "ssim", "lpips"))
        patches = niqe_eval.niqe_patch_count(out.shape, scale, m.patch_size)
        nq = niqe_eval.niqe_with_count(out, scale, m)[0] if patches else None
        rows.append({"image": name, "psnr_y": float(r["psnr_y"]), "ssim_y": float(r["ssim_y"]),
                     "niqe": nq, "niqe_patches": patches,
                     "lpips": None if r.get("lpips") is None else float(r["lpips"]),
                     "hf_ratio": niqe_eval.hf_ratio(out, hr, crop_border=scale),
                     "notes": r.get("notes", "")})
    return rows


def hr_niqe_rows(pairs: Mapping[str, Sequence[tuple]], scale: int, niqe_model=None) -> list[dict]:
    """The ground truth's own NIQE per category (and ``all``): what "natural" scores here."""
    from .. import niqe_eval
    from ..niqe import load_niqe_model

    m = load_niqe_model(niqe_model)
    rows = []
    for cat, cat_pairs in pairs.items():
        vals = [niqe_eval.niqe_with_count(hr, scale, m) for _, _, hr in cat_pairs]
        vals = [v for v in vals if v[1] > 0]
        rows.append({"method": "HR (ground truth)", "category": cat, "n_images": len(cat_pairs),
                     "psnr_y": None, "ssim_y": None,
                     "niqe": float(np.mean([v[0] for v in vals])) if vals else None,
                     "lpips": None, "hf_ratio": 1.0})
    rows.append({"method": "HR (ground truth)", "category": "all",
                 "n_images": sum(r["n_images"] for r in rows), "psnr_y": None, "ssim_y": None,
                 "niqe": _mean(rows, "niqe"), "lpips": None, "hf_ratio": 1.0})
    return rows


def _mean(rows: Sequence[Mapping], key: str):
    vals = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else None


METRIC_KEYS = ("psnr_y", "ssim_y", "niqe", "lpips", "hf_ratio")


def score_by_category(outputs: Mapping[str, Sequence[np.ndarray]], pairs: Mapping[str, Sequence[tuple]],
                      scale: int, method: str) -> tuple[list[dict], list[dict]]:
    """``(summary_rows, per_image_rows)`` for one method.

    ``outputs`` and ``pairs`` are keyed by category. Summary rows: one per category (mean over
    its images) and ``"all"`` (the mean of the category means, so a category with more test
    images does not weigh more). Per-image rows carry ``method`` and ``category``.
    """
    summary, per_image = [], []
    for cat, cat_pairs in pairs.items():
        rows = score_images(outputs[cat], cat_pairs, scale)
        per_image += [{"method": method, "category": cat, **r} for r in rows]
        summary.append({"method": method, "category": cat, "n_images": len(rows),
                        **{k: _mean(rows, k) for k in METRIC_KEYS},
                        "niqe_patches": "/".join(str(r["niqe_patches"]) for r in rows)})
    summary.append({"method": method, "category": "all", "n_images": sum(r["n_images"] for r in summary),
                    **{k: _mean(summary, k) for k in METRIC_KEYS}, "niqe_patches": ""})
    return summary, per_image


# ----------------------------------------------------------------------------- D features

@torch.no_grad()
def pooled_features(feature_fn: Callable[[torch.Tensor], Sequence[torch.Tensor] | Mapping],
                    images: torch.Tensor, batch_size: int = 32, device=None) -> np.ndarray:
    """Global-average-pooled features, concatenated over layers: ``(N, sum C_l)`` float64.

    ``feature_fn(x)`` returns a list/tuple or dict of ``(n, C_l, H_l, W_l)`` maps.
    """
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size]
        if device is not None:
            x = x.to(device)
        feats = feature_fn(x)
        feats = list(feats.values()) if isinstance(feats, Mapping) else list(feats)
        out.append(torch.cat([f.float().mean(dim=(2, 3)) for f in feats], dim=1).cpu().double().numpy())
    return np.concatenate(out, axis=0)


def pca_2d(features: np.ndarray, fit_on: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Project onto the two leading principal components: ``(coords (N, 2), explained ratio (2,))``.

    Features are standardised per dimension (zero mean, unit variance over ``fit_on``, default
    ``features``), then projected with the top right-singular vectors; the explained ratio is
    each component's share of the total variance. Signs follow the SVD (arbitrary).
    """
    x = np.asarray(features, dtype=np.float64)
    ref = x if fit_on is None else np.asarray(fit_on, dtype=np.float64)
    if ref.ndim != 2 or ref.shape[0] < 2:
        raise ValueError(f"pca_2d needs at least 2 samples of shape (N, D), got {ref.shape}")
    mu, sd = ref.mean(0), ref.std(0)
    sd[sd < 1e-12] = 1.0
    z_ref = (ref - mu) / sd
    _, s, vt = np.linalg.svd(z_ref, full_matrices=False)
    var = s ** 2
    k = min(2, vt.shape[0])
    coords = ((x - mu) / sd) @ vt[:k].T
    if k < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - k)))
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return coords, np.pad(ratio, (0, 2 - len(ratio)))


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, seed: int = 0) -> float:
    """Accuracy on ``test`` of a multinomial logistic regression fitted on ``train``.

    Features standardised with the train statistics; L2-regularised (C = 1), lbfgs. A linear
    probe measures how linearly separable the categories are in a feature space.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(np.asarray(train_x), np.asarray(train_y))
    return float((clf.predict(np.asarray(test_x)) == np.asarray(test_y)).mean())


def probe_patches(categories: Sequence[str], split: str, n_per_category: int, hr_patch: int,
                  *, n_text: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """``n_per_category`` random HR patches of each category's ``split``: ``(x (N,3,p,p), labels)``."""
    from ..data import PairedPatches
    from ..data_categories import category_images

    xs, ys = [], []
    for k, cat in enumerate(categories):
        imgs = category_images(cat, split, n_text=n_text, seed=seed)
        sampler = PairedPatches(imgs, 4 if hr_patch % 4 == 0 else 1, hr_patch, seed=seed * 16 + k + 100,
                                augment=False)
        _, hr = sampler.sample_batch(0, n_per_category)
        xs.append(hr)
        ys += [k] * n_per_category
    return torch.cat(xs), np.asarray(ys)


# ----------------------------------------------------------------------------- claims

def paired_delta(per_image: Sequence[Mapping], metric: str, a: str, b: str) -> tuple[float, float, int]:
    """Mean and standard error over test images of ``metric(a) - metric(b)`` (paired by image)."""
    va = {(r["category"], r["image"]): r[metric] for r in per_image if r["method"] == a}
    vb = {(r["category"], r["image"]): r[metric] for r in per_image if r["method"] == b}
    keys = [k for k in va if k in vb and va[k] is not None and vb[k] is not None]
    if not keys:
        return float("nan"), float("nan"), 0
    d = np.array([va[k] - vb[k] for k in keys], dtype=np.float64)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")
    return float(d.mean()), se, len(d)


def claims(per_image: Sequence[Mapping], *, proposed: str = "semantic",
           baselines: Sequence[str] = ("edsr", "vgg", "multiclass"),
           metric_map: Mapping[str, str] | None = None, z: float = 2.0,
           lpips_available: bool = False) -> list[dict]:
    """The seed table's comparisons (proposed vs each baseline) as directions we can test.

    For each baseline and metric (PSNR-Y, SSIM-Y, NIQE in place of PI, LPIPS when available):
    the paper's two numbers, ours (means over every test image), the paired mean difference
    and its standard error over images, and a status: ``held`` when our difference has the
    paper's sign and exceeds ``z`` standard errors, ``not held`` when it has the opposite sign
    beyond ``z`` standard errors, ``not resolved`` within the band, ``unavailable`` when the
    metric could not be computed. ``z`` is fixed at 2 before looking at any result.
    """
    metric_map = dict(metric_map or {"psnr_y": "psnr_y", "ssim_y": "ssim_y", "niqe": "pi", "lpips": "lpips"})
    paper = {r["method"]: r for r in PAPER_TABLE}
    rows = []
    for base in baselines:
        for ours_key, paper_key in metric_map.items():
            higher = HIGHER_IS_BETTER[ours_key]
            p_prop, p_base = paper[proposed][paper_key], paper[base][paper_key]
            paper_better = (p_prop > p_base) if higher else (p_prop < p_base)
            row = {"claim": f"proposed better than {base} on {ours_key}"
                            + (f" ({paper_key} in the paper)" if paper_key != ours_key else ""),
                   "baseline": base, "metric": ours_key, "paper_metric": paper_key,
                   "paper_proposed": p_prop, "paper_baseline": p_base,
                   "paper_direction": "proposed better" if paper_better else "proposed worse"}
            if ours_key == "lpips" and not lpips_available:
                rows.append({**row, "ours_proposed": None, "ours_baseline": None, "delta": None,
                             "se": None, "n": 0, "status": "unavailable"})
                continue
            delta, se, n = paired_delta(per_image, ours_key, proposed, base)
            ours_p = _mean([r for r in per_image if r["method"] == proposed], ours_key)
            ours_b = _mean([r for r in per_image if r["method"] == base], ours_key)
            if n == 0 or not np.isfinite(delta):
                status = "unavailable"
            else:
                good = delta > 0 if higher else delta < 0
                if abs(delta) <= z * se:
                    status = "not resolved"
                else:
                    status = "held" if good == paper_better else "not held"
            rows.append({**row, "ours_proposed": ours_p, "ours_baseline": ours_b, "delta": delta,
                         "se": se, "n": n, "status": status})
    return rows
