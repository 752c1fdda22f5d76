"""Solution to notebook 00, exercise 1: PSNR on the BT.601 Y channel, from the equations.

Run it: ``python notebooks/solutions/00_psnr_y.py`` (tests/test_solutions.py runs every solution).
It ends with the notebook's check: the result must equal srlib.metrics.psnr on the test pairs.
"""

import numpy as np

from srlib import data, degradations, metrics


def my_psnr_y(sr, hr, crop_border):
    """PSNR-Y in dB of two uint8 RGB images, BT.601 studio-range Y, ``crop_border`` px removed."""
    def y(img):
        rgb = np.asarray(img, dtype=np.float64) / 255.0
        return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]

    a, b = y(sr), y(hr)
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


if __name__ == "__main__":
    scale = 4
    pairs = list(data.eval_pairs(data.load_images("photos", "test"), scale, max_side=128))
    diffs = []
    for _, lr, hr in pairs:
        sr = degradations.imresize(lr, scale)
        diffs.append(abs(my_psnr_y(sr, hr, scale) - metrics.psnr(sr, hr, crop_border=scale)))
    assert max(diffs) < 1e-6, diffs
    print(f"check holds: largest difference from srlib {max(diffs):.2e} dB")
