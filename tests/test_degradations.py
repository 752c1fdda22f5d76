"""Tests of srlib.degradations: MATLAB bicubic resize, blur kernels, noise, JPEG, pipelines.

Reference values are computed by hand from the papers' formulas (Keys' cubic with a = -0.5,
MATLAB's contributions, Real-ESRGAN's kernels), or by an independent slow implementation.
"""

import math

import numpy as np
import pytest
import scipy.ndimage
import torch

from srlib import degradations as D
from srlib.errors import SrlibError


# ----------------------------------------------------------------------------- imresize

def _naive_matlab_resize_1d(v: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """Slow, direct reading of MATLAB's imresize along one axis (reference for the tests)."""
    n = len(v)
    aa = scale < 1
    out = np.zeros(out_len)
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        acc = wsum = 0.0
        for j in range(math.floor(u - 10 / min(scale, 1)), math.ceil(u + 10 / min(scale, 1)) + 1):
            d = u - j
            t = abs(d * scale) if aa else abs(d)
            if t <= 1:
                wgt = 1.5 * t**3 - 2.5 * t**2 + 1
            elif t <= 2:
                wgt = -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
            else:
                continue
            jj = (j - 1) % (2 * n)  # symmetric border, edge repeated
            jj = jj if jj < n else 2 * n - 1 - jj
            acc += wgt * v[jj]
            wsum += wgt
        out[x - 1] = acc / wsum
    return out


def test_cubic_kernel_hand_values():
    xs = np.array([0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, -0.25, -1.75])
    want = [1, 0.8671875, 0.5625, 0.2265625, 0, -0.0703125, -0.0625, -0.0234375, 0, 0, 0.8671875, -0.0234375]
    np.testing.assert_allclose(D.cubic(xs), want, atol=1e-15)


def test_contributions_halving_and_doubling_hand_weights():
    # x1/2 with antialiasing: kernel widened to 8 taps, 0.5 * cubic(0.5 d) at d = +-0.5 ... +-3.5
    w, idx = D.resize_contributions(16, 8, 0.5)
    assert w.shape == (8, 8)
    np.testing.assert_allclose(w[3], np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 256, atol=1e-15)
    np.testing.assert_array_equal(idx[3], np.arange(3, 11))  # output 4 (1-based) centred at 7.5
    np.testing.assert_allclose(w.sum(axis=1), 1, atol=1e-14)
    # symmetric border: 1-based taps -2..5 of the first output fold to 0-based 2,1,0,0,1,2,3,4
    np.testing.assert_array_equal(idx[0], [2, 1, 0, 0, 1, 2, 3, 4])
    # x2: output centre maps to input 0.75 + k/2; taps cubic(1.75), cubic(0.75), cubic(0.25), cubic(1.25)
    w, idx = D.resize_contributions(8, 16, 2.0)
    np.testing.assert_allclose(w[4], np.array([-6, 58, 222, -18]) / 256, atol=1e-15)
    np.testing.assert_array_equal(idx[4], [0, 1, 2, 3])  # output 5 (1-based) sits at input 2.75


def test_imresize_matches_naive_reference_both_paths():
    rng = np.random.default_rng(0)
    img = rng.random((9, 11))
    for scale in (0.25, 0.3, 0.5, 1 / 3, 0.77, 1.5, 2, 3):
        oh, ow = math.ceil(9 * scale), math.ceil(11 * scale)
        tmp = np.stack([_naive_matlab_resize_1d(img[:, j], oh, scale) for j in range(11)], axis=1)
        ref = np.stack([_naive_matlab_resize_1d(tmp[i], ow, scale) for i in range(oh)], axis=0)
        np.testing.assert_allclose(D.imresize(img, scale), ref, atol=1e-12, err_msg=f"numpy {scale}")
        out_t = D.imresize(torch.from_numpy(img), scale)
        np.testing.assert_allclose(out_t.numpy(), ref, atol=1e-12, err_msg=f"torch {scale}")


@pytest.mark.parametrize("shape,scale,want", [((5, 7), 0.25, (2, 2)), ((5, 7), 0.3, (2, 3)),
                                              ((5, 7), 3, (15, 21)), ((17, 23), 0.5, (9, 12)),
                                              ((2, 3), 0.1, (1, 1))])
def test_output_size_is_ceil(shape, scale, want):
    assert D.imresize(np.zeros(shape + (3,), np.float32), scale).shape == want + (3,)
    assert tuple(D.imresize(torch.zeros((3,) + shape), scale).shape) == (3,) + want


def test_output_shape_argument_and_per_axis_scale():
    img = np.random.default_rng(1).random((8, 12, 3))
    a = D.imresize(img, output_shape=(4, 3))
    b = D.imresize(img, (0.5, 0.25))
    assert a.shape == (4, 3, 3)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_constant_stays_constant():
    for scale in (0.25, 0.3, 2, 4):
        img = np.full((10, 13, 3), 0.37)
        np.testing.assert_allclose(D.imresize(img, scale), 0.37, atol=1e-12)
        np.testing.assert_allclose(D.imresize(torch.full((2, 3, 10, 13), 0.37), scale).numpy(), 0.37, atol=1e-6)
        u8 = np.full((10, 13, 3), 200, np.uint8)
        assert np.all(D.imresize(u8, scale) == 200)


def test_linear_ramp_reproduced_away_from_borders():
    rows, cols = np.mgrid[1:21, 1:25].astype(np.float64)  # 1-based coordinates
    img = 0.3 * rows - 0.2 * cols + 1.0
    for scale in (2.0, 4.0, 0.5):
        out = D.imresize(img, scale)
        oy, ox = np.mgrid[1:out.shape[0] + 1, 1:out.shape[1] + 1].astype(np.float64)
        uy, ux = oy / scale + 0.5 * (1 - 1 / scale), ox / scale + 0.5 * (1 - 1 / scale)
        want = 0.3 * uy - 0.2 * ux + 1.0
        m = int(3 * max(scale, 1 / scale))  # skip pixels whose taps touch the mirrored border
        np.testing.assert_allclose(out[m:-m, m:-m], want[m:-m, m:-m], atol=1e-12)


def test_halving_a_block_image_is_a_five_tap_filter_of_block_values():
    # A 2x2-block-constant image shrunk by exactly 1/2: the taps -3 | -9, 29 | 111, 111 | 29, -9 | -3
    # (/256) group by block, so each axis sees the block filter [-3, 20, 222, 20, -3] / 256.
    rng = np.random.default_rng(2)
    blocks = rng.random((10, 12))
    img = np.kron(blocks, np.ones((2, 2)))
    out = D.imresize(img, 0.5)
    f = np.array([-3, 20, 222, 20, -3]) / 256
    want = scipy.ndimage.correlate1d(scipy.ndimage.correlate1d(blocks, f, axis=0), f, axis=1)
    np.testing.assert_allclose(out[2:-2, 2:-2], want[2:-2, 2:-2], atol=1e-12)
    # ... so block values that vary linearly come back exactly
    lin = np.add.outer(np.arange(10) * 0.1, np.arange(12) * 0.05)
    out = D.imresize(np.kron(lin, np.ones((2, 2))), 0.5)
    np.testing.assert_allclose(out[2:-2, 2:-2], lin[2:-2, 2:-2], atol=1e-12)


def test_numpy_torch_batch_and_dtypes_agree():
    rng = np.random.default_rng(3)
    imgs = rng.random((2, 12, 10, 3)).astype(np.float32)
    batch = torch.from_numpy(imgs).permute(0, 3, 1, 2)
    out_b = D.imresize(batch, 0.25)
    assert out_b.dtype == torch.float32 and out_b.shape == (2, 3, 3, 3)
    for n in range(2):
        out_np = D.imresize(imgs[n], 0.25)
        assert out_np.dtype == np.float32
        np.testing.assert_allclose(out_b[n].permute(1, 2, 0).numpy(), out_np, atol=1e-6)
        np.testing.assert_allclose(D.imresize(batch[n], 0.25).numpy(), out_b[n].numpy(), atol=1e-6)
        # 2-D numpy (one channel) == that channel of the colour result
        np.testing.assert_allclose(D.imresize(imgs[n][..., 1], 0.25), out_np[..., 1], atol=1e-6)
    assert D.imresize(imgs[0].astype(np.float64), 2).dtype == np.float64


def test_float_not_clamped_uint8_rounded_like_matlab():
    img = np.zeros((8, 8))
    img[:, 4:] = 1.0  # a step overshoots with the cubic kernel
    out = D.imresize(img, 2)
    assert out.max() > 1.0 and out.min() < 0.0
    u8 = (img * 255).astype(np.uint8)
    out8 = D.imresize(u8, 2)
    assert out8.dtype == np.uint8
    np.testing.assert_array_equal(out8, np.clip(np.floor(out * 255 + 0.5), 0, 255))
    t8 = D.imresize(torch.from_numpy(u8), 2)
    assert t8.dtype == torch.uint8
    np.testing.assert_array_equal(t8.numpy(), out8)


def test_imresize_gradient_flows():
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    D.imresize(x, 0.5).sum().backward()
    # every output row/column of weights sums to 1, so the total gradient equals #outputs
    assert x.grad is not None and abs(float(x.grad.sum()) - 3 * 4 * 4) < 1e-4


def test_imresize_bad_input_errors():
    img = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(D.DegradationError, match="exactly one"):
        D.imresize(img)
    with pytest.raises(D.DegradationError, match="exactly one"):
        D.imresize(img, 0.5, output_shape=(2, 2))
    with pytest.raises(D.DegradationError, match="positive"):
        D.imresize(img, -1)
    with pytest.raises(D.DegradationError, match="dtype"):
        D.imresize(img.astype(np.int32), 0.5)
    with pytest.raises(D.DegradationError, match="shape"):
        D.imresize(np.zeros(5), 0.5)
    with pytest.raises(ValueError):  # DegradationError is a ValueError and an SrlibError
        D.imresize(torch.zeros(1, 1, 1, 1, 1), 0.5)
    assert issubclass(D.DegradationError, SrlibError)


def test_shift_image_integer_is_roll_and_subpixel_is_cubic():
    rng = np.random.default_rng(4)
    img = (rng.random((9, 11, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(D.shift_image(img, 1, 2), np.roll(img, (1, 2), axis=(0, 1)))
    np.testing.assert_array_equal(D.shift_image(img, -3, 0), np.roll(img, -3, axis=0))
    ramp = np.tile(np.arange(16, dtype=np.float64), (4, 1))
    out = D.shift_image(ramp, 0, 0.5)  # a linear ramp is reproduced exactly by the cubic kernel
    np.testing.assert_allclose(out[:, 3:-3], ramp[:, 3:-3] - 0.5, atol=1e-12)


# ----------------------------------------------------------------------------- kernels

def _all_kernels():
    return [D.gaussian_kernel(11, 1.5), D.gaussian_kernel(11, 2.0, 0.7, 0.6),
            D.generalized_gaussian_kernel(9, 1.2, 2.0, -0.4, 0.6),
            D.generalized_gaussian_kernel(9, 1.2, None, 0.0, 3.0),
            D.plateau_kernel(13, 1.0, 2.5, 1.1, 1.5), D.plateau_kernel(7, 1.3, beta=2.0),
            D.sinc_kernel(15, math.pi / 3), D.sinc_kernel(7, 2.0, pad_to=21)]


def test_kernels_sum_to_one_odd_and_point_symmetric():
    for k in _all_kernels():
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert abs(k.sum() - 1) < 1e-12
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)  # c -> -c leaves c^T S c unchanged


def test_gaussian_hand_values_isotropic_and_rotation():
    g = np.exp(-np.arange(-2, 3) ** 2 / (2 * 1.3**2))
    np.testing.assert_allclose(D.gaussian_kernel(5, 1.3), np.outer(g, g) / np.outer(g, g).sum(), atol=1e-15)
    for theta in (0.0, 0.3, 1.0, -2.5):
        np.testing.assert_allclose(D.gaussian_kernel(9, 1.7, 1.7, theta), D.gaussian_kernel(9, 1.7), atol=1e-14)
    a, b = D.gaussian_kernel(11, 2.5, 0.8, math.pi / 2), D.gaussian_kernel(11, 0.8, 2.5, 0.0)
    np.testing.assert_allclose(a, b, atol=1e-14)
    np.testing.assert_allclose(D.gaussian_kernel(11, 2.5, 0.8, 0.0).T, b, atol=1e-14)
    wide = D.gaussian_kernel(11, 2.5, 0.8, 0.0)
    assert wide[5, 8] > wide[8, 5]  # sigma_x acts along columns (x)


def test_generalized_and_plateau_hand_values():
    np.testing.assert_allclose(D.generalized_gaussian_kernel(7, 1.4, 0.9, 0.3, beta=1.0),
                               D.gaussian_kernel(7, 1.4, 0.9, 0.3), atol=1e-14)
    # plateau, isotropic, k=3: raw values 1 / (1 + (r^2 / s^2)^beta) for r^2 in {0, 1, 2}
    s, beta = 1.2, 1.5
    raw = lambda r2: 1 / (1 + (r2 / s**2) ** beta)  # noqa: E731
    want = np.array([[raw(2), raw(1), raw(2)], [raw(1), raw(0), raw(1)], [raw(2), raw(1), raw(2)]])
    np.testing.assert_allclose(D.plateau_kernel(3, s, beta=beta), want / want.sum(), atol=1e-15)
    # generalized Gaussian, beta = 2: exp(-0.5 (r^2/s^2)^2)
    g = lambda r2: math.exp(-0.5 * (r2 / s**2) ** 2)  # noqa: E731
    want = np.array([[g(2), g(1), g(2)], [g(1), g(0), g(1)], [g(2), g(1), g(2)]])
    np.testing.assert_allclose(D.generalized_gaussian_kernel(3, s, beta=2.0), want / want.sum(), atol=1e-15)


def test_sinc_kernel_is_low_pass():
    omega = math.pi / 2
    k = D.sinc_kernel(21, omega)
    assert k.min() < 0  # ringing lobes
    spec = np.abs(np.fft.fftshift(np.fft.fft2(k, s=(64, 64))))
    f = np.fft.fftshift(np.fft.fftfreq(64)) * 2 * math.pi
    rad = np.hypot(f[None, :], f[:, None])
    passband, stopband = spec[rad < 0.7 * omega].mean(), spec[(rad > 1.4 * omega) & (rad < math.pi)].mean()
    assert passband > 0.9 and stopband < 0.1, (passband, stopband)
    raw_centre = omega**2 / (4 * math.pi)  # value at r = 0 before normalisation
    from scipy.special import j1
    raw_edge = omega * j1(omega * 1.0) / (2 * math.pi * 1.0)
    assert abs(k[10, 11] / k[10, 10] - raw_edge / raw_centre) < 1e-12


def test_random_mixed_kernel_deterministic_and_typed():
    a = D.random_mixed_kernel(np.random.default_rng(5))
    b = D.random_mixed_kernel(np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (21, 21) and abs(a.sum() - 1) < 1e-12
    iso = D.random_mixed_kernel(np.random.default_rng(6), 9, kernel_list=("iso",), kernel_prob=(1,), pad_to=0)
    assert iso.shape == (9, 9)
    np.testing.assert_allclose(iso, iso.T, atol=1e-15)
    sinc = D.random_mixed_kernel(np.random.default_rng(7), 11, sinc_prob=1.0)
    assert sinc.shape == (21, 21) and sinc.min() < 0
    kinds = {D.random_mixed_kernel(np.random.default_rng(s)).min() < 0 for s in range(5)}
    assert kinds == {False}  # Gaussian-family kernels are non-negative
    with pytest.raises(D.DegradationError, match="unknown kernel"):
        D.random_mixed_kernel(0, 7, kernel_list=("box",), kernel_prob=(1,))
    with pytest.raises(D.DegradationError, match="odd"):
        D.gaussian_kernel(8, 1.0)


# ----------------------------------------------------------------------------- filter2d

def test_filter2d_matches_scipy_mirror_and_keeps_constants():
    rng = np.random.default_rng(8)
    img = rng.random((12, 10, 3))
    k = D.gaussian_kernel(5, 1.0, 2.0, 0.4)
    out = D.filter2d(img, k)
    ref = np.stack([scipy.ndimage.correlate(img[..., c], k, mode="mirror") for c in range(3)], axis=2)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    np.testing.assert_allclose(D.filter2d(np.full((6, 7, 3), 0.4), D.sinc_kernel(9, 1.0)), 0.4, atol=1e-12)
    t = torch.from_numpy(img).permute(2, 0, 1).float()
    np.testing.assert_allclose(D.filter2d(t, torch.from_numpy(k)).permute(1, 2, 0).numpy(), ref, atol=1e-5)
    delta = np.zeros((3, 3))
    delta[1, 1] = 1
    np.testing.assert_array_equal(D.filter2d((img * 255).astype(np.uint8), delta), (img * 255).astype(np.uint8))


def test_filter2d_batch_kernels_and_tiny_images():
    rng = np.random.default_rng(9)
    x = torch.rand(2, 3, 8, 9)
    ks = torch.from_numpy(np.stack([D.gaussian_kernel(5, 0.8), D.plateau_kernel(5, 1.5, beta=1.2)]))
    out = D.filter2d(x, ks)
    for n in range(2):
        np.testing.assert_allclose(out[n].numpy(), D.filter2d(x[n], ks[n]).numpy(), atol=1e-6)
    tiny = rng.random((3, 4))  # kernel much larger than the image: reflection repeats
    k = D.gaussian_kernel(21, 3.0)
    ref = scipy.ndimage.correlate(np.pad(tiny, 10, mode="reflect"), k, mode="constant")[10:-10, 10:-10]
    np.testing.assert_allclose(D.filter2d(tiny, k), ref, atol=1e-12)
    # a kernel zero-padded to 21x21 (as Real-ESRGAN stores them) filters exactly like the bare one
    np.testing.assert_array_equal(D.filter2d(tiny, D.sinc_kernel(5, 2.0, pad_to=21)),
                                  D.filter2d(tiny, D.sinc_kernel(5, 2.0)))
    with pytest.raises(D.DegradationError, match="odd"):
        D.filter2d(tiny, np.ones((4, 4)) / 16)


def test_gaussian_blur_default_size():
    img = np.random.default_rng(10).random((16, 16))
    np.testing.assert_allclose(D.gaussian_blur(img, 1.5), D.filter2d(img, D.gaussian_kernel(11, 1.5)), atol=0)


# ----------------------------------------------------------------------------- noise and JPEG

def test_gaussian_noise_std_matches_sigma_on_255_scale():
    img = np.full((128, 128, 3), 0.5, np.float32)
    out = D.gaussian_noise(img, 10.0, np.random.default_rng(11))
    assert out.dtype == np.float32
    assert abs((out - img).std() - 10 / 255) < 0.03 * 10 / 255
    assert abs((out - img).mean()) < 1e-3
    gray = D.gaussian_noise(img, 10.0, np.random.default_rng(11), gray=True)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    np.testing.assert_array_equal(out, D.gaussian_noise(img, 10.0, np.random.default_rng(11)))
    u8 = D.gaussian_noise(np.full((8, 8, 3), 250, np.uint8), 50.0, 0)
    assert u8.dtype == np.uint8 and u8.max() == 255  # clipped, not wrapped


def test_poisson_noise_variance_scales_with_intensity():
    img = np.zeros((96, 96, 3), np.float32)
    img[:, :40] = 0.2
    img[:, 40:80] = 0.8
    img[:, 80:] = (np.arange(96 * 16 * 3).reshape(96, 16, 3) % 200 / 255.0)  # > 128 levels -> V = 256
    out = D.poisson_noise(img, 1.0, np.random.default_rng(12))
    v_lo, v_hi = (out - img)[:, :40].var(), (out - img)[:, 40:80].var()
    np.testing.assert_allclose([v_lo, v_hi], [0.2 / 256, 0.8 / 256], rtol=0.08)
    assert 3.3 < v_hi / v_lo < 4.8
    half = D.poisson_noise(img, 0.5, np.random.default_rng(12))
    np.testing.assert_allclose((half - img)[:, 40:80].var(), v_hi / 4, rtol=0.02)
    gray = D.poisson_noise(img, 1.0, np.random.default_rng(13), gray=True)
    np.testing.assert_allclose((gray - img)[:, :80, 0], (gray - img)[:, :80, 1], atol=1e-6)


def test_jpeg_quality_orders_error():
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx), 0.5 + 0.4 * np.cos(5 * yy), 0.3 + 0.3 * xx * yy], axis=2)
    img[20:28, 10:40] = 0.9  # an edge for ringing
    img = img.astype(np.float32)
    err = {q: np.abs(D.jpeg(img, q) - img).mean() for q in (10, 40, 90, 100)}
    assert err[10] > err[40] > err[90] > err[100]
    assert err[100] < 2.5 / 255
    out = D.jpeg(img, 100)
    assert out.dtype == np.float32 and out.shape == img.shape
    u8 = (img * 255).round().astype(np.uint8)
    assert D.jpeg(u8, 50).dtype == np.uint8
    assert D.jpeg(u8[..., 0], 50).shape == (48, 48)
    with pytest.raises(D.DegradationError, match="quality"):
        D.jpeg(img, 0)


# ----------------------------------------------------------------------------- pipelines

def _hr(h=48, w=40, seed=14):
    yy, xx = np.mgrid[0:h, 0:w] / 8.0
    rng = np.random.default_rng(seed)
    img = np.stack([0.5 + 0.3 * np.sin(xx + yy), 0.5 + 0.3 * np.cos(xx), 0.4 + 0.2 * np.sin(yy)], axis=2)
    return np.clip(img + 0.05 * rng.standard_normal(img.shape), 0, 1).astype(np.float32)


def test_bicubic_degrade_and_modcrop():
    hr = _hr()
    np.testing.assert_array_equal(D.bicubic_degrade(hr, 4), D.imresize(hr, 0.25))
    u8 = (hr * 255).round().astype(np.uint8)
    lr = D.bicubic_degrade(u8, 4)
    assert lr.dtype == np.uint8 and lr.shape == (12, 10, 3)
    with pytest.raises(D.DegradationError, match="modcrop"):
        D.bicubic_degrade(hr[:47], 4)
    assert D.modcrop(hr[:47, :39], 4).shape == (44, 36, 3)
    with pytest.raises(D.DegradationError, match="positive integer"):
        D.bicubic_degrade(hr, 2.5)


def test_blur_noise_jpeg():
    hr = (_hr() * 255).round().astype(np.uint8)
    a = D.blur_noise_jpeg(hr, 4, sigma_blur=1.6, noise_sigma=8.0, jpeg_quality=50, rng=np.random.default_rng(1))
    b = D.blur_noise_jpeg(hr, 4, sigma_blur=1.6, noise_sigma=8.0, jpeg_quality=50, rng=np.random.default_rng(1))
    assert a.dtype == np.uint8 and a.shape == (12, 10, 3)
    np.testing.assert_array_equal(a, b)
    # with noise and JPEG off it is exactly blur then MATLAB bicubic
    f = _hr()
    clean = D.blur_noise_jpeg(f, 4, sigma_blur=1.2, noise_sigma=0, jpeg_quality=None)
    np.testing.assert_allclose(clean, np.clip(D.imresize(D.gaussian_blur(f, 1.2), 0.25), 0, 1), atol=1e-6)


def test_second_order_shape_range_determinism():
    hr = _hr()
    a = D.second_order_degrade(hr, 4, np.random.default_rng(0))
    b = D.second_order_degrade(hr, 4, np.random.default_rng(0))
    c = D.second_order_degrade(hr, 4, np.random.default_rng(1))
    assert a.shape == (12, 10, 3) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1 / 255
    np.testing.assert_allclose(a * 255, np.round(a * 255), atol=1e-4)  # on the 8-bit grid
    assert D.second_order_degrade(hr, 2, 3).shape == (24, 20, 3)
    with pytest.raises(D.DegradationError, match="RGB"):
        D.second_order_degrade(hr[..., 0], 4, 0)


def test_second_order_with_everything_off_is_area_downscale():
    cfg = D.SecondOrderConfig(kernel_list=("iso",), kernel_prob=(1,), sinc_prob=0.0, blur_sigma=(0.05, 0.06),
                              resize_prob=(0, 0, 1), gaussian_noise_prob=1.0, noise_range=(0, 0),
                              jpeg_range=(100, 100), second_blur_prob=0.0, resize_prob2=(0, 0, 1),
                              gaussian_noise_prob2=1.0, noise_range2=(0, 0), jpeg_range2=(100, 100),
                              final_sinc_prob=0.0, resize_modes=("area",))
    hr = np.repeat(_hr()[..., :1], 3, axis=2)  # gray: JPEG's chroma subsampling has nothing to lose
    out = D.second_order_degrade(hr, 4, np.random.default_rng(2), cfg)
    area = hr.reshape(12, 4, 10, 4, 3).mean(axis=(1, 3))
    assert np.abs(out - area).max() < 3.0 / 255  # only two q=100 JPEG passes and 8-bit rounding


def test_hidden_degradation_fixed_and_different_from_bicubic():
    hr = _hr()
    a, b = D.hidden_degradation(hr, 4), D.hidden_degradation(hr, 4)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (12, 10, 3) and a.dtype == np.float32
    bic = np.clip(D.bicubic_degrade(hr, 4), 0, 1)
    diff = np.abs(a - bic).mean()
    assert 2 / 255 < diff < 40 / 255, diff
    u8 = D.hidden_degradation((hr * 255).round().astype(np.uint8), 4)
    assert u8.dtype == np.uint8 and u8.shape == (12, 10, 3)


# ----------------------------------------------------------------------------- Real-ESRGAN: stage 1, USM

def test_stage1_resize_is_the_official_scale_factor_call(monkeypatch):
    """Stage 1 must call F.interpolate(x, scale_factor=s1, mode=mode) as Real-ESRGAN does: with a
    computed ``size`` instead, bilinear/bicubic sample a different grid."""
    real = torch.nn.functional.interpolate
    calls = []

    def spy(x, *args, **kwargs):
        out = real(x, *args, **kwargs)
        calls.append((x.clone(), args, dict(kwargs), out.clone()))
        return out

    monkeypatch.setattr(D.F, "interpolate", spy)
    hr = _hr(60, 52)
    modes, differs = set(), 0
    for seed in range(12):
        calls.clear()
        D.second_order_degrade(hr, 4, np.random.default_rng(seed))
        x, args, kwargs, out = calls[0]  # the first resize of the pipeline is stage 1's
        assert not args and kwargs.get("size") is None, kwargs
        s, mode = kwargs["scale_factor"], kwargs["mode"]
        assert 0.15 <= s <= 1.5
        assert out.shape[-2:] == (math.floor(x.shape[2] * s), math.floor(x.shape[3] * s))
        ref = real(x, scale_factor=s, mode=mode)  # the official call, recomputed independently
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
        modes.add(mode)
        if mode != "area" and s != 1.0:
            by_size = real(x, size=tuple(out.shape[-2:]), mode=mode, align_corners=False)
            differs += bool((by_size - ref).abs().max() > 1e-4)
    assert {"bilinear", "bicubic"} <= modes
    assert differs >= 1  # the two calls do differ, so the test above can fail


def test_poisson_gray_weights_torchvision_vs_bt601():
    assert D.TORCHVISION_GRAY == (0.2989, 0.587, 0.114)
    img = np.full((8, 8, 3), (0.2, 0.6, 0.9), dtype=np.float32)
    a = D.poisson_noise(img, 1.0, np.random.default_rng(3), gray=True)
    b = D.poisson_noise(img, 1.0, np.random.default_rng(3), gray=True, gray_weights=(0.299, 0.587, 0.114))
    np.testing.assert_array_equal(a, b)  # BT.601 is the default
    with pytest.raises(D.DegradationError, match="three"):
        D.poisson_noise(img, 1.0, 0, gray=True, gray_weights=(1, 0))


def test_cv2_gaussian_kernel_sigma_from_size():
    g = D.cv2_gaussian_1d(51)  # sigma 0 -> 0.3 * ((51 - 1) / 2 - 1) + 0.8 = 8.0
    i = np.arange(51) - 25
    want = np.exp(-i**2 / (2 * 8.0**2))
    np.testing.assert_allclose(g, want / want.sum(), rtol=1e-13)
    np.testing.assert_array_equal(D.cv2_gaussian_1d(5), [0.0625, 0.25, 0.375, 0.25, 0.0625])
    np.testing.assert_allclose(D.cv2_gaussian_1d(5, 1.0), np.exp(-np.arange(-2, 3)**2 / 2) /
                               np.exp(-np.arange(-2, 3)**2 / 2).sum(), rtol=1e-13)


def test_usm_sharp_hand_checked_single_bright_pixel():
    """64x64 gray 0.5 with one 0.6 pixel at (32, 32), BasicSR's USMSharp defaults (radius 50 -> 51,
    sigma 8, weight 0.5, threshold 10). With g the 1-D Gaussian (g0 its centre tap):
    blur = 0.5 + 0.1 g_a g_b at offset (a, b); only the bright pixel has 255 |residual| > 10, so
    the soft mask is g_a g_b. Centre: S = 0.6 + 0.5 * 0.1 (1 - g0^2), out = g0^2 S + (1 - g0^2) 0.6;
    elsewhere within 25 px: out = 0.5 - 0.05 (g_a g_b)^2; beyond: 0.5."""
    img = np.full((64, 64), 0.5)
    img[32, 32] = 0.6
    t = np.arange(51) - 25
    g = np.exp(-t**2 / 128.0)
    g /= g.sum()
    m = np.zeros((64, 64))
    m[7:58, 7:58] = np.outer(g, g)  # g_a g_b on the 51 x 51 window around the pixel
    want = 0.5 - 0.05 * m**2
    g0sq = g[25] ** 2
    want[32, 32] = g0sq * (0.6 + 0.05 * (1 - g0sq)) + (1 - g0sq) * 0.6
    out = D.usm_sharp(img)
    np.testing.assert_allclose(out, want, atol=1e-12)
    assert abs(out[32, 32] - 0.6) > 1e-5 and abs(out[32, 33] - 0.5) > 1e-9
    # a 7.65/255 bump is under the threshold: mask 0 everywhere, image unchanged
    low = np.full((64, 64), 0.5)
    low[32, 32] = 0.53
    np.testing.assert_array_equal(D.usm_sharp(low), low)
    # threshold 5 lets it through
    assert D.usm_sharp(low, threshold=5)[32, 32] > 0.53


def test_usm_sharp_kinds_agree_and_even_radius():
    rgb = _hr(40, 36)
    a = D.usm_sharp(rgb)
    assert a.shape == rgb.shape and a.dtype == np.float32
    t = torch.from_numpy(rgb).permute(2, 0, 1)
    torch.testing.assert_close(D.usm_sharp(t), torch.from_numpy(a).permute(2, 0, 1))
    torch.testing.assert_close(D.usm_sharp(t.unsqueeze(0).repeat(2, 1, 1, 1))[1], torch.from_numpy(a).permute(2, 0, 1))
    np.testing.assert_array_equal(D.usm_sharp(rgb, radius=50), D.usm_sharp(rgb, radius=51))
    u8 = (rgb * 255).round().astype(np.uint8)
    assert D.usm_sharp(u8).dtype == np.uint8
    # the sharpened image has more high-frequency energy than the input
    lap = lambda x: np.abs(np.diff(x, axis=0)).mean()
    assert lap(a) > lap(rgb)
    with pytest.raises(D.DegradationError, match="radius"):
        D.usm_sharp(rgb, radius=0)


def test_second_order_usm_hr_and_pair():
    hr = _hr()
    lr, target = D.second_order_pair(hr, 4, np.random.default_rng(5))
    np.testing.assert_array_equal(target, D.usm_sharp(hr))
    np.testing.assert_array_equal(lr, D.second_order_degrade(hr, 4, np.random.default_rng(5), usm_hr=True))
    np.testing.assert_array_equal(lr, D.second_order_degrade(target, 4, np.random.default_rng(5)))
    lr0, target0 = D.second_order_pair(hr, 4, np.random.default_rng(5), usm_hr=False)
    np.testing.assert_array_equal(target0, hr)
    np.testing.assert_array_equal(lr0, D.second_order_degrade(hr, 4, np.random.default_rng(5)))
    assert lr.shape == (12, 10, 3) and target.shape == hr.shape


def test_imresize_cpu_tensors_take_the_fast_numpy_path(monkeypatch):
    """CPU tensors without gradients go through scipy (many times faster than torch's sparse CSR
    products on a CPU) and give the numpy path's result exactly; gradients still use torch."""
    import srlib.degradations as D

    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.random((2, 3, 37, 29))).float()
    x8 = torch.from_numpy(rng.integers(0, 256, (3, 20, 24), dtype=np.uint8))
    want = np.stack([D.imresize(np.ascontiguousarray(x[i].permute(1, 2, 0).numpy()), 0.25) for i in range(2)])
    want8 = D.imresize(np.ascontiguousarray(x8.permute(1, 2, 0).numpy()), output_shape=(7, 9))
    torch_path = D._resize_torch

    def refuse(*a, **k):
        raise AssertionError("the torch sparse path ran for a CPU tensor without gradients")

    monkeypatch.setattr(D, "_resize_torch", refuse)
    out = D.imresize(x, 0.25)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 10, 8) and out.is_contiguous()
    np.testing.assert_array_equal(out.permute(0, 2, 3, 1).numpy(), want)
    out8 = D.imresize(x8, output_shape=(7, 9))
    assert out8.dtype == torch.uint8
    np.testing.assert_array_equal(out8.permute(1, 2, 0).numpy(), want8)
    half = D.imresize(x[0].to(torch.bfloat16), 0.5)
    assert half.dtype == torch.bfloat16 and half.shape == (3, 19, 15)
    with pytest.raises(AssertionError, match="torch sparse path"):  # gradients need torch
        D.imresize(x.clone().requires_grad_(), 0.5)
    monkeypatch.setattr(D, "_resize_torch", torch_path)
    g = x.clone().requires_grad_()
    D.imresize(g, 0.5).sum().backward()
    assert g.grad is not None and torch.isfinite(g.grad).all()
    np.testing.assert_allclose(D.imresize(g.detach(), 0.5).numpy(), D.imresize(g, 0.5).detach().numpy(),
                               atol=1e-5)


