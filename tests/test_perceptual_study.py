"""Tests of srlib.perceptual_study: the experiments of notebook 03, on tiny inputs."""

import math

import numpy as np
import pytest
import torch

from srlib.errors import DatasetError
from srlib.features import VGGFeatures
from srlib.perceptual_study import (DEFAULT_STRENGTHS, MultimodalToy, degrade, fit_toy_regressor,
                                    gram_and_feature_distances, invert_features, metric_response,
                                    regression_to_mean_toy, relative_distance, relu_sparsity,
                                    response_curves, shuffle_patches, total_variation, zero_fraction)


def _smooth_image(size=16):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([xx, yy, 0.5 + 0.4 * torch.sin(6 * xx)])


def _photo_crop(size=64):
    from srlib.data import load_images

    img = load_images("photos", "test", n=1)["astronaut"]
    return np.ascontiguousarray(img[60:60 + size, 200:200 + size])


# ------------------------------------------------------------------------------------- toy

def test_toy_density_cdf_mean_median_are_consistent():
    toy = MultimodalToy(centers=(-1.0, 0.2, 1.5), slopes=(0.5, 0.0, -0.5),
                        weights0=(0.5, 0.2, 0.3), weights1=(0.1, 0.6, 0.3), sigma=0.2)
    ys = np.linspace(-4, 4, 20001)
    for x in (0.0, 0.37, 1.0):
        p = toy.density(np.full_like(ys, x), ys)
        assert np.trapezoid(p, ys) == pytest.approx(1.0, abs=1e-6)
        # the closed-form mean is the first moment of the density
        assert toy.mean([x])[0] == pytest.approx(np.trapezoid(ys * p, ys), abs=1e-6)
        med = toy.median([x])[0]
        assert toy.cdf(x, med) == pytest.approx(0.5, abs=1e-9)
    # weights at x = 0.37 are the linear interpolation
    np.testing.assert_allclose(toy.weights([0.37])[0], 0.63 * np.array([0.5, 0.2, 0.3]) + 0.37 * np.array([0.1, 0.6, 0.3]))


def test_toy_modes_sit_on_separated_centres_and_mean_is_not_one():
    toy = MultimodalToy(centers=(-1.0, 1.0), slopes=(0.0, 0.0), weights0=(0.5, 0.5),
                        weights1=(0.5, 0.5), sigma=0.1)
    (modes,) = toy.modes([0.5])
    np.testing.assert_allclose(np.sort(modes), [-1.0, 1.0], atol=1e-4)
    assert toy.mean([0.5])[0] == pytest.approx(0.0, abs=1e-12)
    # the mean lies where the density is ~e^-50 of a mode's: no sample is ever there
    assert toy.density(0.5, 0.0) < 1e-15 * toy.density(0.5, 1.0)


def test_toy_sample_matches_its_distribution():
    toy = MultimodalToy()
    x, y = toy.sample(20000, seed=1)
    assert x.shape == y.shape == (20000,) and 0 <= x.min() and x.max() <= 1
    # E[y] over x ~ U[0,1] equals the average of the closed-form conditional mean
    assert y.mean() == pytest.approx(toy.mean(np.linspace(0, 1, 2001)).mean(), abs=0.02)
    x2, y2 = toy.sample(10, seed=1)
    np.testing.assert_array_equal(x2, toy.sample(10, seed=1)[0])


def test_toy_rejects_bad_weights():
    with pytest.raises(ValueError, match="sum to 1"):
        MultimodalToy(weights0=(0.5, 0.6))
    with pytest.raises(ValueError, match="same non-zero length"):
        MultimodalToy(centers=(0.0,), slopes=(0.0, 1.0))


def test_mse_fit_is_the_mean_and_l1_fit_is_the_median():
    # two inputs, a skewed (exponential) output at each: mean and median differ by ~0.3
    rng = np.random.default_rng(0)
    x = np.repeat([0.2, 0.8], 200)
    y = rng.exponential(1.0, 400) + np.where(x > 0.5, 2.0, 0.0)
    mse = fit_toy_regressor(x, y, "mse", hidden=16, steps=400, lr=2e-2)
    l1 = fit_toy_regressor(x, y, "l1", hidden=16, steps=400, lr=2e-2)
    q = torch.tensor([[0.2], [0.8]])
    with torch.no_grad():
        p_mse, p_l1 = mse(q).reshape(-1).numpy(), l1(q).reshape(-1).numpy()
    for i, xv in enumerate((0.2, 0.8)):
        group = y[x == xv]
        assert abs(np.mean(group) - np.median(group)) > 0.2
        assert p_mse[i] == pytest.approx(np.mean(group), abs=0.02)
        assert p_l1[i] == pytest.approx(np.median(group), abs=0.03)
    with pytest.raises(ValueError, match="'mse' or 'l1'"):
        fit_toy_regressor(x, y, "l3")


