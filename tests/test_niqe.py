"""NIQE: building blocks against hand-computed values, the model file, and behaviour on photos."""

import io
import math
import time

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.special import gamma

from srlib import niqe as N
from srlib.errors import DatasetError, WeightsError
from srlib.metrics import rgb_to_y


def _test_photos(n=2, side=288):
    """Held-out photos (never in the NIQE fit), centre-cropped to whole 96x96 patches."""
    try:
        from srlib.data import load_images

        images = load_images("photos", "test")
        photos = [images[k] for k in sorted(images)]
    except ImportError:
        import skimage.data

        photos = [skimage.data.astronaut(), skimage.data.chelsea()]
    photos = [p for p in photos if min(p.shape[:2]) >= side][:n]
    out = []
    for p in photos:
        h, w = p.shape[:2]
        out.append(np.ascontiguousarray(p[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]))
    return out


# --------------------------------------------------------------------------- building blocks

def test_gaussian_window_is_matlab_fspecial():
    w = N.gaussian_window()
    assert w.shape == (7, 7) and w.sum() == pytest.approx(1.0)
    assert w[3, 4] / w[3, 3] == pytest.approx(math.exp(-1 / (2 * (7 / 6) ** 2)))
    assert w[0, 0] / w[3, 3] == pytest.approx(math.exp(-18 / (2 * (7 / 6) ** 2)))


def test_half_size_is_matlab_bicubic_antialiased():
    # impulse response: output pixel 2 reads inputs 1..8 with weights 0.5*cubic(0.5*d), d = 3.5..-3.5
    x = np.zeros((1, 16))
    x[0, 6] = 1.0
    cub = lambda t: 1.5 * t**3 - 2.5 * t**2 + 1 if t <= 1 else -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    raw = np.array([0.5 * cub(abs(0.5 * d)) for d in 3.5 - np.arange(8)])
    y = N.half_size(np.repeat(x, 16, 0))[0]
    assert y.shape == (8,)
    assert y[2] == pytest.approx(raw[6 - 1] / raw.sum(), abs=1e-12)  # input 6 sits at d = 2*2+0.5-6 = -1.5
    ramp = np.add.outer(np.arange(20.0), 2 * np.arange(12.0))
    np.testing.assert_allclose(N.half_size(ramp)[2:-2, 2:-2], (np.add.outer(2 * np.arange(10) + 0.5,
                                                                            2 * (2 * np.arange(6) + 0.5)))[2:-2, 2:-2])
    assert N.half_size(np.ones((7, 9))).shape == (4, 5)  # MATLAB output size: ceil(n / 2)


def test_aggd_fit_recovers_known_parameters():
    rng = np.random.default_rng(0)
    n = 200_000
    gauss = rng.normal(0, 3.0, n)  # GGD with alpha 2, beta = sigma * sqrt(2)
    lap = rng.laplace(0, 1.5, n)  # GGD with alpha 1, beta = 1.5
    bl, br = 1.0, 2.5  # AGGD with alpha 2: each side is a half-normal of std beta/sqrt(2), mass ~ beta
    left = rng.random(n) < bl / (bl + br)
    aggd = np.where(left, -np.abs(rng.normal(0, bl / math.sqrt(2), n)), np.abs(rng.normal(0, br / math.sqrt(2), n)))
    alpha, beta_l, beta_r = N.aggd_fit(np.stack([gauss, lap, aggd]))
    np.testing.assert_allclose(alpha, [2, 1, 2], atol=0.05)
    np.testing.assert_allclose(beta_l, [3 * math.sqrt(2), 1.5, bl], rtol=0.03)
    np.testing.assert_allclose(beta_r, [3 * math.sqrt(2), 1.5, br], rtol=0.03)
    # a flat block has no AGGD: NaN, as the reference code
    assert np.isnan(N.aggd_fit(np.zeros((1, 10)))[0][0])
    # one exact grid case: x = +-1 in equal numbers gives the largest ratio, alpha at the grid end (10)
    assert N.aggd_fit(np.array([[-1.0, 1.0] * 8]))[0][0] == pytest.approx(10.0)


def test_block_features_layout_and_eta():
    rng = np.random.default_rng(1)
    blocks = rng.normal(0, 1, (3, 96, 96))
    f = N.block_features(blocks)
    assert f.shape == (3, 18)
    alpha, bl, br = N.aggd_fit(blocks.reshape(3, -1))
    np.testing.assert_allclose(f[:, 0], alpha)
    np.testing.assert_allclose(f[:, 1], (bl + br) / 2)
    # products of independent neighbours are symmetric around 0: eta ~ 0; and Eq. 8 holds exactly
    for k in range(4):
        a, eta, l, r = f[:, 2 + 4 * k:6 + 4 * k].T
        np.testing.assert_allclose(eta, (r - l) * gamma(2 / a) / gamma(1 / a))
        assert np.all(np.abs(eta) < 0.1)
    # vertical neighbours of a vertically smooth block are correlated: positive products, eta > 0
    smooth = np.repeat(rng.normal(0, 1, (1, 1, 96)), 96, axis=1) + rng.normal(0, 0.3, (1, 96, 96))
    f = N.block_features(smooth)[0]
    assert f[7] > 0.5 and f[7] > f[3] + 0.5  # eta of orientation (1, 0) vs (0, 1)


