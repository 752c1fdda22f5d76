"""NIQE that can carry a conclusion: whole test images, the HR's own score beside, patch counts,
spread, and a sharpness measure next to it.

NIQE (:mod:`srlib.niqe`, Mittal et al. 2013) fits a 36-D Gaussian to the features of the
96x96 patches of ONE image and measures its distance to the pristine Gaussian. On a 256-px
evaluation crop (minus the border) that is 4 patches, so the image's 36x36 covariance rests on 4
samples, and shifting the crop by a few pixels moves the score by more than most differences
between SR methods (:func:`crop_shift_spread` measures it). Hence, in this course:

- NIQE is computed on **full-size** test images (the LR made from the whole HR image, super-resolved
  whole or tiled), never on the small PSNR crops;
- every table reports the **HR ground truth's** NIQE beside the methods (what "natural" scores on
  the very same content), the **number of patches** each score rests on, and the **spread** over
  images (std, min, max), so a difference can be compared with the noise;
- :func:`hf_ratio` (high-frequency energy of the output relative to the HR) stands beside it as
  a plain, reference-based measure of sharpness: 1 = as much fine detail as the ground truth,
  below 1 = smoother, above 1 = more high-frequency energy than the truth (texture or noise).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from .errors import DatasetError

Method = Callable[[np.ndarray], np.ndarray]  # LR uint8 H x W x 3 -> SR uint8 (sH) x (sW) x 3
HR_LABEL = "HR (ground truth)"


def niqe_patch_count(shape: Sequence[int], crop_border: int = 0, patch_size: int | None = None) -> int:
    """How many NIQE patches an image of ``shape`` (H, W, ...) holds after ``crop_border``:
    ``floor((H - 2c) / p) * floor((W - 2c) / p)`` with ``p`` the model's patch size (96)."""
    from .niqe import PATCH_SIZE

    p = int(patch_size or PATCH_SIZE)
    h, w = int(shape[0]) - 2 * crop_border, int(shape[1]) - 2 * crop_border
    return max(0, h // p) * max(0, w // p)


def niqe_with_count(img, crop_border: int = 0, model=None) -> tuple[float, int]:
    """``(NIQE score, number of patches it rests on)`` of one uint8 RGB image (lower is better)."""
    from .niqe import load_niqe_model, niqe, NIQEModel

    m = model if isinstance(model, NIQEModel) else load_niqe_model(model)
    arr = np.asarray(img)
    return float(niqe(arr, crop_border=crop_border, model=m)), \
        niqe_patch_count(arr.shape, crop_border, m.patch_size)


def _y(img, crop_border: int) -> np.ndarray:
    from .metrics import rgb_to_y

    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise DatasetError(f"expected a uint8 RGB image H x W x 3, got {arr.dtype} {arr.shape}")
    y = rgb_to_y(arr.astype(np.float64) / 255.0)
    if crop_border:
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    return y


def hf_energy(img, crop_border: int = 0) -> float:
    """Mean absolute Laplacian of the BT.601 Y channel (0-255 scale), border-cropped like PSNR.

    The 4-neighbour Laplacian ``Y[i-1,j] + Y[i+1,j] + Y[i,j-1] + Y[i,j+1] - 4 Y[i,j]`` (reflecting
    borders) responds to edges and fine texture: the detail that pixel losses smooth away and GAN
    losses put back."""
    from scipy.ndimage import laplace

    y = _y(img, crop_border)
    return float(np.mean(np.abs(laplace(y, mode="reflect"))))


def hf_ratio(sr, hr, crop_border: int = 0) -> float:
    """``hf_energy(sr) / hf_energy(hr)``: the SR's mean absolute Laplacian over the HR's.

    1 = as much fine detail as the ground truth, < 1 smoother (x4 bicubic is about 0.1 on the
    course photos), > 1 more high-frequency content than the truth (invented texture, noise or
    ringing)."""
    ref = hf_energy(hr, crop_border)
    if ref <= 1e-12:
        raise DatasetError("the reference image has no high-frequency energy (flat); hf_ratio is undefined")
    return hf_energy(sr, crop_border) / ref


def model_method(model, scale: int, device=None, tile: int | None = 128) -> Method:
    """An SR network as a :data:`Method` for :func:`full_size_niqe` (tiled, so memory is bounded)."""
    from .infer import upscale

    return lambda lr: upscale(model, lr, scale=scale, device=device, tile=tile)


def bicubic_method(scale: int) -> Method:
    """MATLAB-style bicubic enlargement as a :data:`Method` (the "no learning" baseline)."""
    from .recipes.evaluate import bicubic_upscale

    return lambda lr: bicubic_upscale(lr, scale)


def full_size_niqe(methods: Mapping[str, Method], images: Mapping[str, np.ndarray], scale: int, *,
                   crop_border: int | None = None, include_hr: bool = True, model=None,
                   progress: bool = False) -> tuple[list[dict], list[dict]]:
    """NIQE and ``hf_ratio`` of each method on whole test images, with the HR's own scores.

    ``images``: name -> full-size HR (uint8). The LR is the bicubic x``scale`` of the whole HR
    (mod-cropped, :func:`srlib.data.eval_pairs` without ``max_side``); each method maps it back to
    full size. ``crop_border`` defaults to ``scale`` (BasicSR's convention).

    Returns ``(per_image, summary)``. ``per_image`` rows: ``method, image, size, patches, niqe,
    hf_ratio``. ``summary`` rows, one per method (the HR first when ``include_hr``): ``method,
    images, patches_per_image`` (e.g. ``"25/12/24"``), ``niqe_mean, niqe_std, niqe_min,
    niqe_max`` (std over images, ``ddof=0``; 0 for one image), ``hf_ratio_mean``.
    """
    from .data import eval_pairs
    from .niqe import load_niqe_model

    if not images:
        raise DatasetError("full_size_niqe got no images")
    if not methods and not include_hr:
        raise ValueError("nothing to score: give at least one method or include_hr=True")
    c = scale if crop_border is None else int(crop_border)
    m = load_niqe_model(model)
    pairs = list(eval_pairs(dict(images), scale, max_side=None))
    todo = ([(HR_LABEL, None)] if include_hr else []) + list(methods.items())
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(todo) * len(pairs), desc="NIQE on full-size images", leave=False)
    per_image = []
    for label, fn in todo:
        for name, lr, hr in pairs:
            out = hr if fn is None else np.asarray(fn(lr))
            if out.shape != hr.shape:
                raise ValueError(f"method {label!r} returned {out.shape} for {name!r}, whose HR is "
                                 f"{hr.shape}: it must upscale by exactly x{scale}")
            score, n = niqe_with_count(out, c, m)
            per_image.append({"method": label, "image": name, "size": f"{hr.shape[1]}x{hr.shape[0]}",
                              "patches": n, "niqe": score,
                              "hf_ratio": 1.0 if fn is None else hf_ratio(out, hr, c)})
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    summary = []
    for label, _ in todo:
        rows = [r for r in per_image if r["method"] == label]
        v = np.array([r["niqe"] for r in rows])
        summary.append({"method": label, "images": len(rows),
                        "patches_per_image": "/".join(str(r["patches"]) for r in rows),
                        "niqe_mean": float(v.mean()), "niqe_std": float(v.std()),
                        "niqe_min": float(v.min()), "niqe_max": float(v.max()),
                        "hf_ratio_mean": float(np.mean([r["hf_ratio"] for r in rows]))})
    return per_image, summary