def test_regression_to_mean_toy_summary():
    r = regression_to_mean_toy(n=600, steps=250, hidden=16, grid=21, seed=0)
    s = r["summary"]
    assert s["plausibility_map"] == pytest.approx(1.0)
    assert s["plausibility_mean"] < 0.1  # the mean falls in the gap between the branches
    assert s["plausibility_median"] > 3 * s["plausibility_mean"]
    assert s["net_mse_vs_mean"] < 0.1
    assert r["net_mse"].shape == r["grid"].shape == (21,)


# ------------------------------------------------------------------------------- inversion

def test_total_variation_hand_values():
    x = torch.tensor([[[0.0, 1.0], [3.0, 5.0]]])  # one channel, one position with both neighbours
    assert float(total_variation(x, beta=2)) == pytest.approx(1 + 9)
    assert float(total_variation(x, beta=1)) == pytest.approx(math.sqrt(10), rel=1e-6)
    y = torch.tensor([[[0.0, 2.0, 2.0], [0.0, 2.0, 2.0], [1.0, 1.0, 1.0]]])
    # positions (0,0): 4+0, (0,1): 0+0, (1,0): 4+1, (1,1): 0+1 -> mean 10/4
    assert float(total_variation(y)) == pytest.approx(2.5)
    assert float(total_variation(torch.ones(1, 3, 5, 5))) == 0.0
    with pytest.raises(ValueError):
        total_variation(torch.ones(3, 1, 5))


def test_inversion_shrinks_the_feature_loss_by_a_large_factor():
    vgg = VGGFeatures(["conv2_2"], weights="random")
    target = _smooth_image(16)
    inv = invert_features(vgg, target, "conv2_2", steps=60, lr=0.05, seed=0)
    assert inv.image.shape == (3, 16, 16)
    assert 0.0 <= float(inv.image.min()) and float(inv.image.max()) <= 1.0
    assert len(inv.feature_loss) == 60 and inv.feature_loss[0] == inv.initial
    assert inv.initial > 0.5 and inv.reduction > 50
    with torch.no_grad():  # final is the normalised loss of the returned image
        f, f0 = vgg(inv.image)["conv2_2"], vgg(target)["conv2_2"]
    assert inv.final == pytest.approx(float((f - f0).pow(2).sum() / f0.pow(2).sum()), rel=1e-4)


def test_inversion_from_the_target_itself_is_exact_and_zero_steps_returns_init():
    vgg = VGGFeatures(["conv1_2"], weights="random")
    target = _smooth_image(8)
    inv = invert_features(vgg, target, "conv1_2", steps=0, init=target)
    assert inv.final == 0.0 and torch.equal(inv.image, target)
    noise = invert_features(vgg, target, "conv1_2", steps=0, seed=3, init_noise=0.2)
    u = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))[0]
    torch.testing.assert_close(noise.image, 0.5 + 0.2 * (u - 0.5))
    with pytest.raises(ValueError, match="conv5_4"):
        invert_features(vgg, target, "conv5_4", steps=1)
    with pytest.raises(DatasetError, match=r"\[0, 1\]"):
        invert_features(vgg, target * 3, "conv1_2", steps=1)


# --------------------------------------------------------------------------------- sparsity

def test_relu_sparsity_counts_exact_zeros_hand_example():
    conv = torch.tensor([-1.0, 0.0, 2.0, 3.0]).view(1, 1, 2, 2)
    fake = lambda x: {"conv1_1": conv, "relu1_1": conv.clamp_min(0)}  # noqa: E731
    (row,) = relu_sparsity(fake, [np.zeros((4, 4, 3), np.uint8)] * 2, ["conv1_1"])
    assert row["zeros_before"] == 0.25 and row["zeros_after"] == 0.5
    assert row["energy_removed"] == pytest.approx(1 / 14)
    assert row["mean_before"] == pytest.approx(1.0) and row["mean_after"] == pytest.approx(1.25)
    assert zero_fraction(conv) == 0.25


def test_relu_sparsity_of_vgg_matches_direct_count():
    vgg = VGGFeatures(["conv1_2", "relu1_2", "conv2_2", "relu2_2"], weights="random")
    img = _smooth_image(16)
    rows = relu_sparsity(vgg, img, ["conv1_2", "conv2_2"])
    with torch.no_grad():
        f = vgg(img)
    for row in rows:
        conv = f[row["layer"]]
        assert row["zeros_after"] == pytest.approx(float((conv <= 0).float().mean()), abs=1e-9)
        assert 0.05 < row["zeros_after"] < 0.95 and row["zeros_before"] < 0.01
    with pytest.raises(ValueError, match="relu3_4"):
        relu_sparsity(VGGFeatures(["conv3_4"], weights="random"), img, ["conv3_4"])


# ------------------------------------------------------------------------------------ Gram

