"""NIQE on whole images with the HR beside, patch counts and spread; hf_ratio."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from srlib import data, niqe_eval
from srlib.errors import DatasetError
from srlib.metrics import rgb_to_y
from srlib.niqe import niqe


def _photo():
    return data.load_images("photos", "test")["chelsea"]  # 300 x 451


def test_patch_count_is_whole_96px_patches_after_the_crop():
    assert niqe_eval.niqe_patch_count((256, 256), 4) == 4  # the old evaluation crop: 2 x 2
    assert niqe_eval.niqe_patch_count((512, 512, 3), 4) == 25
    assert niqe_eval.niqe_patch_count((300, 451), 4) == 3 * 4
    assert niqe_eval.niqe_patch_count((90, 500), 0) == 0


def test_hf_energy_matches_its_definition_and_ratio_orders_sharpness():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    y = niqe_eval._y(img, 2)
    p = np.pad(y, 1, mode="symmetric")  # scipy's "reflect": d c b a | a b c d
    lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * y
    want = np.mean(np.abs(lap))
    assert niqe_eval.hf_energy(img, crop_border=2) == pytest.approx(want, rel=1e-12)
    hr = _photo()
    blurred = np.clip(gaussian_filter(hr.astype(float), (1.5, 1.5, 0)) + 0.5, 0, 255).astype(np.uint8)
    noisy = np.clip(hr + rng.normal(0, 12, hr.shape) + 0.5, 0, 255).astype(np.uint8)
    assert niqe_eval.hf_ratio(hr, hr, 4) == pytest.approx(1.0)
    assert niqe_eval.hf_ratio(blurred, hr, 4) < 0.5 < 1.5 < niqe_eval.hf_ratio(noisy, hr, 4)
    with pytest.raises(DatasetError, match="flat"):
        niqe_eval.hf_ratio(hr[:20, :20], np.full((20, 20, 3), 7, np.uint8))


def test_full_size_niqe_scores_whole_images_with_the_hr_beside():
    images = {"chelsea": _photo()}
    per_image, summary = niqe_eval.full_size_niqe({"bicubic": niqe_eval.bicubic_method(4)}, images, 4)
    assert [r["method"] for r in summary] == [niqe_eval.HR_LABEL, "bicubic"]
    hr_row = per_image[0]
    hr = images["chelsea"][:300, :448]  # mod-cropped to multiples of 4, never centre-cropped
    assert hr_row["size"] == "448x300" and hr_row["patches"] == 12
    assert hr_row["niqe"] == pytest.approx(niqe(hr, crop_border=4))
    bic = summary[1]
    assert bic["patches_per_image"] == "12" and bic["niqe_std"] == 0.0
    assert bic["hf_ratio_mean"] < 1.0  # bicubic is smoother than the truth
    with pytest.raises(ValueError, match="x4"):
        niqe_eval.full_size_niqe({"wrong": lambda lr: lr}, images, 4, include_hr=False)


def test_crop_shift_spread_reports_each_crop_and_the_whole_image():
    rows = niqe_eval.crop_shift_spread(_photo(), crop=192, shifts=(0, 16), crop_border=4)
    assert [r["region"] for r in rows] == ["crop +0 px", "crop +16 px", "whole image"]
    assert [r["patches"] for r in rows] == [1, 1, 12]
    with pytest.raises(DatasetError, match="at least"):
        niqe_eval.crop_shift_spread(_photo(), crop=290, shifts=(0, 32))


def test_interpolation_sweep_shows_progress_without_changing_results(capsys):
    import torch
    from torch import nn

    from srlib.recipes.evaluate import interpolation_sweep

    def net(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Upsample(scale_factor=4, mode="nearest"), nn.Conv2d(3, 3, 1))

    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (104, 104, 3), dtype=np.uint8)
    pairs = [("a", hr[::4, ::4].copy(), hr)]
    a, b = net(0), net(1)
    quiet, _ = interpolation_sweep(a, b, [0.0, 0.5, 1.0], pairs, 4, device="cpu")
    shown, _ = interpolation_sweep(a, b, [0.0, 0.5, 1.0], pairs, 4, device="cpu", progress=True)
    assert "interpolation sweep" in capsys.readouterr().err
    assert [r["psnr_y"] for r in shown] == [r["psnr_y"] for r in quiet]
