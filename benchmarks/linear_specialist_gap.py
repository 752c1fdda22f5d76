"""Does the target domain separate a bicubic specialist from a Real-ESRGAN generalist? A linear check.

PDD (Zhang, Lee & Yao, ECCV 2024, Tab. 1) rests on two facts: the bicubic specialist beats the
generalist on bicubic LR, and loses to it on the real-world target domain. Trained networks
(notebook 06) measure that; this script checks, in seconds and without any network, whether the
target domain can show it at all. Both "models" are the best linear x``scale`` upscaler
(ridge least squares from a 7 x 7 LR neighbourhood to the ``scale`` x ``scale`` HR pixels under
its centre, one filter shared by the RGB channels), fitted on the course's training photos:

- specialist: fitted on bicubic LR (``bicubic_degrade``);
- generalist: fitted on Real-ESRGAN second-order LR (``second_order_degrade``, ``--draws`` per photo).

It prints PSNR (RGB, dB, border ``scale`` cropped) of both on the held-out test photos in three
domains: bicubic LR, the target domain (``hidden_degradation``) and its first, milder version
(``degradation_domain.first_hidden_degradation``). A linear model cannot denoise the way a
network does, so the numbers bound nothing about notebook 06; the sign of the gap is the point.
Run: ``python benchmarks/linear_specialist_gap.py [--draws 6]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from degradation_domain import first_hidden_degradation
from srlib import data
from srlib import degradations as D
from srlib.metrics import psnr

RADIUS = 3  # 7 x 7 LR neighbourhood


def _features(lr: np.ndarray) -> np.ndarray:
    """(H * W * C, 49 + 1): every LR pixel's 7 x 7 neighbourhood (reflect border) and a bias."""
    pad = np.pad(lr, ((RADIUS, RADIUS), (RADIUS, RADIUS), (0, 0)), mode="reflect")
    win = np.lib.stride_tricks.sliding_window_view(pad, (2 * RADIUS + 1, 2 * RADIUS + 1), axis=(0, 1))
    x = win.reshape(-1, (2 * RADIUS + 1) ** 2)  # (H, W, C, 7, 7) -> rows in (h, w, c) order
    return np.concatenate([x, np.ones((x.shape[0], 1), x.dtype)], axis=1)


def _targets(hr: np.ndarray, scale: int) -> np.ndarray:
    """(H * W * C, scale^2): the HR block under each LR pixel, rows in the same (h, w, c) order."""
    h, w, c = hr.shape[0] // scale, hr.shape[1] // scale, hr.shape[2]
    blocks = hr.reshape(h, scale, w, scale, c).transpose(0, 2, 4, 1, 3)
    return blocks.reshape(h * w * c, scale * scale)


def fit(pairs, scale: int, ridge: float = 1e-3) -> np.ndarray:
    """Ridge least squares over all (lr, hr) pairs; returns the (50, scale^2) filter bank."""
    xtx, xty = 0.0, 0.0
    for lr, hr in pairs:
        x, y = _features(lr.astype(np.float64)), _targets(hr.astype(np.float64), scale)
        xtx = xtx + x.T @ x
        xty = xty + x.T @ y
    return np.linalg.solve(xtx + ridge * np.eye(xtx.shape[0]), xty)


def upscale(lr: np.ndarray, weights: np.ndarray, scale: int) -> np.ndarray:
    h, w, c = lr.shape
    blocks = (_features(lr.astype(np.float64)) @ weights).reshape(h, w, c, scale, scale)
    return np.clip(blocks.transpose(0, 3, 1, 4, 2).reshape(h * scale, w * scale, c), 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--draws", type=int, default=6, help="second-order draws per training photo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    s = args.scale

    def prep(img):
        return D.modcrop(img, s).astype(np.float32) / 255.0

    train = [prep(im) for im in data.load_images("photos", "train").values()]
    test = [prep(im) for im in data.load_images("photos", "test").values()]
    specialist = fit(((D.bicubic_degrade(hr, s), hr) for hr in train), s)
    generalist = fit(((D.second_order_degrade(hr, s, np.random.default_rng([args.seed, i, k])), hr)
                      for i, hr in enumerate(train) for k in range(args.draws)), s)
    domains = {
        "bicubic": lambda hr, i: D.bicubic_degrade(hr, s),
        "target (hidden_degradation)": lambda hr, i: D.hidden_degradation(hr, s),
        "first target version": lambda hr, i: first_hidden_degradation(
            hr, s, np.random.default_rng([args.seed, 1000 + i])),
    }
    print(f"x{s} linear upscalers (7x7 LR -> {s}x{s} HR), fitted on {len(train)} training photos "
          f"({args.draws} second-order draws each for the generalist); mean PSNR (RGB, dB) on "
          f"{len(test)} test photos")
    print(f"{'domain':30s} {'specialist':>11s} {'generalist':>11s} {'gen - spec':>11s}")
    for name, degrade in domains.items():
        scores = {"spec": [], "gen": []}
        for i, hr in enumerate(test):
            lr = np.clip(degrade(hr, i), 0, 1)
            for key, wts in (("spec", specialist), ("gen", generalist)):
                scores[key].append(psnr(upscale(lr, wts, s), hr, crop_border=s, y_channel=False))
        sp, ge = float(np.mean(scores["spec"])), float(np.mean(scores["gen"]))
        print(f"{name:30s} {sp:11.2f} {ge:11.2f} {ge - sp:+11.2f}")


if __name__ == "__main__":
    main()