def test_shuffle_patches_moves_tiles_but_keeps_each_intact():
    img = np.arange(10 * 9 * 3, dtype=np.uint8).reshape(10, 9, 3)
    out = shuffle_patches(img, 3, seed=0)
    assert out.shape == (9, 9, 3)  # cropped to multiples of the patch
    tiles = lambda a: sorted(a[i:i + 3, j:j + 3].tobytes() for i in range(0, 9, 3) for j in range(0, 9, 3))  # noqa: E731
    assert tiles(out) == tiles(img[:9, :9])
    assert not np.array_equal(out, img[:9, :9])
    np.testing.assert_array_equal(out, shuffle_patches(img, 3, seed=0))
    with pytest.raises(DatasetError, match="smaller patch"):
        shuffle_patches(img, 6)


def test_gram_ignores_layout_while_features_do_not():
    identity = lambda x: {"pixels": x}  # noqa: E731
    img = _photo_crop(32)
    shuffled = shuffle_patches(img, 1, seed=0)  # every pixel moved: a pure permutation
    (row,) = gram_and_feature_distances(identity, shuffled, img, ["pixels"])
    assert row["gram"] < 1e-12 and row["feature"] > 0.05
    (same,) = gram_and_feature_distances(identity, img, img, ["pixels"])
    assert same["gram"] == 0.0 and same["feature"] == 0.0


def test_relative_distance_hand_value():
    assert relative_distance(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0])) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        relative_distance(torch.zeros(2), torch.zeros(3))


# ---------------------------------------------------------------------------- metric response

def test_degrade_kinds():
    img = _photo_crop(32)
    noisy = degrade(img, "noise", 10, seed=1)
    assert noisy.dtype == np.uint8 and noisy.shape == img.shape
    np.testing.assert_array_equal(noisy, degrade(img, "noise", 10, seed=1))
    assert 5 < np.std(noisy.astype(float) - img) < 15
    blurred = degrade(img, "blur", 2.0)
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < np.abs(np.diff(img.astype(float), axis=1)).mean()
    assert degrade(img, "jpeg", 10).dtype == np.uint8
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(img, "rain", 1)


def test_metric_response_is_monotone_for_blur_and_reports_missing_lpips():
    from srlib.metrics import lpips_available

    img = _photo_crop(64)
    identity = lambda x: {"pixels": x}  # noqa: E731
    rows = metric_response({"a": img}, kinds=("blur", "noise"), metrics=("psnr", "ssim", "lpips", "vgg"),
                           extractor=identity, vgg_layer="pixels")
    assert len(rows) == 2 * 5
    blur = [r for r in rows if r["kind"] == "blur"]
    assert [r["strength"] for r in blur] == list(DEFAULT_STRENGTHS["blur"])
    for key, sign in (("psnr", -1), ("ssim", -1), ("vgg", 1)):
        vals = np.array([r[key] for r in blur])
        assert (sign * np.diff(vals) > 0).all(), (key, vals)
    if not lpips_available()[0]:
        assert all(r["lpips"] is None for r in rows)
    with pytest.raises(ValueError, match="extractor"):
        metric_response(img, metrics=("vgg",))


def test_response_curves_normalise_per_metric_with_orientation():
    rows = [{"kind": "blur", "level": 1, "strength": 1.0, "psnr": 30.0, "niqe": 5.0},
            {"kind": "blur", "level": 2, "strength": 2.0, "psnr": 20.0, "niqe": 6.0},
            {"kind": "noise", "level": 1, "strength": 5.0, "psnr": 25.0, "niqe": 9.0},
            {"kind": "noise", "level": 1, "strength": 5.0, "psnr": 35.0, "niqe": 7.0},  # 2nd image
            {"kind": "noise", "level": 2, "strength": 9.0, "psnr": 10.0, "niqe": None}]
    c = response_curves(rows, ["psnr", "niqe", "lpips"])
    assert "lpips" not in c
    # psnr means: blur 30, 20; noise 30, 10 -> best 30 (0), worst 10 (1)
    assert c["psnr"]["blur"]["normalised"] == pytest.approx([0.0, 0.5])
    assert c["psnr"]["noise"]["value"] == pytest.approx([30.0, 10.0])
    assert c["psnr"]["noise"]["normalised"] == pytest.approx([0.0, 1.0])
    # niqe (lower is better): blur 5, 6; noise 8 -> best 5, worst 8
    assert c["niqe"]["blur"]["normalised"] == pytest.approx([0.0, 1 / 3])
    assert c["niqe"]["noise"]["level"] == [1] and c["niqe"]["noise"]["normalised"] == [1.0]


def test_long_loops_show_progress_and_progress_changes_no_result(capsys):
    vgg = VGGFeatures(["conv1_2"], weights="random")
    target = _smooth_image(16)
    quiet = invert_features(vgg, target, "conv1_2", steps=5, seed=0)
    shown = invert_features(vgg, target, "conv1_2", steps=5, seed=0, progress=True)
    assert "inverting conv1_2" in capsys.readouterr().err
    assert shown.feature_loss == quiet.feature_loss
    img = _photo_crop(32)
    rows = metric_response({"a": img}, kinds=("blur",), metrics=("psnr",), progress=True)
    assert "metric sweep" in capsys.readouterr().err and len(rows) == 5
