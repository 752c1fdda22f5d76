"""How low-resolution images are made: resizing, blur, noise, JPEG, and whole degradation models.

Every SR paper trains and tests on LR images made from HR images by some degradation. This
module holds the ones the course uses:

1. ``imresize``: MATLAB's ``imresize(img, scale, 'bicubic')``, the resize behind the "bicubic"
   benchmarks (Set5, DIV2K, ...). Reproducing it exactly matters: a different resize shifts PSNR
   by tenths of a dB, enough to change a table's ranking.
2. Blur kernels of Real-ESRGAN (Wang et al., "Real-ESRGAN: Training Real-World Blind
   Super-Resolution with Pure Synthetic Data", ICCVW 2021, Sec. 3.1 and 3.3): Gaussian
   (isotropic, anisotropic), generalized Gaussian, plateau, and the 2-D sinc; the defocus disk;
   ``filter2d`` applies them.
3. Noise (Gaussian, Poisson, camera Poisson-Gaussian) and JPEG compression; ``usm_sharp``, the
   unsharp masking Real-ESRGAN applies to its HR targets.
4. Degradation models: ``bicubic_degrade`` (the course's "synthetic" domain), ``blur_noise_jpeg``
   (the classical model y = JPEG((x * k) down_s + n), Real-ESRGAN Eq. 1),
   ``second_order_degrade`` / ``second_order_pair`` (Real-ESRGAN's high-order pipeline, Sec. 3.2)
   and ``hidden_degradation`` (the fixed "real-world" camera of notebook 06).

Conventions: numpy images are H x W x C (or H x W), uint8 in [0, 255] or float in [0, 1]; torch
tensors are (C, H, W) or (N, C, H, W). Randomness always comes from a ``numpy.random.Generator``
passed in (or an int seed), never from global state, so every result is reproducible.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.signal
import scipy.sparse
import scipy.special
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import DegradationError


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _as_rng(rng) -> np.random.Generator:
    """Accept a Generator or an int seed (None means seed 0: deterministic by default)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(0 if rng is None else int(rng))
    raise DegradationError(
        f"rng must be a numpy.random.Generator or an int seed, got {type(rng).__name__}; "
        "make one with numpy.random.default_rng(seed)")


def _check_hwc(img, what: str = "image") -> np.ndarray:
    """A numpy H x W or H x W x C image of dtype uint8 or float, non-empty."""
    if isinstance(img, torch.Tensor):
        raise DegradationError(
            f"{what} must be a numpy array (H x W x C); got a torch tensor. Convert it with "
            "t.permute(1, 2, 0).cpu().numpy()")
    img = np.asarray(img)
    if img.ndim not in (2, 3) or img.size == 0:
        raise DegradationError(f"{what} must be a non-empty H x W or H x W x C array, got shape {img.shape}")
    if img.dtype != np.uint8 and img.dtype.kind != "f":
        raise DegradationError(f"{what} must be uint8 (0-255) or float (0-1), got dtype {img.dtype}")
    return img


def _to_unit_float(img: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]; float stays float (float16 promoted to float32)."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return img.astype(np.float32) if img.dtype == np.float16 else img