def test_fit_mvg_reproduces_known_gaussian():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, (36, 36))
    cov = a @ a.T / 36 + np.eye(36)
    mu = rng.normal(0, 2, 36)
    x = rng.multivariate_normal(mu, cov, 40_000)
    x_nan = np.vstack([x, np.full((1, 36), np.nan)])
    m, c = N.fit_mvg(x_nan)
    np.testing.assert_allclose(m, mu, atol=0.05)
    np.testing.assert_allclose(c, cov, atol=0.08)
    np.testing.assert_allclose(c, np.cov(x, rowvar=False))  # rows with NaN dropped, N-1 normalisation


def test_niqe_distance_hand_computed():
    mu1, mu2 = np.zeros(36), np.zeros(36)
    mu1[0], mu1[1] = 1.0, 5.0
    cov = np.zeros((36, 36))
    cov[0, 0] = 4.0  # dimension 1 has zero variance: the pseudo-inverse ignores it
    assert N.niqe_distance(mu1, cov, mu2, cov) == pytest.approx(0.5)
    assert N.niqe_distance(mu1, 2 * np.eye(36), mu2, 6 * np.eye(36)) == pytest.approx(math.sqrt(26 / 4))


def test_sharpness_selection_keeps_sharp_patches_only():
    rng = np.random.default_rng(3)
    img = 128 + rng.normal(0, 2, (96, 96 * 4))  # four patches: two busy, two calm
    img[:, :192] = 128 + rng.normal(0, 40, (96, 192))
    img = np.clip(img, 0, 255)
    assert N.fit_niqe_model([img, img], sharpness_threshold=0.75).info["n_patches"] == 4
    assert N.fit_niqe_model([img, img], sharpness_threshold=0.0).info["n_patches"] == 8
    _, sharp = N.patch_features(img)
    assert sharp[2] < 0.75 * sharp.max() < sharp[0]


# ------------------------------------------------------------------------- model file, inputs

def test_model_files_round_trip_and_official_layouts(tmp_path):
    rng = np.random.default_rng(4)
    mu, a = rng.normal(0, 1, 36), rng.normal(0, 1, (36, 36))
    model = N.NIQEModel(mu, a @ a.T)
    m1 = N.load_niqe_model(N.save_niqe_model(model, tmp_path / "mine.npz", source="test"))
    np.testing.assert_array_equal(m1.mu, model.mu)
    assert m1.info["source"] == "test" and m1.patch_size == 96
    np.savez(tmp_path / "basicsr.npz", mu_pris_param=mu[None], cov_pris_param=a @ a.T, gaussian_window=np.ones((7, 7)))
    from scipy.io import savemat

    savemat(tmp_path / "modelparameters.mat", {"mu_prisparam": mu[None], "cov_prisparam": a @ a.T})
    for f in ("basicsr.npz", "modelparameters.mat"):
        np.testing.assert_allclose(N.load_niqe_model(tmp_path / f).cov, a @ a.T)
    np.savez(tmp_path / "bad.npz", weights=np.zeros(3))
    with pytest.raises(WeightsError, match=r"\['weights'\]"):
        N.load_niqe_model(tmp_path / "bad.npz")
    with pytest.raises(WeightsError, match="does not exist"):
        N.load_niqe_model(tmp_path / "missing.npz")


def test_bundled_model_is_there_and_sane():
    m = N.load_niqe_model()
    assert m.mu.shape == (36,) and np.allclose(m.cov, m.cov.T)
    assert np.linalg.eigvalsh(m.cov).min() > -1e-8
    assert m.info["n_patches"] > 100


def test_input_kinds_agree_and_small_images_fail_clearly():
    x = _test_photos(1, 192)[0]
    s = N.niqe(x)
    assert N.niqe(rgb_to_y(x)) == pytest.approx(s)  # 2-D input: Y on the 0-255 scale
    t = torch.from_numpy(x).permute(2, 0, 1).float() / 255
    np.testing.assert_allclose(N.niqe(torch.stack([t, t.flip(-1)])), [s, N.niqe(x[:, ::-1])], rtol=1e-5)
    assert N.niqe(np.pad(x, ((4, 4), (4, 4), (0, 0))), crop_border=4) == pytest.approx(s)
    with pytest.raises(DatasetError, match="96x96"):
        N.niqe(x[:100, :90])
    with pytest.raises(DatasetError, match="96x96"):
        N.niqe(x[:100, :100], crop_border=4)