def crop_shift_spread(img: np.ndarray, crop: int = 256, shifts: Sequence[int] = (0, 8, 16, 24, 32),
                      crop_border: int = 4, model=None) -> list[dict]:
    """NIQE of the same image on ``crop`` x ``crop`` crops whose top-left corner moves diagonally by
    each of ``shifts`` pixels, and of the whole image: how much of a NIQE difference is the crop.

    Rows: ``region`` ("crop +8 px" or "whole image"), ``size``, ``patches``, ``niqe``."""
    arr = np.asarray(img)
    if max(shifts) + crop > min(arr.shape[:2]):
        raise DatasetError(f"a {crop}-px crop shifted by up to {max(shifts)} px needs an image of at least "
                           f"{crop + max(shifts)} px a side; got {arr.shape[1]}x{arr.shape[0]}")
    rows = []
    for s in shifts:
        part = arr[s:s + crop, s:s + crop]
        score, n = niqe_with_count(part, crop_border, model)
        rows.append({"region": f"crop +{s} px", "size": f"{crop}x{crop}", "patches": n, "niqe": score})
    score, n = niqe_with_count(arr, crop_border, model)
    rows.append({"region": "whole image", "size": f"{arr.shape[1]}x{arr.shape[0]}", "patches": n,
                 "niqe": score})
    return rows


__all__ = ["HR_LABEL", "niqe_patch_count", "niqe_with_count", "hf_energy", "hf_ratio", "model_method",
           "bicubic_method", "full_size_niqe", "crop_shift_spread"]