# ----------------------------------------------------------------------------- the target domain (camera)

def test_disk_kernel_hand_values():
    """Radius 1: the centre pixel lies inside the circle (area 1); a corner pixel [1/2, 3/2]^2 holds
    c = int_{1/2}^{sqrt(3)/2} (sqrt(1 - x^2) - 1/2) dx = pi/12 - (sqrt(3) - 1)/4; an edge pixel
    (pi - 1 - 4c)/4; divided by the disk's area pi (MATLAB: fspecial('disk', 1))."""
    c = math.pi / 12 - (math.sqrt(3) - 1) / 4
    e = (math.pi - 1 - 4 * c) / 4
    want = np.array([[c, e, c], [e, 1, e], [c, e, c]]) / math.pi
    np.testing.assert_allclose(D.disk_kernel(1.0), want, atol=2e-6)
    np.testing.assert_allclose(want, [[0.0251, 0.1453, 0.0251], [0.1453, 0.3183, 0.1453],
                                      [0.0251, 0.1453, 0.0251]], atol=5e-5)
    # a wide disk: pixels fully inside weigh 1 / (pi r^2); zero outside; padding keeps it centred
    k = D.disk_kernel(5.3)
    assert k.shape == (11, 11)
    assert abs(k[5, 5] * math.pi * 5.3**2 - 1) < 1e-5 and k[0, 0] == 0
    np.testing.assert_allclose(k, k.T, atol=1e-6)  # x integrated numerically, y exactly
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)
    padded = D.disk_kernel(1.0, pad_to=21)
    assert padded.shape == (21, 21)
    np.testing.assert_array_equal(padded[9:12, 9:12], D.disk_kernel(1.0))
    with pytest.raises(D.DegradationError, match="radius"):
        D.disk_kernel(0)