def _jpeg(img, quality):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.array(Image.open(buf).convert("RGB"))


def test_distortions_raise_niqe_and_rotation_barely_changes_it():
    rng = np.random.default_rng(5)
    for x in _test_photos(2):
        clean = N.niqe(x)
        blur = np.clip(gaussian_filter(x.astype(float), (2, 2, 0)), 0, 255).round().astype(np.uint8)
        noise = np.clip(x + rng.normal(0, 15, x.shape), 0, 255).round().astype(np.uint8)
        for name, bad in (("blur", blur), ("noise", noise), ("jpeg", _jpeg(x, 10))):
            assert N.niqe(bad) > clean + 1.0, name
        assert abs(N.niqe(np.rot90(x)) - clean) < 0.05 * clean


def test_speed_256():
    x = np.random.default_rng(6).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    N.niqe(x)
    t = time.perf_counter()
    N.niqe(x)
    assert time.perf_counter() - t < 1.0


def test_refit_command_writes_a_loadable_model(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    fake = {f"img{i}": rng.integers(0, 256, (192, 192, 3), dtype=np.uint8) for i in range(3)}
    monkeypatch.setattr(N, "pristine_images", lambda: fake)
    out = tmp_path / "m.npz"
    N.main(["--refit", "--out", str(out)])
    m = N.load_niqe_model(out)
    assert m.info["images"] == "img0,img1,img2" and m.info["n_patches"] >= 3
    x = fake["img0"]
    assert N.niqe(x, model=out) == pytest.approx(N.niqe(x, model=m))


# --------------------------------------------------------------------------- rounding (MATLAB / BasicSR)

def test_round_y_hand_values():
    np.testing.assert_array_equal(N.round_y(np.array([16.4, 16.6, 234.49, 100.0])), [16, 17, 234, 100])


def test_niqe_rounds_luminance_like_matlab_and_basicsr():
    """A dither of +-0.4 grey levels disappears when Y is rounded, so the score must be exactly that
    of the integer image; without rounding the dither is texture and moves the score."""
    y_int = np.round(rgb_to_y(_test_photos(1, 192)[0]))
    checker = np.where((np.indices(y_int.shape).sum(0) % 2) == 0, 0.4, -0.4)
    dithered = y_int + checker  # round(dithered) == y_int exactly
    np.testing.assert_array_equal(N.round_y(dithered), y_int)
    base = N.niqe(y_int)
    assert N.niqe(dithered) == base
    assert abs(N.niqe(dithered, round_to_integers=False) - base) > 1e-3
    # RGB input goes through the same rounding: identical to feeding the rounded Y by hand
    x = _test_photos(1, 192)[0]
    assert N.niqe(x) == N.niqe(np.round(rgb_to_y(x)))
    assert N.niqe(x) != N.niqe(rgb_to_y(x), round_to_integers=False)


def _official_niqe_files():
    """BasicSR's official parameters and its baboon test image, where a BasicSR checkout is given
    (``$SRLIB_BASICSR_DIR``) or an installed ``basicsr`` package ships the parameters."""
    import os
    from pathlib import Path

    roots = [Path(os.environ["SRLIB_BASICSR_DIR"])] if os.environ.get("SRLIB_BASICSR_DIR") else []
    try:
        import basicsr  # noqa: F401  (only to locate its files; never imported by srlib)

        roots.append(Path(basicsr.__file__).resolve().parents[1])
    except Exception:
        pass
    for root in roots:
        params = root / "basicsr" / "metrics" / "niqe_pris_params.npz"
        for image in (root / "test_scripts" / "data" / "baboon.png", root / "tests" / "data" / "baboon.png"):
            if params.is_file() and image.is_file():  # the image moved from tests/ to test_scripts/
                return params, image
    return None


def test_official_parameters_reproduce_matlab_on_baboon():
    """MATLAB's NIQE of BasicSR's baboon.png (test_scripts/data/, formerly tests/data/) is
    5.72957338 (MATLAB R2021a, quoted in BasicSR's basicsr/metrics/niqe.py). The parameter file and image are BasicSR's (its license) and are not
    shipped with srlib; set SRLIB_BASICSR_DIR to a BasicSR checkout to run this check."""
    found = _official_niqe_files()
    if found is None:
        pytest.skip("BasicSR's niqe_pris_params.npz and baboon.png not present "
                    "(set SRLIB_BASICSR_DIR to a BasicSR checkout)")
    from srlib.io import read_image

    params, image = found
    assert N.niqe(read_image(image), model=params) == pytest.approx(5.72957338, abs=1e-3)


def test_crop_border_must_be_an_integer_not_a_bool():
    x = _test_photos(1, 192)[0]
    with pytest.raises(DatasetError, match="crop_border"):
        N.niqe(x, crop_border=True)
    with pytest.raises(DatasetError, match="empty"):
        N.niqe(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(DatasetError, match="empty"):
        N.niqe(np.zeros((0, 0)))
