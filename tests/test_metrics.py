"""PSNR / SSIM / LPIPS / evaluate: hand-computed values, scikit-image agreement, offline LPIPS."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srlib import metrics
from srlib.errors import BackboneUnavailableError, DatasetError
from srlib.metrics import evaluate, evaluate_many, lpips, lpips_available, psnr, rgb_to_y, ssim

Y_SPAN = (65.481 + 128.553 + 24.966) / 255  # Y change per unit change of a gray RGB value (= 219/255)


def _rand_img(seed, h=24, w=20):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gray(v, h=16, w=16):
    return np.full((h, w, 3), v, dtype=np.uint8)


def test_rgb_to_y_bt601_values():
    px = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(px)[0], [16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966], atol=1e-10)
    # float [0,1] and tensor (channel-first) inputs give the same unrounded numbers
    np.testing.assert_allclose(rgb_to_y(px / 255.0), rgb_to_y(px), atol=1e-10)
    t = torch.from_numpy(px / 255.0).permute(2, 0, 1)
    np.testing.assert_allclose(rgb_to_y(t).numpy(), rgb_to_y(px), atol=1e-10)
    t8 = torch.from_numpy(px).permute(2, 0, 1)  # uint8 tensor: 0-255
    np.testing.assert_allclose(rgb_to_y(t8).double().numpy(), rgb_to_y(px), atol=1e-4)
    assert rgb_to_y(np.array([[[10, 20, 30]]], dtype=np.uint8))[0, 0] % 1 != 0  # not rounded


def test_psnr_constant_offset_hand_computed():
    a, b = _gray(100), _gray(103)
    dy = 3 * Y_SPAN  # every pixel differs by this on the Y scale
    assert psnr(a, b, 0) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-10)
    assert psnr(a, b, 0, y_channel=False) == pytest.approx(10 * math.log10(255**2 / 9), abs=1e-10)
    assert psnr(a, a, 0) == math.inf


def test_crop_removes_border_differences():
    a = _rand_img(0)
    b = a.copy()
    b[:2] = 0
    b[:, -2:] = 255
    assert np.isfinite(psnr(a, b, 0)) and ssim(a, b, 0) < 1
    assert psnr(a, b, 2) == math.inf
    assert ssim(a, b, 2) == pytest.approx(1.0, abs=1e-12)


def test_psnr_ssim_match_scikit_image_on_y():
    a, b = _rand_img(1, 40, 36), _rand_img(2, 40, 36)
    b = ((a.astype(int) * 3 + b) // 4).astype(np.uint8)  # correlated pair, SSIM far from 0
    ya, yb = rgb_to_y(a)[4:-4, 4:-4], rgb_to_y(b)[4:-4, 4:-4]
    assert psnr(a, b, 4) == pytest.approx(peak_signal_noise_ratio(ya, yb, data_range=255), abs=1e-9)
    # scikit-image pads but averages the map over the same 'valid' interior (crop of 5): exact agreement
    ref = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255)
    assert ssim(a, b, 4) == pytest.approx(ref, abs=1e-9)
    ref_rgb = np.mean([structural_similarity(a[4:-4, 4:-4, c].astype(float), b[4:-4, 4:-4, c].astype(float),
                                             gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                             data_range=255) for c in range(3)])
    assert ssim(a, b, 4, y_channel=False) == pytest.approx(ref_rgb, abs=1e-9)


def test_ssim_of_constant_images_hand_computed():
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ya, yb = 16 + 50 * Y_SPAN, 16 + 90 * Y_SPAN
    expected = (2 * ya * yb + c1) * c2 / ((ya**2 + yb**2 + c1) * c2)  # sigmas are zero
    assert ssim(_gray(50), _gray(90), 0) == pytest.approx(expected, abs=1e-10)
    a, b = _gray(50), _gray(50).copy()
    b[..., 0] = 90  # only red differs: channel means 1, 1 and the red term
    red = (2 * 50 * 90 + c1) / (50**2 + 90**2 + c1)
    assert ssim(a, b, 0, y_channel=False) == pytest.approx((red + 2) / 3, abs=1e-10)
    x = _rand_img(3)
    assert ssim(x, x, 0) == pytest.approx(1.0, abs=1e-12)


def test_tensor_and_uint8_agree_and_batches_give_per_image_values():
    a, b, c = _rand_img(4), _rand_img(5), _rand_img(6)
    ta, tb = (torch.from_numpy(x).permute(2, 0, 1).float() / 255 for x in (a, b))
    assert psnr(ta, tb, 2) == pytest.approx(psnr(a, b, 2), abs=1e-5)
    assert ssim(ta, tb, 2) == pytest.approx(ssim(a, b, 2), abs=1e-6)
    batch_sr, batch_hr = torch.stack([ta, ta]), torch.stack([tb, ta])
    p = psnr(batch_sr, batch_hr, 2)
    assert isinstance(p, np.ndarray) and p.shape == (2,)
    assert p[0] == pytest.approx(psnr(a, b, 2), abs=1e-5) and p[1] == math.inf
    s = ssim(np.stack([a, b]), np.stack([c, b]), 1)
    np.testing.assert_allclose(s, [ssim(a, c, 1), 1.0], atol=1e-12)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\(24, 20, 3\) vs \(20, 24, 3\)"):
        psnr(_rand_img(0), _rand_img(0, 20, 24), 0)
    with pytest.raises(DatasetError, match="clamp"):
        psnr(np.full((8, 8, 3), 2.0), np.zeros((8, 8, 3)), 0)
    with pytest.raises(DatasetError, match="H x W x 3"):
        ssim(np.zeros((16, 16)), np.zeros((16, 16)), 0)
    with pytest.raises(DatasetError, match="crop_border"):
        psnr(_gray(1, 8, 8), _gray(2, 8, 8), 4)
    with pytest.raises(DatasetError, match="11x11"):
        ssim(_gray(1, 12, 12), _gray(2, 12, 12), 1)


# --------------------------------------------------------------------------------------- LPIPS

@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub folder and a clean LPIPS model cache."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    monkeypatch.setattr(metrics, "_LPIPS_MODELS", {})
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def test_lpips_unavailable_names_file_path_and_url(hub):
    ok, reason = lpips_available("alex")
    path = hub / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert not ok and str(path) in reason
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in reason
    with pytest.raises(BackboneUnavailableError, match="alexnet-owt-7be5be79.pth") as err:
        lpips(_rand_img(0, 32, 32), _rand_img(1, 32, 32))
    assert isinstance(err.value, FileNotFoundError)
    out = evaluate(_rand_img(0, 40, 40), _rand_img(1, 40, 40), 4, metrics=("psnr", "ssim", "lpips"))
    assert out["lpips"] is None and out["notes"].startswith("lpips unavailable:")
    assert set(out) == {"psnr_y", "ssim_y", "lpips", "notes"}


def test_lpips_loads_weights_from_hub_cache(hub):
    import torchvision

    torch.manual_seed(0)
    features = {k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith("features.")}
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(features, hub / "checkpoints" / "alexnet-owt-7be5be79.pth")
    assert lpips_available("alex")[0]
    x, y = _rand_img(7, 40, 40), _rand_img(8, 40, 40)
    assert lpips(x, x, device="cpu") == 0.0
    d = lpips(x, y, device="cpu")
    assert d > 0 and d == pytest.approx(lpips(y, x, device="cpu"), rel=1e-6)
    model = metrics._LPIPS_MODELS[("alex", "cpu")]  # built once, cached per (net, device)
    assert torch.equal(model.net.slice3._modules["6"].weight, features["features.6.weight"])
    # the same number as the package's own forward on [-1, 1] inputs
    tx, ty = (torch.from_numpy(v).permute(2, 0, 1)[None].float() / 127.5 - 1 for v in (x, y))
    assert model(tx, ty).item() == pytest.approx(d, rel=1e-6)
    batch = lpips(np.stack([x, y]), np.stack([y, y]), device="cpu")
    np.testing.assert_allclose(batch, [d, 0.0], rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------------ evaluate

def test_evaluate_and_evaluate_many(hub, monkeypatch):
    a, b = _rand_img(9, 40, 40), _rand_img(10, 40, 40)
    one = evaluate(a, b, 4, metrics=("psnr", "ssim"))
    assert one == {"psnr_y": psnr(a, b, 4), "ssim_y": ssim(a, b, 4), "notes": ""}
    many = evaluate_many([(a, b), (a, a[::-1].copy())], 4, metrics=("psnr", "ssim", "lpips"))
    assert many["n"] == 2 and many["lpips"] is None
    assert many["psnr_y"] == pytest.approx((psnr(a, b, 4) + psnr(a, a[::-1].copy(), 4)) / 2)
    assert "lpips unavailable" in many["notes"]
    from srlib.niqe import niqe

    big, small = _rand_img(11, 112, 112), _rand_img(12, 100, 100)
    full = evaluate(big, big, 4)
    assert full["psnr_y"] == math.inf and full["ssim_y"] == pytest.approx(1.0)
    assert full["niqe"] == pytest.approx(niqe(big[4:-4, 4:-4]))  # no reference; same border crop
    assert full["lpips"] is None and "lpips unavailable" in full["notes"]
    part = evaluate(small, small, 4, metrics=("niqe",))  # 92x92 after the crop: no 96x96 patch
    assert part["niqe"] is None and "niqe unavailable" in part["notes"] and "96x96" in part["notes"]
    with pytest.raises(DatasetError, match="unknown metrics"):
        evaluate(a, b, 4, metrics=("psnr", "fid"))


def test_crop_border_true_is_refused_not_taken_as_one():
    from srlib.errors import DatasetError

    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    for fn in (psnr, ssim):
        with pytest.raises(DatasetError, match="crop_border must be a non-negative integer"):
            fn(a, b, True)
        with pytest.raises(DatasetError, match="crop_border"):
            fn(a, b, np.bool_(False))


def test_empty_images_are_a_clear_error():
    from srlib.errors import DatasetError

    for empty in (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 5, 3), np.float32), np.zeros((0, 4, 4, 3), np.uint8),
                  torch.zeros(3, 0, 0), torch.zeros(0, 3, 4, 4)):
        with pytest.raises(DatasetError, match="empty"):
            psnr(empty, empty, 0)