def test_poisson_gaussian_noise_variance_follows_the_signal():
    """Var[z | x] = x / P + (sigma_r / 255)^2 and E[z | x] = x (Foi et al. 2008)."""
    photons, read = 100.0, 5.0
    for level in (0.1, 0.5, 0.8):
        img = np.full((256, 256, 3), level)
        z = D.poisson_gaussian_noise(img, photons, read, np.random.default_rng(1), clip=False)
        want = level / photons + (read / 255) ** 2
        assert abs(z.var() / want - 1) < 0.03, (level, z.var(), want)
        assert abs(z.mean() - level) < 0.002
    u8 = D.poisson_gaussian_noise(np.full((8, 8, 3), 128, np.uint8), 150.0, 4.0, 0)
    assert u8.dtype == np.uint8
    with pytest.raises(D.DegradationError, match="photons"):
        D.poisson_gaussian_noise(img, 0, 1.0, 0)


def test_image_seed_content_hash():
    hr = _hr()
    u8 = np.floor(hr * 255 + 0.5).astype(np.uint8)
    assert D.image_seed(hr) == D.image_seed(u8)  # the same picture as float or uint8
    other = u8.copy()
    other[3, 4, 1] ^= 1
    assert D.image_seed(other) != D.image_seed(u8)
    assert D.image_seed(u8[:, :20]) != D.image_seed(u8[:, 20:]) or not np.array_equal(u8[:, :20], u8[:, 20:])
    assert isinstance(D.image_seed(u8), int) and 0 <= D.image_seed(u8) < 2**64