def _like_input(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Back to the caller's kind: uint8 (rounded, clipped) or the caller's float dtype."""
    if ref.dtype == np.uint8:
        return np.clip(np.floor(out * 255.0 + 0.5), 0, 255).astype(np.uint8)
    return out.astype(ref.dtype, copy=False)


def _check_scale(scale) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise DegradationError(f"scale must be a positive integer SR factor (2, 3, 4, ...), got {scale!r}")
    return int(scale)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale`` (BasicSR's mod_crop)."""
    img = _check_hwc(img)
    scale = _check_scale(scale)
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise DegradationError(f"image {h}x{w} is smaller than the scale factor {scale}")
    return img[: h - h % scale, : w - w % scale]


def _check_divisible(hr: np.ndarray, scale: int) -> None:
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise DegradationError(
            f"HR size {h}x{w} is not a multiple of scale {scale}, so LR x scale would not match HR; "
            f"crop it first with srlib.degradations.modcrop(hr, {scale})")


# --------------------------------------------------------------------------------------------
# 1. MATLAB imresize (bicubic)
# --------------------------------------------------------------------------------------------

def cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (Keys, IEEE Trans. ASSP 29(6), 1981), as MATLAB uses.

    W(x) = 1.5|x|^3 - 2.5|x|^2 + 1 for |x| <= 1, -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 for 1 < |x| <= 2,
    0 otherwise. Works on numpy arrays and floats.
    """
    ax = np.abs(np.asarray(x, dtype=np.float64))
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    """MATLAB's 'symmetric' border: 0-based index i outside [0, n) reflects with the edge repeated
    (-1 -> 0, -2 -> 1, n -> n-1), periodically, so any index maps inside even for tiny images."""
    period = 2 * n
    i = np.mod(idx, period)
    return np.where(i < n, i, period - 1 - i)


@lru_cache(maxsize=256)
def _contributions_cached(in_len: int, out_len: int, scale: float, antialiasing: bool):
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        kernel_width = kernel_width / scale  # widen the kernel: interpolate and low-pass at once
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates, as in MATLAB
    # Inverse mapping: output pixel centre x maps to input coordinate u (1-based); the pixel
    # edges 0.5 and 0.5 + scale in output space map to 0.5 and 1.5 in input space.
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2  # one spare tap on each side; zero columns dropped below
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices, (out_len, taps)
    dist = u[:, None] - idx
    if scale < 1 and antialiasing:
        weights = scale * cubic(scale * dist)
    else:
        weights = cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)  # MATLAB drops tap columns that are zero for every output
    weights, idx = weights[:, keep], idx[:, keep]
    idx = _mirror(idx.astype(np.int64) - 1, in_len)
    weights.setflags(write=False)
    idx.setflags(write=False)
    return weights, idx


def resize_contributions(in_len: int, out_len: int, scale: float, antialiasing: bool = True):
    """Weights and input indices of MATLAB's bicubic resize along one axis.

    Returns ``(weights, indices)``, both of shape (out_len, taps): output pixel ``i`` is
    ``sum_t weights[i, t] * input[indices[i, t]]``. Indices are 0-based and already folded by the
    symmetric (mirror) border rule; each row of weights sums to 1. This is MATLAB's
    ``contributions`` (and BasicSR's ``calculate_weights_indices``), computed in float64.
    """
    if in_len < 1 or out_len < 1:
        raise DegradationError(f"lengths must be >= 1, got in_len={in_len}, out_len={out_len}")
    if not (scale > 0 and math.isfinite(scale)):
        raise DegradationError(f"scale must be a positive finite number, got {scale!r}")
    return _contributions_cached(int(in_len), int(out_len), float(scale), bool(antialiasing))


def _resize_plan(h: int, w: int, scale, output_shape):
    """Per-axis (scale, out_len), as MATLAB derives them from a scale or an output size."""
    if (scale is None) == (output_shape is None):
        raise DegradationError("give exactly one of scale (e.g. 0.25) or output_shape=(height, width)")
    if output_shape is not None:
        if len(output_shape) != 2 or any(int(s) < 1 for s in output_shape):
            raise DegradationError(
                f"output_shape must be (height, width) with positive sides, got {output_shape!r}")
        oh, ow = int(output_shape[0]), int(output_shape[1])
        return (oh / h, oh), (ow / w, ow)
    pair = (scale, scale) if np.isscalar(scale) else tuple(np.ravel(scale))
    if len(pair) != 2:
        raise DegradationError(f"scale must be a number or a (scale_h, scale_w) pair, got {scale!r}")
    sh, sw = pair
    for s in (sh, sw):
        if not (isinstance(s, (int, float, np.integer, np.floating)) and math.isfinite(s) and s > 0):
            raise DegradationError(f"scale must be a positive finite number (or a pair), got {scale!r}")
    oh, ow = math.ceil(sh * h), math.ceil(sw * w)  # MATLAB: output size = ceil(scale * input size)
    return (float(sh), oh), (float(sw), ow)


@lru_cache(maxsize=256)
def _resize_matrix_numpy(n_in: int, n_out: int, scale: float, antialiasing: bool, dtype: str):
    """The contributions as a scipy CSR (n_out, n_in) matrix, built once per size and scale:
    building it costs far more than applying it to a training patch (measured: ~20 ms vs ~1 ms
    for a 96 -> 24 patch), and training resizes patches of a handful of sizes."""
    wts, idx = resize_contributions(n_in, n_out, scale, antialiasing)
    rows = np.repeat(np.arange(n_out), wts.shape[1])
    mat = scipy.sparse.csr_matrix((wts.ravel().astype(dtype), (rows, idx.ravel())), shape=(n_out, n_in))
    mat.sum_duplicates()
    return mat


def _resize_numpy(img: np.ndarray, plans, antialiasing: bool) -> np.ndarray:
    """Apply the per-axis contributions as sparse matrices (cost proportional to the taps)."""
    work = np.float32 if img.dtype == np.float32 else np.float64
    out = img.astype(work, copy=False)
    order = sorted(range(2), key=lambda a: plans[a][0])  # MATLAB: smallest scale first
    for axis in order:
        (s, n_out), n_in = plans[axis], out.shape[axis]
        mat = _resize_matrix_numpy(n_in, n_out, float(s), bool(antialiasing), np.dtype(work).name)
        moved = np.moveaxis(out, axis, 0)
        res = mat @ moved.reshape(n_in, -1)
        out = np.moveaxis(np.asarray(res, dtype=work).reshape((n_out,) + moved.shape[1:]), 0, axis)
    return out


@lru_cache(maxsize=64)
def _resize_matrix_torch(n_in: int, n_out: int, scale: float, antialiasing: bool, dtype, device,
                         transpose: bool):
    """The contributions as a sparse CSR (n_out, n_in) matrix (or its transpose); mirrored
    duplicates are summed."""
    wts, idx = resize_contributions(n_in, n_out, scale, antialiasing)
    rows = np.repeat(np.arange(n_out), wts.shape[1])
    pairs, size = np.stack([rows, idx.ravel()]), (n_out, n_in)
    if transpose:
        pairs, size = pairs[::-1].copy(), (n_in, n_out)
    values = torch.tensor(wts.ravel(), dtype=torch.float64)
    coo = torch.sparse_coo_tensor(torch.from_numpy(pairs), values, size, check_invariants=True)
    with warnings.catch_warnings():  # CSR support is flagged "beta" by torch; it is exact here
        warnings.simplefilter("ignore", UserWarning)
        return coo.coalesce().to_sparse_csr().to(dtype=dtype, device=device)


def _resize_torch(x: torch.Tensor, plans, antialiasing: bool) -> torch.Tensor:
    """x: (..., H, W) float tensor. Each axis is one sparse matrix product (cost ~ taps x pixels).

    Sparse CSR products exist on CPU and CUDA; other devices compute on the CPU and move back.
    """
    if x.device.type not in ("cpu", "cuda"):
        return _resize_torch(x.cpu(), plans, antialiasing).to(x.device)
    order = sorted(range(2), key=lambda a: plans[a][0])  # MATLAB: smallest scale first
    for axis in order:
        (s, n_out), n_in = plans[axis], x.shape[x.dim() - 2 + axis]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if axis == 0:  # rows: A @ X with H moved to the front
                mat = _resize_matrix_torch(n_in, n_out, s, antialiasing, x.dtype, x.device, False)
                moved = x.movedim(-2, 0)
                res = mat @ moved.reshape(n_in, -1)
                x = res.reshape((n_out,) + tuple(moved.shape[1:])).movedim(0, -2)
            elif x.device.type == "cpu":  # columns: X @ A^T keeps W last, no big transpose needed
                mat_t = _resize_matrix_torch(n_in, n_out, s, antialiasing, x.dtype, x.device, True)
                res = x.reshape(-1, n_in) @ mat_t
                x = res.reshape(tuple(x.shape[:-1]) + (n_out,))
            else:  # CUDA: the sparse x dense form, (A @ X^T)^T; transposes are cheap there
                mat = _resize_matrix_torch(n_in, n_out, s, antialiasing, x.dtype, x.device, False)
                res = mat @ x.reshape(-1, n_in).T
                x = res.T.reshape(tuple(x.shape[:-1]) + (n_out,))
    return x.contiguous()


def _imresize_cpu_tensor(img: torch.Tensor, plans, antialiasing: bool) -> torch.Tensor:
    """A CPU tensor through the numpy path: scipy's sparse products are many times faster than
    torch's sparse CSR ones on a CPU (which the torch path needs for CUDA and for gradients).
    Same arithmetic (float32 stays float32, everything else float64), same rounding for uint8."""
    lead, (h, w) = tuple(img.shape[:-2]), tuple(img.shape[-2:])
    x = img.detach()
    if x.dtype not in (torch.uint8, torch.float32, torch.float64):
        x = x.float()  # float16 / bfloat16: computed in float32, as the torch path does
    hwc = np.moveaxis(x.reshape(-1, h, w).numpy(), 0, -1)  # (H, W, B) view, no copy
    out = _resize_numpy(hwc, plans, antialiasing)
    if img.dtype == torch.uint8:
        out = np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    res = torch.from_numpy(np.ascontiguousarray(np.moveaxis(out, -1, 0)))
    return res.reshape(lead + tuple(res.shape[-2:])).to(img.dtype)


def imresize(img, scale=None, *, output_shape=None, antialiasing: bool = True):
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')`` (and BasicSR's ``imresize``).

    The cubic kernel has a = -0.5 (:func:`cubic`); when shrinking, the kernel is stretched by
    1/scale and scaled by ``scale`` (anti-aliasing); the output size is ``ceil(scale * size)``;
    pixels beyond the border are mirrored with the edge repeated ('symmetric'). Each axis is a
    sparse linear map (see :func:`resize_contributions`), applied to the smaller-scale axis first.

    Args:
        img: numpy H x W or H x W x C, or torch (C, H, W) / (N, C, H, W) (a 2-D tensor is H x W).
            uint8, float32 or float64 (torch float16/bfloat16 are computed in float32).
        scale: a factor (0.25 shrinks by 4) or a (scale_h, scale_w) pair.
        output_shape: (height, width) instead of ``scale``; the per-axis scale is then out/in.
        antialiasing: MATLAB's 'Antialiasing' option (on by default for bicubic).

    CPU tensors without gradients take the numpy path (scipy sparse products, the fastest on a
    CPU); CUDA tensors and tensors that need gradients take the torch path (sparse CSR products,
    differentiable). Both compute the same sums.

    Returns:
        The same kind of array/tensor. Float input gives float output of the same dtype, NOT
        clamped (bicubic overshoots at edges). uint8 input is computed in float64 and returned
        rounded (half away from zero) and clipped to [0, 255], as MATLAB does.
    """
    if isinstance(img, torch.Tensor):
        if img.dim() not in (2, 3, 4) or img.numel() == 0:
            raise DegradationError(
                f"tensor must be (H, W), (C, H, W) or (N, C, H, W), got shape {tuple(img.shape)}")
        if not (img.dtype == torch.uint8 or img.is_floating_point()):
            raise DegradationError(f"tensor dtype must be uint8 or floating point, got {img.dtype}")
        plans = _resize_plan(img.shape[-2], img.shape[-1], scale, output_shape)
        if img.device.type == "cpu" and not (img.requires_grad and torch.is_grad_enabled()):
            return _imresize_cpu_tensor(img, plans, antialiasing)
        if img.dtype == torch.uint8:
            out = _resize_torch(img.to(torch.float64), plans, antialiasing)
            return torch.floor(out + 0.5).clamp_(0, 255).to(torch.uint8)
        if img.dtype in (torch.float32, torch.float64):
            return _resize_torch(img, plans, antialiasing)
        return _resize_torch(img.float(), plans, antialiasing).to(img.dtype)
    arr = _check_hwc(img)
    plans = _resize_plan(arr.shape[0], arr.shape[1], scale, output_shape)
    out = np.ascontiguousarray(_resize_numpy(arr, plans, antialiasing))
    if arr.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out.astype(arr.dtype, copy=False)


def shift_image(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Translate by (dy, dx) pixels (rows, columns; like ``np.roll``) with circular wrap-around.

    Sub-pixel shifts resample with the same cubic kernel as :func:`imresize` (a = -0.5): output
    pixel i reads the input at position i - d. Integer shifts are exact (the kernel is 1 at 0 and
    0 at other integers), so ``shift_image(img, 1, 1) == np.roll(img, (1, 1), axis=(0, 1))``.
    uint8 in -> uint8 out (rounded, clipped); float in -> same float dtype.
    """
    arr = _check_hwc(img)
    out = arr.astype(np.float64)
    for axis, d in ((0, float(dy)), (1, float(dx))):
        n = out.shape[axis]
        base = math.floor(d)
        frac = d - base
        acc = np.zeros_like(out)
        for t in (-1, 0, 1, 2):  # input pixel i - base - t lies at distance t - frac from i - d
            wgt = float(cubic(t - frac))
            if wgt == 0.0:
                continue
            src = (np.arange(n) - base - t) % n
            acc += wgt * np.take(out, src, axis=axis)
        out = acc
    if arr.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out.astype(arr.dtype)


# --------------------------------------------------------------------------------------------
# 2. Blur kernels (Real-ESRGAN, Sec. 3.1 and 3.3) and 2-D filtering
# --------------------------------------------------------------------------------------------

def _check_kernel_size(kernel_size: int) -> int:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)) \
            or kernel_size < 1 or kernel_size % 2 == 0:
        raise DegradationError(
            f"kernel_size must be a positive odd integer (7, 9, ..., 21), got {kernel_size!r}")
    return int(kernel_size)


def _quadratic_form(kernel_size: int, sigma_x: float, sigma_y: float | None, theta: float) -> np.ndarray:
    """Q = c^T Sigma^-1 c on the kernel grid, c = (x, y) from the centre (x: column, y: row).

    Sigma = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T (Real-ESRGAN Sec. 3.1, "Blur");
    sigma_y None means isotropic (sigma_y = sigma_x, theta irrelevant).
    """
    k = _check_kernel_size(kernel_size)
    sigma_y = sigma_x if sigma_y is None else sigma_y
    if not (sigma_x > 0 and sigma_y > 0):
        raise DegradationError(f"blur sigmas must be > 0, got sigma_x={sigma_x}, sigma_y={sigma_y}")
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cov = rot @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rot.T
    inv = np.linalg.inv(cov)
    ax = np.arange(k, dtype=np.float64) - k // 2
    xx, yy = np.meshgrid(ax, ax)  # xx varies along columns, yy along rows
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return (kernel / kernel.sum()).astype(np.float64)


def gaussian_kernel(kernel_size: int, sigma_x: float, sigma_y: float | None = None,
                    theta: float = 0.0) -> np.ndarray:
    """Bivariate Gaussian k(c) ~ exp(-1/2 c^T Sigma^-1 c) (Real-ESRGAN Sec. 3.1), normalised to sum 1.

    Isotropic when ``sigma_y`` is None; otherwise anisotropic with standard deviations
    ``sigma_x`` and ``sigma_y`` along axes rotated by ``theta`` radians.
    """
    return _normalised(np.exp(-0.5 * _quadratic_form(kernel_size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(kernel_size: int, sigma_x: float, sigma_y: float | None = None,
                                theta: float = 0.0, beta: float = 1.0) -> np.ndarray:
    """Generalized Gaussian k(c) ~ exp(-1/2 (c^T Sigma^-1 c)^beta) (Real-ESRGAN Sec. 3.1).

    beta = 1 is the Gaussian; beta < 1 has a sharper peak and heavier tails, beta > 1 a flatter top.
    """
    if not beta > 0:
        raise DegradationError(f"beta must be > 0, got {beta}")
    return _normalised(np.exp(-0.5 * np.power(_quadratic_form(kernel_size, sigma_x, sigma_y, theta), beta)))


def plateau_kernel(kernel_size: int, sigma_x: float, sigma_y: float | None = None,
                   theta: float = 0.0, beta: float = 1.0) -> np.ndarray:
    """Plateau-shaped kernel k(c) ~ 1 / (1 + (c^T Sigma^-1 c)^beta) (Real-ESRGAN Sec. 3.1)."""
    if not beta > 0:
        raise DegradationError(f"beta must be > 0, got {beta}")
    return _normalised(1.0 / (1.0 + np.power(_quadratic_form(kernel_size, sigma_x, sigma_y, theta), beta)))


def sinc_kernel(kernel_size: int, omega_c: float, pad_to: int = 0) -> np.ndarray:
    """2-D sinc: the ideal circular low-pass filter with cutoff ``omega_c`` (radians, pi = Nyquist).

    k(i, j) = omega_c / (2 pi r) * J1(omega_c r), r = distance from the centre, with the limit
    omega_c^2 / (4 pi) at r = 0 (Real-ESRGAN Sec. 3.3); normalised to sum 1, optionally zero-padded
    to ``pad_to`` (odd). It imitates ringing and overshoot artefacts.
    """
    k = _check_kernel_size(kernel_size)
    if not 0 < omega_c <= math.pi:
        raise DegradationError(f"omega_c must be in (0, pi], got {omega_c}")
    ax = np.arange(k, dtype=np.float64) - k // 2
    r = np.hypot(ax[None, :], ax[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = omega_c * scipy.special.j1(omega_c * r) / (2.0 * math.pi * r)
    kernel[k // 2, k // 2] = omega_c ** 2 / (4.0 * math.pi)
    kernel = _normalised(kernel)
    if pad_to:
        _check_kernel_size(pad_to)
        if pad_to > k:
            p = (pad_to - k) // 2
            kernel = np.pad(kernel, p)
    return kernel


REAL_ESRGAN_KERNELS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
REAL_ESRGAN_KERNEL_PROB = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
REAL_ESRGAN_KERNEL_SIZES = tuple(range(7, 22, 2))


def _draw_beta(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Real-ESRGAN's beta draw: with prob. 1/2 from [lo, 1], else from [1, hi] (when lo <= 1 <= hi)."""
    if lo <= 1.0 <= hi:
        return float(rng.uniform(lo, 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, hi))
    return float(rng.uniform(lo, hi))


def random_mixed_kernel(rng, kernel_size: int | None = None, *,
                        kernel_list=REAL_ESRGAN_KERNELS, kernel_prob=REAL_ESRGAN_KERNEL_PROB,
                        sigma_range=(0.2, 3.0), rotation_range=(-math.pi, math.pi),
                        betag_range=(0.5, 4.0), betap_range=(1.0, 2.0), sinc_prob: float = 0.0,
                        pad_to: int = 21) -> np.ndarray:
    """Draw one blur kernel the way Real-ESRGAN's data pipeline does (defaults: its first stage).

    Why mixed kernels: a generalist must cover many camera blurs, and sinc kernels add the ringing
    and overshoot seen in sharpened or compressed images (Real-ESRGAN Sec. 3.1 and 3.3).

    The size is drawn from {7, 9, ..., 21} unless given. With probability ``sinc_prob`` the
    kernel is a 2-D sinc with omega_c ~ U[pi/3, pi] (size < 13) or U[pi/5, pi]; otherwise its
    type is drawn from ``kernel_list`` with ``kernel_prob``: Gaussian, generalized Gaussian
    (beta from ``betag_range``) or plateau (beta from ``betap_range``), isotropic or anisotropic
    (sigma_x, sigma_y ~ U[sigma_range], theta ~ U[rotation_range]). Zero-padded to ``pad_to``.
    """
    rng = _as_rng(rng)
    k = int(rng.choice(REAL_ESRGAN_KERNEL_SIZES)) if kernel_size is None else _check_kernel_size(kernel_size)
    if rng.uniform() < sinc_prob:
        omega = rng.uniform(math.pi / 3, math.pi) if k < 13 else rng.uniform(math.pi / 5, math.pi)
        return sinc_kernel(k, float(omega), pad_to=pad_to)
    if len(kernel_list) != len(kernel_prob) or not kernel_list:
        raise DegradationError("kernel_list and kernel_prob must be non-empty and of equal length")
    unknown = set(kernel_list) - set(REAL_ESRGAN_KERNELS)
    if unknown:
        raise DegradationError(f"unknown kernel types {sorted(unknown)}; known: {REAL_ESRGAN_KERNELS}")
    prob = np.asarray(kernel_prob, dtype=np.float64)
    kind = kernel_list[int(rng.choice(len(kernel_list), p=prob / prob.sum()))]
    sigma_x = float(rng.uniform(*sigma_range))
    if kind.endswith("aniso"):
        sigma_y, theta = float(rng.uniform(*sigma_range)), float(rng.uniform(*rotation_range))
    else:
        sigma_y, theta = None, 0.0
    if kind.startswith("generalized"):
        kernel = generalized_gaussian_kernel(k, sigma_x, sigma_y, theta, _draw_beta(rng, *betag_range))
    elif kind.startswith("plateau"):
        kernel = plateau_kernel(k, sigma_x, sigma_y, theta, _draw_beta(rng, *betap_range))
    else:
        kernel = gaussian_kernel(k, sigma_x, sigma_y, theta)
    if pad_to and pad_to > k:
        kernel = np.pad(kernel, (pad_to - k) // 2)
    return kernel


def _reflect_index(n_pad: int, n: int, device) -> torch.Tensor:
    """Indices of reflect padding (edge not repeated: -1 -> 1), valid for pads of any size."""
    i = torch.arange(-n_pad, n + n_pad, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i < n, i, period - i)


def _trim_zero_border(kernel: torch.Tensor) -> torch.Tensor:
    """Drop all-zero outer rings (kernels zero-padded to 21x21): same result, less work."""
    while kernel.shape[-1] > 1:
        ring = (kernel[..., 0, :], kernel[..., -1, :], kernel[..., :, 0], kernel[..., :, -1])
        if any(bool(torch.any(r != 0)) for r in ring):
            break
        kernel = kernel[..., 1:-1, 1:-1]
    return kernel


def _filter2d_torch(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    kernel = _trim_zero_border(kernel)
    n, c, h, w = x.shape
    k = kernel.shape[-1]
    p = k // 2
    x = x.index_select(2, _reflect_index(p, h, x.device)).index_select(3, _reflect_index(p, w, x.device))
    kernel = kernel.to(dtype=x.dtype, device=x.device)
    # depthwise convolution over the N*C planes (faster on CPU than a batch of 1-channel images)
    if kernel.dim() == 2 or kernel.shape[0] == 1:  # one kernel for every image and channel
        weight = kernel.reshape(1, 1, k, k).expand(n * c, 1, k, k)
    else:  # one kernel per image (BasicSR's filter2D with a (N, k, k) kernel)
        weight = kernel.reshape(n, 1, k, k).repeat_interleave(c, dim=0)
    out = F.conv2d(x.reshape(1, n * c, h + 2 * p, w + 2 * p), weight, groups=n * c)
    return out.reshape(n, c, h, w)


def filter2d(img, kernel):
    """Correlate each channel with a 2-D kernel, reflect padding (as ``cv2.filter2D``, BasicSR ``filter2D``).

    Args:
        img: numpy H x W or H x W x C (uint8 or float), or torch (C, H, W) / (N, C, H, W).
        kernel: (k, k) with k odd, numpy or torch; for a torch batch also (N, k, k), one per image.
    Returns the same kind and shape as ``img`` (uint8 rounded and clipped). Reflect padding
    mirrors without repeating the edge pixel and works for any image size.
    """
    kt = torch.as_tensor(np.asarray(kernel) if not isinstance(kernel, torch.Tensor) else kernel)
    if kt.dim() not in (2, 3) or kt.shape[-1] != kt.shape[-2] or kt.shape[-1] % 2 == 0:
        raise DegradationError(f"kernel must be (k, k) or (N, k, k) with odd k, got shape {tuple(kt.shape)}")
    if isinstance(img, torch.Tensor):
        if img.dim() not in (3, 4) or not img.is_floating_point():
            raise DegradationError(
                f"tensor must be float (C, H, W) or (N, C, H, W), got {img.dtype} {tuple(img.shape)}")
        x = img if img.dim() == 4 else img.unsqueeze(0)
        if kt.dim() == 3 and kt.shape[0] not in (1, x.shape[0]):
            raise DegradationError(f"{kt.shape[0]} kernels for a batch of {x.shape[0]} images")
        out = _filter2d_torch(x, kt)
        return out if img.dim() == 4 else out.squeeze(0)
    arr = _check_hwc(img)
    if kt.dim() == 3:
        raise DegradationError("a numpy image takes a single (k, k) kernel")
    work = arr.astype(np.float64) if arr.dtype in (np.uint8, np.float16) else arr
    x = torch.from_numpy(np.ascontiguousarray(work if work.ndim == 3 else work[..., None])).permute(2, 0, 1)
    out = _filter2d_torch(x.unsqueeze(0), kt)[0].permute(1, 2, 0).numpy()
    out = np.ascontiguousarray(out if arr.ndim == 3 else out[..., 0])
    if arr.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out.astype(arr.dtype, copy=False)


def gaussian_blur(img, sigma: float, kernel_size: int | None = None):
    """Isotropic Gaussian blur; the kernel spans +-3 sigma (size 2 ceil(3 sigma) + 1) unless given."""
    if not sigma > 0:
        raise DegradationError(f"sigma must be > 0, got {sigma}")
    k = 2 * math.ceil(3 * sigma) + 1 if kernel_size is None else kernel_size
    return filter2d(img, gaussian_kernel(k, sigma))


def disk_kernel(radius: float, pad_to: int = 0, *, samples: int = 2048) -> np.ndarray:
    """Defocus blur: the pillbox of radius ``radius`` pixels, anti-aliased (as MATLAB's
    ``fspecial('disk', radius)``), normalised to sum 1, optionally zero-padded to ``pad_to`` (odd).

    Geometric optics images an out-of-focus point as a uniform disk (the circle of confusion).
    Pixel (i, j) gets the area of its unit square [j - 1/2, j + 1/2] x [i - 1/2, i + 1/2] (centre
    at 0) inside the circle x^2 + y^2 <= radius^2, integrated exactly along y and with a
    ``samples``-point midpoint rule along x; the areas add up to pi radius^2 before normalising.
    Size 2 ceil(radius + 1/2) - 1: every pixel that overlaps the disk.
    """
    if not (radius > 0 and math.isfinite(radius)):
        raise DegradationError(f"disk radius must be a positive number of pixels, got {radius!r}")
    half = math.ceil(radius + 0.5) - 1
    n = 2 * half + 1
    # midpoints of `samples` slices per pixel column, over [-half - 1/2, half + 1/2]
    xs = -half - 0.5 + (np.arange(n * samples, dtype=np.float64) + 0.5) / samples
    s = np.sqrt(np.maximum(radius * radius - xs * xs, 0.0))  # chord half-length at each x
    rows = np.arange(n, dtype=np.float64)[:, None] - half
    chord = np.clip(np.minimum(rows + 0.5, s[None, :]) - np.maximum(rows - 0.5, -s[None, :]), 0.0, None)
    area = chord.reshape(n, n, samples).mean(axis=2)  # (rows, columns), each column 1 px wide
    kernel = _normalised(area)
    if pad_to:
        _check_kernel_size(pad_to)
        if pad_to > n:
            kernel = np.pad(kernel, (pad_to - n) // 2)
    return kernel


# --------------------------------------------------------------------------------------------
# 3. Noise and JPEG
# --------------------------------------------------------------------------------------------

_GRAY = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma, as cv2's RGB->gray
TORCHVISION_GRAY = (0.2989, 0.587, 0.114)
"""torchvision's ``rgb_to_grayscale`` weights, used by BasicSR's ``generate_poisson_noise_pt``."""


def _finish(out: np.ndarray, ref: np.ndarray, clip: bool) -> np.ndarray:
    if clip or ref.dtype == np.uint8:
        out = np.clip(out, 0.0, 1.0)
    return _like_input(out, ref)


def gaussian_noise(img, sigma: float, rng, gray: bool = False, clip: bool = True):
    """Add white Gaussian noise of standard deviation ``sigma`` ON THE 0-255 SCALE (sigma=10 means
    10/255 on a [0, 1] image), as BasicSR/Real-ESRGAN specify it, whatever the input dtype.

    ``gray=True`` draws one noise plane and adds it to every channel (luminance-like noise);
    otherwise each channel gets its own. Float in [0, 1] or uint8 in; same kind out, clipped to
    the valid range (Real-ESRGAN clips) unless ``clip=False`` for float input.
    """
    arr = _check_hwc(img)
    if not sigma >= 0:
        raise DegradationError(f"sigma must be >= 0 (on the 0-255 scale), got {sigma}")
    rng = _as_rng(rng)
    x = _to_unit_float(arr)
    shape = x.shape
    if gray and x.ndim == 3:
        shape = x.shape[:2] + (1,)  # one plane, broadcast over the channels
    noise = (rng.standard_normal(shape) * (sigma / 255.0)).astype(x.dtype)
    return _finish(x + noise, arr, clip)


def poisson_noise(img, scale: float, rng, gray: bool = False, clip: bool = True, *, gray_weights=None):
    """Add signal-dependent Poisson (shot) noise, as Real-ESRGAN's ``generate_poisson_noise``.

    The image is quantised to 8 bits; with V = 2^ceil(log2(#distinct values)) photon levels, the
    noisy image is Poisson(V x) / V, so the noise variance is x / V: it grows with intensity.
    ``scale`` multiplies the noise (variance scale^2 x / V). ``gray=True`` computes it on the
    luma and adds the same noise to every channel; the luma weights are BT.601's (0.299, 0.587,
    0.114, as cv2 in the numpy version) unless ``gray_weights`` (R, G, B) is given: the torch
    version of the pipeline uses torchvision's ``rgb_to_grayscale`` (:data:`TORCHVISION_GRAY`).
    Same kinds in/out as :func:`gaussian_noise`.
    """
    arr = _check_hwc(img)
    if not scale >= 0:
        raise DegradationError(f"Poisson noise scale must be >= 0, got {scale}")
    rng = _as_rng(rng)
    x = _to_unit_float(arr)
    weights = _GRAY if gray_weights is None else np.asarray(gray_weights, dtype=np.float64)
    if weights.shape != (3,):
        raise DegradationError(f"gray_weights must be three (R, G, B) weights, got {gray_weights!r}")
    src = x @ weights if gray and x.ndim == 3 and x.shape[2] == 3 else x
    q = np.clip(np.round(src * 255.0), 0, 255) / 255.0  # count the levels on the 8-bit grid
    levels = 2.0 ** np.ceil(np.log2(max(len(np.unique(q)), 1)))
    noise = rng.poisson(q * levels) / levels - q
    if gray and x.ndim == 3 and noise.ndim == 2:
        noise = noise[..., None]
    return _finish(x + (noise * scale).astype(x.dtype), arr, clip)


def poisson_gaussian_noise(img, photons_at_white: float, read_sigma: float, rng, clip: bool = True):
    """Camera sensor noise, the Poisson-Gaussian model of Foi et al., "Practical Poissonian-Gaussian
    noise modeling and fitting for single-image raw-data", IEEE TIP 17(10), 2008
    (https://doi.org/10.1109/TIP.2008.2001399): z = Poisson(P x) / P + n, n ~ N(0, sigma_r^2).

    Shot noise comes from counting photons: a pixel at level x collects P x of them on average
    (P = ``photons_at_white``, the count at x = 1), so its variance is x / P and grows with the
    signal; read noise (``read_sigma`` on the 0-255 scale) is signal independent. In total
    Var[z | x] = x / P + (read_sigma / 255)^2, drawn independently per pixel and channel.
    Same kinds in/out as :func:`gaussian_noise` (float: clipped to [0, 1] unless ``clip=False``).
    """
    arr = _check_hwc(img)
    if not (photons_at_white > 0 and math.isfinite(photons_at_white)):
        raise DegradationError(f"photons_at_white must be a positive count, got {photons_at_white!r}")
    if not read_sigma >= 0:
        raise DegradationError(f"read_sigma must be >= 0 (on the 0-255 scale), got {read_sigma}")
    rng = _as_rng(rng)
    x = _to_unit_float(arr)
    shot = rng.poisson(np.clip(x, 0.0, None).astype(np.float64) * photons_at_white) / photons_at_white
    read = rng.standard_normal(x.shape) * (read_sigma / 255.0)
    return _finish((shot + read).astype(x.dtype), arr, clip)


def jpeg(img, quality: float):
    """Compress and decode with JPEG through Pillow at ``quality`` (1-100, rounded to an int).

    Float input in [0, 1] is clipped and rounded to 8 bits first (as ``cv2.imencode`` does in
    Real-ESRGAN) and returned as float32 in [0, 1] (float64 stays float64); uint8 in -> uint8 out.
    Pillow's default 4:2:0 chroma subsampling is used for colour images, like OpenCV's.
    """
    arr = _check_hwc(img)
    if not 1 <= quality <= 100:
        raise DegradationError(f"JPEG quality must be in [1, 100], got {quality}")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3):
        raise DegradationError(f"JPEG needs 1 or 3 channels, got {arr.shape[2]}")
    u8 = arr if arr.dtype == np.uint8 else np.clip(np.floor(arr * 255.0 + 0.5), 0, 255).astype(np.uint8)
    squeeze = u8.ndim == 3 and u8.shape[2] == 1
    buf = io.BytesIO()
    Image.fromarray(u8[..., 0] if squeeze else u8).save(buf, format="JPEG", quality=int(round(quality)))
    dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    dec = dec[..., None] if squeeze else dec
    if arr.dtype == np.uint8:
        return dec.copy()
    return (dec.astype(np.float32) / 255.0).astype(np.float64 if arr.dtype == np.float64 else np.float32)


# --------------------------------------------------------------------------------------------
# 4. Classical degradation models
# --------------------------------------------------------------------------------------------

def bicubic_degrade(hr, scale: int):
    """The "synthetic" domain of the course and of most SR benchmarks: MATLAB bicubic downscale by
    ``scale`` (:func:`imresize` with 1/scale). uint8 in -> uint8 out (rounded, as MATLAB);
    float in -> float out (not clamped). HR sides must be multiples of ``scale`` (see :func:`modcrop`).
    """
    hr = _check_hwc(hr, "hr")
    scale = _check_scale(scale)
    _check_divisible(hr, scale)
    return imresize(hr, 1.0 / scale)


def blur_noise_jpeg(hr, scale: int, *, sigma_blur: float = 1.6, noise_sigma: float = 8.0,
                    jpeg_quality: float | None = 50, rng=None):
    """The classical degradation y = JPEG((x conv k_sigma) downscaled by s + n) (notebook 00).

    Isotropic Gaussian blur (``sigma_blur`` in HR pixels, 0 = none) -> MATLAB bicubic downscale
    by ``scale`` -> white Gaussian noise (``noise_sigma`` on the 0-255 scale, 0 = none, clipped)
    -> JPEG at ``jpeg_quality`` (None = none). uint8 in -> uint8 out; float [0, 1] in -> float out.
    """
    hr = _check_hwc(hr, "hr")
    scale = _check_scale(scale)
    _check_divisible(hr, scale)
    rng = _as_rng(rng)
    x = _to_unit_float(hr).astype(np.float32)
    if sigma_blur:
        x = gaussian_blur(x, sigma_blur)
    x = imresize(x, 1.0 / scale)
    x = gaussian_noise(x, noise_sigma, rng) if noise_sigma else np.clip(x, 0.0, 1.0)
    if jpeg_quality is not None:
        x = jpeg(x, jpeg_quality)
    return _like_input(x, hr)


# --------------------------------------------------------------------------------------------
# Unsharp masking of the HR target (Real-ESRGAN trains on a sharpened ground truth)
# --------------------------------------------------------------------------------------------

# cv2.getGaussianKernel's fixed tables for ksize <= 7 when sigma <= 0 (OpenCV, imgproc/smooth)
_CV2_SMALL_GAUSSIANS = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
}


def cv2_gaussian_1d(ksize: int, sigma: float = 0.0) -> np.ndarray:
    """The 1-D Gaussian of OpenCV's ``getGaussianKernel(ksize, sigma)``, normalised to sum 1.

    g_i ~ exp(-(i - (ksize - 1) / 2)^2 / (2 sigma^2)), i = 0 .. ksize - 1. A ``sigma <= 0`` is
    derived from the size, sigma = 0.3 ((ksize - 1) / 2 - 1) + 0.8 (8.0 for ksize 51), except that
    sizes 1, 3, 5 and 7 then use OpenCV's fixed binomial-like tables.
    """
    k = _check_kernel_size(ksize)
    if sigma <= 0:
        if k in _CV2_SMALL_GAUSSIANS:
            return np.asarray(_CV2_SMALL_GAUSSIANS[k], dtype=np.float64)
        sigma = 0.3 * ((k - 1) * 0.5 - 1.0) + 0.8
    x = np.arange(k, dtype=np.float64) - (k - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _separable_filter(x: torch.Tensor, k1d: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) correlated with the outer product k1d k1d^T, reflect padding as :func:`filter2d`;
    two 1-D passes (2k instead of k^2 products per pixel)."""
    n, c, h, w = x.shape
    k = k1d.numel()
    p = k // 2
    x = x.index_select(2, _reflect_index(p, h, x.device)).index_select(3, _reflect_index(p, w, x.device))
    k1d = k1d.to(dtype=x.dtype, device=x.device)
    planes = x.reshape(1, n * c, h + 2 * p, w + 2 * p)
    planes = F.conv2d(planes, k1d.reshape(1, 1, k, 1).expand(n * c, 1, k, 1), groups=n * c)
    planes = F.conv2d(planes, k1d.reshape(1, 1, 1, k).expand(n * c, 1, 1, k), groups=n * c)
    return planes.reshape(n, c, h, w)


USM_DEFAULTS = {"weight": 0.5, "radius": 50, "threshold": 10.0, "sigma": 0.0}
"""BasicSR's ``USMSharp`` defaults, used by Real-ESRGAN's trainer for ``gt_usm``."""


def usm_sharp(img, weight: float = 0.5, radius: int = 50, threshold: float = 10.0, sigma: float = 0.0):
    """Unsharp masking with a soft edge mask: BasicSR's ``USMSharp``, which Real-ESRGAN applies to
    every HR image before degrading it and uses as the target of its L1 and perceptual losses
    (``gt_usm`` in its ``RealESRGANModel``; the x4plus options train L1 and perceptual losses
    against it and the GAN against the plain HR), for sharper outputs.

    With G the Gaussian of :func:`cv2_gaussian_1d` (size ``radius``, made odd: 50 -> 51; sigma 0
    -> 8.0) applied separably with reflect padding:

        B = G * I,   R = I - B,   M = 1[255 |R| > threshold],   M_s = G * M,
        S = clip(I + weight R, 0, 1),   out = M_s S + (1 - M_s) I.

    Pixels far from any edge (|R| at most ``threshold`` on the 0-255 scale) stay untouched;
    near edges the sharpened image is blended in through the blurred mask M_s.

    Args:
        img: numpy H x W x C / H x W (float in [0, 1] or uint8), or a float torch tensor
            (C, H, W) / (N, C, H, W) on any device.
        weight, radius, threshold, sigma: as BasicSR (defaults 0.5, 50, 10, 0).
    Returns the same kind and shape (uint8 rounded and clipped; float not clipped beyond what
    the formula does).
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 1:
        raise DegradationError(f"radius must be a positive integer kernel size, got {radius!r}")
    radius = int(radius) + (1 - int(radius) % 2)  # even -> next odd, as BasicSR
    k1d = torch.from_numpy(cv2_gaussian_1d(radius, sigma))
    if isinstance(img, torch.Tensor):
        if img.dim() not in (3, 4) or not img.is_floating_point():
            raise DegradationError(
                f"tensor must be float (C, H, W) or (N, C, H, W) in [0, 1], got {img.dtype} {tuple(img.shape)}")
        x = img if img.dim() == 4 else img.unsqueeze(0)
        blur = _separable_filter(x, k1d)
        residual = x - blur
        mask = (residual.abs() * 255 > threshold).to(x.dtype)
        soft = _separable_filter(mask, k1d)
        sharp = (x + weight * residual).clamp(0, 1)
        out = soft * sharp + (1 - soft) * x
        return out if img.dim() == 4 else out.squeeze(0)
    arr = _check_hwc(img)
    x = _to_unit_float(arr)
    t = torch.from_numpy(np.ascontiguousarray(x if x.ndim == 3 else x[..., None])).permute(2, 0, 1)
    out = usm_sharp(t, weight, radius, threshold, sigma).permute(1, 2, 0).numpy()
    out = np.ascontiguousarray(out if arr.ndim == 3 else out[..., 0])
    return _like_input(out, arr)


# --------------------------------------------------------------------------------------------
# 5. Real-ESRGAN second-order degradation (Wang et al., ICCVW 2021, Sec. 3.1-3.3)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SecondOrderConfig:
    """Probabilities and ranges of Real-ESRGAN's pipeline; defaults are its x4plus training
    options (``train_realesrgan_x4plus.yml``). Fields ending in 2 are the second stage.

    resize_prob: probabilities of (up, down, keep); noise sigma on the 0-255 scale; JPEG quality
    drawn uniformly in jpeg_range; final_sinc_prob: chance of the last sinc filter.
    """

    kernel_list: tuple = REAL_ESRGAN_KERNELS
    kernel_prob: tuple = REAL_ESRGAN_KERNEL_PROB
    sinc_prob: float = 0.1
    blur_sigma: tuple = (0.2, 3.0)
    betag_range: tuple = (0.5, 4.0)
    betap_range: tuple = (1.0, 2.0)
    resize_prob: tuple = (0.2, 0.7, 0.1)
    resize_range: tuple = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple = (1.0, 30.0)
    poisson_scale_range: tuple = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple = (30.0, 95.0)

    second_blur_prob: float = 0.8
    kernel_list2: tuple = REAL_ESRGAN_KERNELS
    kernel_prob2: tuple = REAL_ESRGAN_KERNEL_PROB
    sinc_prob2: float = 0.1
    blur_sigma2: tuple = (0.2, 1.5)
    betag_range2: tuple = (0.5, 4.0)
    betap_range2: tuple = (1.0, 2.0)
    resize_prob2: tuple = (0.3, 0.4, 0.3)
    resize_range2: tuple = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple = (1.0, 25.0)
    poisson_scale_range2: tuple = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple = (30.0, 95.0)

    final_sinc_prob: float = 0.8
    resize_modes: tuple = ("area", "bilinear", "bicubic")


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy()


def _nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)


def _interpolate(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def _resize_by_factor(x: torch.Tensor, factor: float, mode: str) -> torch.Tensor:
    """Stage 1's random resize exactly as the official call, ``F.interpolate(x, scale_factor=factor,
    mode=mode)``: output side floor(side x factor), and bilinear/bicubic sample at input coordinate
    (i + 0.5) / factor - 0.5 (the factor itself, not the ratio of the rounded sizes). Only when the
    output would be empty (a side shorter than 1 / factor) is the size clamped to 1 pixel."""
    if min(math.floor(x.shape[2] * factor), math.floor(x.shape[3] * factor)) < 1:
        return _interpolate(x, (x.shape[2] * factor, x.shape[3] * factor), mode)
    if mode == "area":
        return F.interpolate(x, scale_factor=factor, mode="area")
    return F.interpolate(x, scale_factor=factor, mode=mode, align_corners=False)


def _random_noise(x: np.ndarray, rng: np.random.Generator, p_gauss: float, sigma_range, poisson_range,
                  gray_prob: float) -> np.ndarray:
    if rng.uniform() < p_gauss:
        sigma = rng.uniform(*sigma_range)
        return gaussian_noise(x, sigma, rng, gray=bool(rng.uniform() < gray_prob))
    scale = rng.uniform(*poisson_range)
    return poisson_noise(x, scale, rng, gray=bool(rng.uniform() < gray_prob), gray_weights=TORCHVISION_GRAY)


def _updown(rng: np.random.Generator, probs, value_range) -> float:
    kind = int(rng.choice(3, p=np.asarray(probs, dtype=np.float64) / np.sum(probs)))
    if kind == 0:
        return float(rng.uniform(1.0, value_range[1]))
    if kind == 1:
        return float(rng.uniform(value_range[0], 1.0))
    return 1.0


def second_order_degrade(hr, scale: int, rng, cfg: SecondOrderConfig | None = None, *,
                         usm_hr: bool = False) -> np.ndarray:
    """Real-ESRGAN's second-order degradation (Wang et al., 2021, Sec. 3.2, Fig. 2; sinc Sec. 3.3).

    Each stage is the classical model of Sec. 3.1 (blur, resize, noise, JPEG); applying it twice
    covers far more real-world degradations than one stage does.

    Kernels are drawn first, as Real-ESRGAN's dataset does: k1 (stage 1), k2 (stage 2) and the
    final sinc (or identity). Then, on the HR image (its :func:`usm_sharp` copy if ``usm_hr``):
      stage 1: blur k1 -> resize by the factor s1 (up/down/keep, area/bilinear/bicubic), as the
               official ``F.interpolate(x, scale_factor=s1, mode=mode)`` -> Gaussian or Poisson
               noise (gray or colour; Poisson's gray on torchvision's luma), clipped -> JPEG;
      stage 2: blur k2 with prob. ``second_blur_prob`` -> resize to (H/scale * s2) -> noise,
               clipped -> in random order, either [resize to the LR size + sinc] then JPEG, or
               JPEG then [resize + sinc];
    and finally clip and round to 8 bits. Differences from the official code: JPEG is Pillow's
    (not the differentiable DiffJPEG) and randomness comes from ``rng`` only. Real-ESRGAN's
    trainer always degrades the unsharp-masked HR (``usm_hr=True``); the default degrades the HR
    as given. :func:`second_order_pair` returns the LR with the matching training target.

    Args:
        hr: float H x W x 3 in [0, 1] (uint8 is accepted and converted).
        scale: SR factor; the output is (H // scale) x (W // scale) x 3.
        rng: numpy Generator or int seed; the same draws give the same output.
        cfg: probabilities and ranges, default :class:`SecondOrderConfig` (Real-ESRGAN x4plus).
        usm_hr: degrade ``usm_sharp(hr)`` instead of ``hr``, as the official trainer does.
    Returns: float32 H/scale x W/scale x 3 in [0, 1], values on the 8-bit grid.
    """
    hr = _check_hwc(hr, "hr")
    if hr.ndim != 3 or hr.shape[2] != 3:
        raise DegradationError(f"hr must be an RGB H x W x 3 image, got shape {hr.shape}")
    if usm_hr:
        hr = usm_sharp(_to_unit_float(hr).astype(np.float32))
    scale = _check_scale(scale)
    h, w = hr.shape[:2]
    if h < scale or w < scale:
        raise DegradationError(f"hr {h}x{w} is smaller than the scale factor {scale}")
    rng = _as_rng(rng)
    cfg = cfg or SecondOrderConfig()
    modes = cfg.resize_modes

    k1 = random_mixed_kernel(rng, kernel_list=cfg.kernel_list, kernel_prob=cfg.kernel_prob,
                             sigma_range=cfg.blur_sigma, betag_range=cfg.betag_range,
                             betap_range=cfg.betap_range, sinc_prob=cfg.sinc_prob)
    k2 = random_mixed_kernel(rng, kernel_list=cfg.kernel_list2, kernel_prob=cfg.kernel_prob2,
                             sigma_range=cfg.blur_sigma2, betag_range=cfg.betag_range2,
                             betap_range=cfg.betap_range2, sinc_prob=cfg.sinc_prob2)
    if rng.uniform() < cfg.final_sinc_prob:
        k_size = int(rng.choice(REAL_ESRGAN_KERNEL_SIZES))
        k_sinc = sinc_kernel(k_size, float(rng.uniform(math.pi / 3, math.pi)), pad_to=21)
    else:
        k_sinc = None  # identity (Real-ESRGAN convolves with a centred pulse)

    x = _nchw(_to_unit_float(hr))
    # ---- stage 1
    x = filter2d(x, torch.from_numpy(k1))
    s1 = _updown(rng, cfg.resize_prob, cfg.resize_range)
    x = _resize_by_factor(x, s1, modes[int(rng.integers(len(modes)))])
    y = _random_noise(_hwc(x), rng, cfg.gaussian_noise_prob, cfg.noise_range, cfg.poisson_scale_range,
                      cfg.gray_noise_prob)
    y = jpeg(np.clip(y, 0, 1), rng.uniform(*cfg.jpeg_range))
    # ---- stage 2
    x = _nchw(y)
    if rng.uniform() < cfg.second_blur_prob:
        x = filter2d(x, torch.from_numpy(k2))
    s2 = _updown(rng, cfg.resize_prob2, cfg.resize_range2)
    x = _interpolate(x, (h / scale * s2, w / scale * s2), modes[int(rng.integers(len(modes)))])
    y = _random_noise(_hwc(x), rng, cfg.gaussian_noise_prob2, cfg.noise_range2, cfg.poisson_scale_range2,
                      cfg.gray_noise_prob2)

    def resize_back_and_sinc(a: np.ndarray) -> np.ndarray:
        t = _interpolate(_nchw(a), (h // scale, w // scale), modes[int(rng.integers(len(modes)))])
        return _hwc(filter2d(t, torch.from_numpy(k_sinc)) if k_sinc is not None else t)

    if rng.uniform() < 0.5:
        y = resize_back_and_sinc(y)
        y = jpeg(np.clip(y, 0, 1), rng.uniform(*cfg.jpeg_range2))
    else:
        y = jpeg(np.clip(y, 0, 1), rng.uniform(*cfg.jpeg_range2))
        y = resize_back_and_sinc(y)
    return (np.clip(np.round(y * 255.0), 0, 255) / 255.0).astype(np.float32)


def second_order_pair(hr, scale: int, rng, cfg: SecondOrderConfig | None = None, *,
                      usm_hr: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One Real-ESRGAN training pair ``(lr, target)`` from an HR image, as its trainer makes it.

    With ``usm_hr`` (the generalist's default, as Real-ESRGAN x4plus): target = ``usm_sharp(hr)``
    and lr = :func:`second_order_degrade` of that sharpened image; the official options train the
    L1 and perceptual losses against this target (``l1_gt_usm``, ``percep_gt_usm``) and the GAN
    against the plain HR (``gan_gt_usm: False``). Without it: target = hr, lr degraded from hr.
    Returns float32 arrays: lr (H/scale x W/scale x 3), target (H x W x 3), both in [0, 1].
    """
    hr = _check_hwc(hr, "hr")
    target = _to_unit_float(hr).astype(np.float32)
    if usm_hr:
        if target.ndim != 3 or target.shape[2] != 3:
            raise DegradationError(f"hr must be an RGB H x W x 3 image, got shape {target.shape}")
        target = usm_sharp(target)
    return second_order_degrade(target, scale, rng, cfg), target


# --------------------------------------------------------------------------------------------
# 6. The hidden "real-world" degradation of notebook 06 (PDD)
# --------------------------------------------------------------------------------------------

HIDDEN_DEGRADATION = {
    # optics, in HR pixels at x4 (both scale with scale / 4)
    "defocus_radius": 4.0,     # circle of confusion (disk_kernel): 1 LR pixel at x4
    "sigma_x": 2.0,            # lens aberration / hand shake (anisotropic Gaussian)
    "sigma_y": 1.0,
    "theta": math.pi / 5,      # 36 degrees
    "kernel_size": 21,
    # sensor, at the LR resolution
    "photons_at_white": 150.0,  # shot noise: Poisson(150 x) / 150
    "read_noise_sigma": 4.0,    # 0-255 scale
    # camera JPEG
    "jpeg_quality": 40,
    # noise streams: default_rng([seed, content hash(, shot)])
    "seed": 20240606,
}


def hidden_kernel(scale: int = 4) -> np.ndarray:
    """The target domain's optical blur at ``scale``: ``disk_kernel(defocus_radius)`` convolved with
    the anisotropic Gaussian of :data:`HIDDEN_DEGRADATION`, on a ``kernel_size`` grid, sum 1."""
    scale = _check_scale(scale)
    p = HIDDEN_DEGRADATION
    f = scale / 4.0
    k = p["kernel_size"]
    disk = disk_kernel(p["defocus_radius"] * f)
    gauss = gaussian_kernel(k, p["sigma_x"] * f, p["sigma_y"] * f, p["theta"])
    if disk.shape[0] > k:
        raise DegradationError(f"defocus radius {p['defocus_radius'] * f:.2f} does not fit a {k}x{k} kernel")
    full = scipy.signal.convolve2d(gauss, disk, mode="same")  # odd sizes: centres stay aligned
    return _normalised(full)


def image_seed(img) -> int:
    """A 64-bit integer from an image's content: BLAKE2b of its shape and its 8-bit pixels.

    Float images are rounded to 8 bits first, so the uint8 and [0, 1] float versions of one
    picture give the same number; any changed pixel gives another.
    """
    arr = _check_hwc(img)
    u8 = arr if arr.dtype == np.uint8 else np.clip(np.floor(_to_unit_float(arr) * 255.0 + 0.5), 0, 255).astype(np.uint8)
    h = hashlib.blake2b(digest_size=8)
    h.update(repr(u8.shape).encode())
    h.update(np.ascontiguousarray(u8).tobytes())
    return int.from_bytes(h.digest(), "little")


def hidden_degradation(hr, scale: int, *, seed=None) -> np.ndarray:
    """The course's fixed "real-world" target domain (notebook 06, PDD's unlabelled domain): a camera.

    x_LR = JPEG_q( clip( Poisson(P (k * x_HR) down_s) / P + n_read ) ), step by step:

    1. optics: the HR image is blurred by a defocus disk of radius 4 HR pixels at x4 (one LR
       pixel: the circle of confusion of a slightly misfocused lens, :func:`disk_kernel`)
       convolved with an anisotropic Gaussian (sigma 2.0 x 1.0 HR pixels, rotated 36 degrees:
       lens aberration and hand shake); radii and sigmas scale with ``scale / 4``
       (:func:`hidden_kernel`);
    2. sampling: MATLAB bicubic downscale by ``scale``;
    3. sensor noise, at the LR resolution: Poisson-Gaussian (Foi et al. 2008,
       :func:`poisson_gaussian_noise`) with 150 photons at white (shot-noise sigma 14.7/255 at
       mid-gray, 20.8/255 at white: a small sensor at high ISO) plus read noise of sigma 4/255,
       independently per pixel and channel (colour noise), clipped;
    4. the camera's JPEG at quality 40.

    Why this camera: the first version (anisotropic Gaussian blur 2.2 x 0.9, Gaussian noise of
    sigma 6/255 plus gray 3/255, JPEG 60) was milder than 87 % of Real-ESRGAN's second-order
    draws: the RGB PSNR of its LR against the clean bicubic LR had a median of 27.5 dB over 48
    crops of the bundled photos, the draws' median is 23.5 dB (on luma: 31.0 dB, milder than
    90 % of the draws; ``benchmarks/degradation_domain.py``). A domain that mild barely needs
    the generalist and does not separate it from the bicubic specialist, the premise of PDD's
    Tab. 1 (linear upscalers fitted on each kind of LR: the specialist still wins on it,
    ``benchmarks/linear_specialist_gap.py``). This camera (defocus, stronger and
    signal-dependent sensor noise, stronger JPEG) has a median of 25.0 dB (luma 27.9 dB):
    inside the inter-quartile range of the draws, harder than a third of them (a quarter on
    luma), in the family the generalist trains on (its noise is that family's typical level)
    but never drawn exactly, and far from anything the bicubic specialist has seen.

    The domain (kernel, noise levels, JPEG quality) is fixed; the noise is drawn afresh for
    every image, as a camera does per shot, yet deterministically: from
    ``numpy.random.default_rng([HIDDEN_DEGRADATION["seed"], image_seed(hr)])``. ``seed``: an
    int (>= 0, e.g. the image's index) is mixed in as a third entry, so the same picture taken
    twice gets two noise draws; a ``numpy.random.Generator`` is used as is.

    Same kinds as :func:`blur_noise_jpeg`: uint8 in -> uint8 out; float [0, 1] in -> float32 out.
    Parameters are in ``HIDDEN_DEGRADATION``.
    """
    hr = _check_hwc(hr, "hr")
    scale = _check_scale(scale)
    _check_divisible(hr, scale)
    p = HIDDEN_DEGRADATION
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif seed is None:
        rng = np.random.default_rng([p["seed"], image_seed(hr)])
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        rng = np.random.default_rng([p["seed"], image_seed(hr), int(seed)])
    else:
        raise DegradationError(
            f"seed must be None (noise from the image content), a non-negative int (e.g. the image's "
            f"index) or a numpy.random.Generator, got {seed!r}")
    x = filter2d(_to_unit_float(hr).astype(np.float32), hidden_kernel(scale))
    x = imresize(x, 1.0 / scale)
    x = poisson_gaussian_noise(x, p["photons_at_white"], p["read_noise_sigma"], rng)
    x = jpeg(x, p["jpeg_quality"])
    return _like_input(x, hr) if hr.dtype == np.uint8 else x.astype(np.float32)
