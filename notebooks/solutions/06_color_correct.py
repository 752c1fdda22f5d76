"""Solution to notebook 06, exercise 1: PDD's colour correction by hand, checked against
srlib.infer.color_correct on an image whose colours were shifted and rescaled, and by its
definition (each channel's mean and std equal the LR's).

Run it: ``python notebooks/solutions/06_color_correct.py`` (tests/test_solutions.py runs it).
"""

import numpy as np

from srlib.data import load_images
from srlib.degradations import bicubic_degrade
from srlib.infer import as_float_image, color_correct
from srlib.recipes.evaluate import bicubic_upscale


def my_color_correct(sr, lr):
    """Match each channel's mean and population std of ``sr`` to ``lr``'s, then clip to [0, 1]."""
    sr = np.asarray(sr, np.float64)
    lr = np.asarray(lr, np.float64)
    mu_s, sd_s = sr.mean(axis=(0, 1)), sr.std(axis=(0, 1))
    mu_l, sd_l = lr.mean(axis=(0, 1)), lr.std(axis=(0, 1))
    return np.clip((sr - mu_s) / np.maximum(sd_s, 1e-8) * sd_l + mu_l, 0.0, 1.0)


if __name__ == "__main__":
    hr = load_images("photos", "test", n=1)["astronaut"][:128, :128]
    lr = bicubic_degrade(hr, 4)
    # an SR output with a colour cast and a contrast change: what an adapted model may produce
    sr = np.clip(as_float_image(bicubic_upscale(lr, 4)) * [0.8, 1.0, 1.1] + [0.05, -0.03, 0.0], 0, 1)
    mine = my_color_correct(sr, as_float_image(lr))
    assert np.allclose(mine, color_correct(sr.astype(np.float32), as_float_image(lr)), atol=1e-4)
    inside = (mine > 0) & (mine < 1)
    assert inside.mean() > 0.99  # clipping touched almost nothing, so the statistics must match
    assert np.allclose(mine.mean(axis=(0, 1)), as_float_image(lr).mean(axis=(0, 1)), atol=2e-3)
    assert np.allclose(mine.std(axis=(0, 1)), as_float_image(lr).std(axis=(0, 1)), atol=2e-3)
    print("check holds: my_color_correct equals srlib's color_correct and matches the LR's channel statistics")