def _photo_crops(size=400):
    from srlib import data
    photos = {**data.load_images("photos", "train"), **data.load_images("photos", "test")}
    return [photos[k][:size, :size].astype(np.float32) / 255 for k in ("astronaut", "coffee", "china")]


def test_hidden_noise_is_fresh_per_image_and_deterministic():
    """Each image gets its own noise (a camera draws per shot), and each output is reproducible.

    1. Two flat gray images that differ in one corner pixel: with one noise seed for every image
       their noise would be the same (r ~ 1); drawn per image, the residuals are uncorrelated.
    2. Different photo crops: the fluctuation of each output around its own mean over 8 other
       shots (which removes the content-dependent part: clipping, JPEG) is uncorrelated across
       crops. |r| < 0.05 on 100 x 100 x 3 LR pixels (one fixed seed gave r = +0.29; with fresh
       draws r spreads by about 0.01 here, JPEG's 8 x 8 blocks make neighbours correlated)
    """
    flat = np.full((256, 256, 3), 0.5, np.float32)
    flat2 = flat.copy()
    flat2[-1, -1, 2] = 0.6
    r1, r2 = (D.hidden_degradation(f, 4)[:-1, :-1] - 0.5 for f in (flat, flat2))
    assert r1.std() > 4 / 255  # the noise is there (14.7/255 at mid-gray; JPEG 40 smooths it)
    assert abs(np.corrcoef(r1.ravel(), r2.ravel())[0, 1]) < 0.05
    for level in (0.3, 0.7):
        r3 = D.hidden_degradation(np.full_like(flat, level), 4)[:-1, :-1] - level
        assert abs(np.corrcoef(r1.ravel(), r3.ravel())[0, 1]) < 0.05

    crops = _photo_crops()

    def fluctuation(hr):
        shots = np.stack([D.hidden_degradation(hr, 4, seed=k) for k in range(8)])
        return (D.hidden_degradation(hr, 4) - shots.mean(axis=0)).ravel()

    res = [fluctuation(hr) for hr in crops]
    for i in range(len(res)):
        for j in range(i + 1, len(res)):
            corr = np.corrcoef(res[i], res[j])[0, 1]
            assert abs(corr) < 0.05, (i, j, corr)
    hr = crops[0]
    np.testing.assert_array_equal(D.hidden_degradation(hr, 4), D.hidden_degradation(hr.copy(), 4))
    u8 = np.floor(hr * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(D.hidden_degradation(u8, 4),
                                  np.floor(D.hidden_degradation(hr, 4) * 255 + 0.5).astype(np.uint8))
    # an explicit shot number: another, equally reproducible draw of the same picture
    a, b = D.hidden_degradation(hr, 4, seed=1), D.hidden_degradation(hr, 4, seed=2)
    assert np.abs(a - b).mean() > 2 / 255
    np.testing.assert_array_equal(a, D.hidden_degradation(hr, 4, seed=1))
    g = D.hidden_degradation(hr, 4, seed=np.random.default_rng(9))
    np.testing.assert_array_equal(g, D.hidden_degradation(hr, 4, seed=np.random.default_rng(9)))
    for bad in (-1, 1.5, "x", True):
        with pytest.raises(D.DegradationError, match="seed"):
            D.hidden_degradation(hr, 4, seed=bad)


def test_hidden_kernel_is_the_documented_camera():
    p = D.HIDDEN_DEGRADATION
    k4 = D.hidden_kernel(4)
    assert k4.shape == (p["kernel_size"],) * 2 and abs(k4.sum() - 1) < 1e-12
    np.testing.assert_allclose(k4, k4[::-1, ::-1], atol=1e-15)  # point-symmetric: no shift
    # the disk and the Gaussian convolved: variances add (disk of radius r: r^2 / 4 per axis)
    ax = np.arange(21) - 10
    var_rows = (k4.sum(axis=1) * ax**2).sum()
    g = D.gaussian_kernel(21, p["sigma_x"], p["sigma_y"], p["theta"])
    d = D.disk_kernel(p["defocus_radius"], pad_to=21)
    want = (g.sum(axis=1) * ax**2).sum() + (d.sum(axis=1) * ax**2).sum()
    assert abs(var_rows / want - 1) < 0.02, (var_rows, want)
    assert D.hidden_kernel(2).max() > k4.max()  # half the blur at x2
