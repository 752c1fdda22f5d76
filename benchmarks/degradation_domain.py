"""How hard is the course's "real-world" target domain, next to Real-ESRGAN's training degradations?

For HR crops of the bundled photos, compares each degraded LR image with the clean bicubic LR of
the same crop (``bicubic_degrade``): PSNR(degraded LR, bicubic LR) in dB, on RGB at the 0-255
scale (``--y-channel``: on luma Y, as the course's PSNR) (lower = the degradation moved the LR
further from the clean one = harder). It prints

- the target domain (``hidden_degradation``): median and quartiles over the crops;
- its first version (:func:`first_hidden_degradation`: anisotropic Gaussian blur, Gaussian
  noise 6/255 + gray 3/255, JPEG 60), for comparison;
- Real-ESRGAN's second-order pipeline (``second_order_degrade``, x4plus options): median and
  quartiles over ``--draws`` random draws per crop;
- where the target median falls in the draw distribution: the share of draws that are milder
  (higher PSNR) than it. A target domain milder than almost every draw is one the generalist
  barely has to work for, and one that the bicubic specialist may still handle.

Run: ``python benchmarks/degradation_domain.py [--crops-per-image 4] [--draws 20] [--size 192]``.
Timing is not measured; the numbers depend only on the seeds.
"""

from __future__ import annotations

import argparse

import numpy as np

from srlib import data
from srlib import degradations as D
from srlib.metrics import psnr


def hr_crops(size: int, per_image: int, seed: int) -> list[np.ndarray]:
    """``per_image`` random size x size crops (float32 [0, 1]) of every bundled photo."""
    rng = np.random.default_rng(seed)
    crops = []
    for split in ("train", "test"):
        for img in data.load_images("photos", split).values():
            h, w = img.shape[:2]
            for _ in range(per_image):
                top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
                crops.append(img[top:top + size, left:left + size].astype(np.float32) / 255.0)
    return crops


def first_hidden_degradation(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """The first target domain, replaced because it was too mild: anisotropic Gaussian blur
    (sigma 2.2 x 0.9 HR pixels at x4, 36 degrees, 21 x 21) -> MATLAB bicubic -> colour Gaussian
    noise sigma 6/255 + gray noise 3/255 -> JPEG 60 (noise drawn from ``rng``)."""
    f = scale / 4.0
    k = D.gaussian_kernel(21, 2.2 * f, 0.9 * f, np.pi / 5)
    x = D.imresize(D.filter2d(hr.astype(np.float32), k), 1.0 / scale)
    x = D.gaussian_noise(x, 6.0, rng, clip=False)
    x = D.gaussian_noise(x, 3.0, rng, gray=True)
    return D.jpeg(x, 60)


def lr_psnr(lr: np.ndarray, clean: np.ndarray, y_channel: bool = False) -> float:
    return float(psnr(np.clip(lr, 0, 1), np.clip(clean, 0, 1), crop_border=0, y_channel=y_channel))


def measure(scale: int = 4, size: int = 192, per_image: int = 4, draws: int = 20, seed: int = 0,
            y_channel: bool = False) -> dict:
    """PSNR of target-domain LR and of second-order draws against the clean bicubic LR."""
    crops = hr_crops(size, per_image, seed)
    target, first, generalist = [], [], []
    for i, hr in enumerate(crops):
        clean = D.bicubic_degrade(hr, scale)
        target.append(lr_psnr(D.hidden_degradation(hr, scale), clean, y_channel))
        first.append(lr_psnr(first_hidden_degradation(hr, scale, np.random.default_rng([seed, i])), clean,
                             y_channel))
        for k in range(draws):
            lr = D.second_order_degrade(hr, scale, np.random.default_rng([seed, i, k]))
            generalist.append(lr_psnr(lr, clean, y_channel))
    target, first, generalist = np.asarray(target), np.asarray(first), np.asarray(generalist)
    med = float(np.median(target))
    return {
        "first_median": float(np.median(first)),
        "share_of_draws_milder_than_first": float(np.mean(generalist > np.median(first))),
        "crops": len(crops), "draws": len(generalist),
        "target_median": med, "target_q25": float(np.quantile(target, 0.25)),
        "target_q75": float(np.quantile(target, 0.75)),
        "draws_median": float(np.median(generalist)), "draws_q25": float(np.quantile(generalist, 0.25)),
        "draws_q75": float(np.quantile(generalist, 0.75)),
        "share_of_draws_milder_than_target": float(np.mean(generalist > med)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--crops-per-image", type=int, default=4)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--y-channel", action="store_true", help="PSNR on luma Y instead of RGB")
    args = parser.parse_args()
    r = measure(args.scale, args.size, args.crops_per_image, args.draws, args.seed, args.y_channel)
    print(f"x{args.scale}, {r['crops']} HR crops of {args.size}x{args.size} from the bundled photos; "
          f"PSNR ({'Y' if args.y_channel else 'RGB'}, dB) of each LR against the clean bicubic LR")
    print(f"target domain (hidden_degradation): median {r['target_median']:.2f} "
          f"[q25 {r['target_q25']:.2f}, q75 {r['target_q75']:.2f}]")
    print(f"first version of the target domain: median {r['first_median']:.2f}; "
          f"{100 * r['share_of_draws_milder_than_first']:.1f} % of the draws are milder")
    print(f"Real-ESRGAN second-order, {r['draws']} draws: median {r['draws_median']:.2f} "
          f"[q25 {r['draws_q25']:.2f}, q75 {r['draws_q75']:.2f}]")
    print(f"share of draws milder (higher PSNR) than the target median: "
          f"{100 * r['share_of_draws_milder_than_target']:.1f} %")


if __name__ == "__main__":
    main()
