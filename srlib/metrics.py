"""Image quality metrics, computed the way the super-resolution literature reports them.

- :func:`psnr` and :func:`ssim` follow BasicSR (``basicsr/metrics/psnr_ssim.py``), the code
  behind most published SR tables: a border of ``crop_border`` pixels (usually the scale) is
  cut from every side, and the images are compared on the Y channel of BT.601 YCbCr
  (:func:`rgb_to_y`) on the 0-255 scale.
- :func:`lpips` is the learned perceptual distance of Zhang et al. 2018 through the ``lpips``
  package. It needs ImageNet backbone weights from the torch hub cache; they are never
  downloaded here, and :func:`lpips_available` says why the metric cannot run when they are absent.
- NIQE (no reference) lives in :mod:`srlib.niqe`; :func:`evaluate` gathers all four.

Accepted image inputs (both arguments of a full-reference metric may differ in kind):

- numpy ``H x W x 3`` RGB, ``uint8`` (0-255) or float in [0, 1]; ``N x H x W x 3`` for a batch;
- torch tensors, float in [0, 1], ``(3, H, W)`` or ``(N, 3, H, W)`` (any device; they are
  detached and copied to the CPU in float64).

A single image gives a Python ``float``; a batch (4-D input) gives a ``numpy`` array of shape
``(N,)`` with one value per image. Float inputs are used as they are (no rounding to 8 bits);
BasicSR quantises network outputs to ``uint8`` before measuring, so pass ``uint8`` images when
comparing with published numbers to the last decimal.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import correlate1d

from .errors import BackboneUnavailableError, DatasetError, WeightsError

# ---------------------------------------------------------------------------------------------
# Colour: BT.601 luma, studio range, as BasicSR's bgr2ycbcr / rgb2ycbcr(y_only=True)
# ---------------------------------------------------------------------------------------------

#: Weights of R, G, B (each in [0, 1]) in ITU-R BT.601 Y on the 0-255 scale; Y = 16 + w . rgb.
#: BasicSR stores them as (24.966, 128.553, 65.481) because it reads images as BGR.
Y_WEIGHTS_RGB = (65.481, 128.553, 24.966)


def rgb_to_y(img):
    """Luma Y of BT.601 YCbCr (studio range 16-235) on the 0-255 scale, not rounded.

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1] (ITU-R BT.601; the
    same numbers as MATLAB's ``rgb2ycbcr`` and BasicSR's ``to_y_channel``). PSNR/SSIM "on Y"
    in SR papers means this channel, so a metric computed here compares with published ones.

    Args:
        img: numpy ``(..., H, W, 3)`` RGB, ``uint8`` or float in [0, 1]; or a torch tensor
            ``(..., 3, H, W)``, float in [0, 1] or ``uint8``.

    Returns:
        numpy float64 ``(..., H, W)`` for numpy input, a tensor ``(..., H, W)`` of the input's
        floating dtype for tensor input; values in [16, 235] for in-range input.
    """
    if torch.is_tensor(img):
        if img.ndim < 3 or img.shape[-3] != 3:
            raise DatasetError(f"rgb_to_y expects a tensor shaped (..., 3, H, W); got {tuple(img.shape)}")
        rgb = img if img.is_floating_point() else img.to(torch.float32) / 255.0  # uint8 tensors: 0-255
        w = torch.tensor(Y_WEIGHTS_RGB, dtype=rgb.dtype, device=img.device)
        return 16.0 + torch.einsum("...chw,c->...hw", rgb, w)
    arr = np.asarray(img)
    if arr.ndim < 3 or arr.shape[-1] != 3:
        raise DatasetError(f"rgb_to_y expects an array shaped (..., H, W, 3); got {arr.shape}")
    rgb = arr.astype(np.float64) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    return 16.0 + rgb @ np.asarray(Y_WEIGHTS_RGB, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Input handling shared by every metric
# ---------------------------------------------------------------------------------------------

def _check_unit_range(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        raise DatasetError(f"{name} contains NaN or infinite values; check the model output")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-5 or hi > 1 + 1e-5:
        raise DatasetError(
            f"{name} is a float image with values in [{lo:.4g}, {hi:.4g}], but float images must lie "
            "in [0, 1]; clamp a network output with x.clamp(0, 1), or pass uint8 images for 0-255 data"
        )


def _check_not_empty(shape: tuple, name: str) -> None:
    """``shape`` is (..., H, W, 3): refuse no images and images without pixels."""
    if any(int(n) == 0 for n in shape):
        raise DatasetError(f"{name} is empty (shape {tuple(shape)} as N x H x W x 3 / H x W x 3): "
                           "it has no pixels; check how it was loaded or cropped")


def to_batch_255(x, name: str = "image") -> tuple[np.ndarray, bool]:
    """Convert any accepted image input to float64 ``(N, H, W, 3)`` RGB on the 0-255 scale.

    Returns the array and whether the input was a batch (4-D). Raises :class:`DatasetError`
    (a ``ValueError``) with the offending shape or dtype otherwise.
    """
    if torch.is_tensor(x):
        if x.ndim not in (3, 4) or x.shape[-3] != 3:
            raise DatasetError(
                f"{name}: a tensor must be RGB shaped (3, H, W) or (N, 3, H, W); got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise DatasetError(f"{name}: a tensor must be float in [0, 1]; got dtype {x.dtype}")
        batched = x.ndim == 4
        _check_not_empty(tuple(x.shape[:-3]) + tuple(x.shape[-2:]) + (3,), name)
        arr = x.detach().to("cpu", torch.float64).reshape(-1, *x.shape[-3:]).permute(0, 2, 3, 1).numpy()
        _check_unit_range(arr, name)
        return arr * 255.0, batched
    arr = np.asarray(x)
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise DatasetError(
            f"{name}: a numpy image must be RGB shaped H x W x 3 (or N x H x W x 3); got {arr.shape}. "
            "Tensors are channel-first: (3, H, W) or (N, 3, H, W)."
        )
    batched = arr.ndim == 4
    _check_not_empty(arr.shape, name)
    arr = arr.reshape(-1, *arr.shape[-3:])
    if arr.dtype == np.uint8:
        return arr.astype(np.float64), batched
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
        _check_unit_range(arr, name)
        return arr * 255.0, batched
    raise DatasetError(f"{name}: unsupported dtype {arr.dtype}; use uint8 (0-255) or float in [0, 1]")


def _shape_of(x) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _prepare_pair(a, b, crop_border: int, y_channel: bool):
    """Both images as float64 (N, H, W, C) on the 0-255 scale, cropped, Y (C=1) or RGB (C=3)."""
    x, batched_a = to_batch_255(a, "first image")
    y, batched_b = to_batch_255(b, "second image")
    if x.shape != y.shape:
        raise DatasetError(
            f"image shapes differ: {_shape_of(a)} vs {_shape_of(b)}; both images must have the same "
            "size (crop or resize the super-resolved image to the ground truth first)"
        )
    x, y = crop(x, crop_border), crop(y, crop_border)
    if y_channel:
        x, y = _y_from_255(x)[..., None], _y_from_255(y)[..., None]
    return x, y, (batched_a or batched_b)


def _y_from_255(rgb255: np.ndarray) -> np.ndarray:
    return 16.0 + rgb255 @ (np.asarray(Y_WEIGHTS_RGB, dtype=np.float64) / 255.0)


def crop(batch: np.ndarray, crop_border: int) -> np.ndarray:
    """Cut ``crop_border`` pixels from each side of ``(N, H, W, C)`` (SR convention: the scale)."""
    if isinstance(crop_border, (bool, np.bool_)) or not isinstance(crop_border, (int, np.integer)) \
            or crop_border < 0:
        raise DatasetError(f"crop_border must be a non-negative integer number of pixels (usually the "
                           f"scale, e.g. 4); got {crop_border!r}")
    h, w = batch.shape[1:3]
    if 2 * crop_border >= min(h, w):
        raise DatasetError(f"crop_border={crop_border} removes the whole {h}x{w} image; use a smaller border")
    if crop_border == 0:
        return batch
    return batch[:, crop_border:-crop_border, crop_border:-crop_border]


def _result(values: np.ndarray, batched: bool):
    return np.asarray(values, dtype=np.float64) if batched else float(values[0])


# ---------------------------------------------------------------------------------------------
# PSNR and SSIM
# ---------------------------------------------------------------------------------------------

def psnr(a, b, crop_border: int, y_channel: bool = True):
    """Peak signal-to-noise ratio in dB, as BasicSR's ``calculate_psnr``.

    ``PSNR = 10 log10(255^2 / MSE)`` with the MSE taken in float64 over the cropped Y channel
    (``y_channel=True``, Y on the 0-255 scale from :func:`rgb_to_y`) or over the three RGB
    channels scaled to 0-255. Identical images give ``inf``.

    Returns a float, or one value per image (numpy ``(N,)``) for batched input.
    """
    x, y, batched = _prepare_pair(a, b, crop_border, y_channel)
    mse = np.mean((x - y) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        values = np.where(mse == 0, np.inf, 10.0 * np.log10(255.0**2 / np.maximum(mse, 1e-300)))
    return _result(values, batched)


SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    k = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(k**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable correlation of (N, H, W, C) with the 2-D window outer(g, g), 'valid' region only."""
    r = (len(g) - 1) // 2
    out = correlate1d(img, g, axis=1, mode="reflect")
    out = correlate1d(out, g, axis=2, mode="reflect")
    return out[:, r:-r, r:-r]


def ssim(a, b, crop_border: int, y_channel: bool = True):
    """Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004, Eq. 13), as BasicSR's ``calculate_ssim``.

    Local statistics use an 11x11 Gaussian window (sigma 1.5) over the 'valid' region (no
    padded pixels enter the map), ``C1 = (0.01 * 255)^2`` and ``C2 = (0.03 * 255)^2``:

        SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

    The map is averaged; with ``y_channel=False`` it is computed per RGB channel (0-255) and the
    three means are averaged. ``ssim(x, x) == 1``. The image must be at least 11x11 after the crop.

    Returns a float, or one value per image (numpy ``(N,)``) for batched input.
    """
    x, y, batched = _prepare_pair(a, b, crop_border, y_channel)
    if min(x.shape[1:3]) < SSIM_WINDOW:
        raise DatasetError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the crop; "
                           f"got {x.shape[1]}x{x.shape[2]}")
    g = _gaussian_1d(SSIM_WINDOW, SSIM_SIGMA)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    var_x = _filter_valid(x * x, g) - mu_x**2
    var_y = _filter_valid(y * y, g) - mu_y**2
    cov_xy = _filter_valid(x * y, g) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    # Equal-sized maps: the mean over (H, W, C) is the mean of the per-channel means.
    return _result(ssim_map.mean(axis=(1, 2, 3)), batched)


# ---------------------------------------------------------------------------------------------
# LPIPS
# ---------------------------------------------------------------------------------------------

#: ImageNet backbone files that ``lpips`` expects in ``torch.hub.get_dir()/checkpoints``.
LPIPS_BACKBONES = {
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1-b8a52dc0.pth", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),
}

_LPIPS_MODELS: dict[tuple[str, str], torch.nn.Module] = {}


def _check_net(net: str) -> None:
    if net not in LPIPS_BACKBONES:
        raise DatasetError(f"unknown LPIPS network {net!r}; choose one of {', '.join(LPIPS_BACKBONES)}")


def lpips_backbone_path(net: str = "alex") -> Path:
    """Where the ImageNet weights of the LPIPS backbone ``net`` must be (torch hub cache)."""
    _check_net(net)
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONES[net][0]


def _lpips_missing_message(net: str) -> str:
    fname, url = LPIPS_BACKBONES[net]
    path = lpips_backbone_path(net)
    return (f"LPIPS ({net}) needs the ImageNet weights file {fname}, which is not at {path}. "
            f"Download {url} on a machine with internet access and copy it to {path} "
            f"(the folder is torch.hub.get_dir()/checkpoints; set TORCH_HOME to move it).")


def lpips_available(net: str = "alex") -> tuple[bool, str]:
    """Whether :func:`lpips` can run offline with backbone ``net``, and why not if it cannot."""
    _check_net(net)
    if lpips_backbone_path(net).is_file():
        return True, f"LPIPS ({net}) backbone weights found at {lpips_backbone_path(net)}"
    return False, _lpips_missing_message(net)


def _load_lpips_model(net: str, device: torch.device) -> torch.nn.Module:
    """Build ``lpips.LPIPS(net=...)`` without letting it download, then load both weight files.

    The package's own linear calibration layers (``lpips/weights/v0.1/<net>.pth``) and the
    torchvision ImageNet backbone from the hub cache are read with ``weights_only=True``; the
    backbone's ``features.<i>.*`` keys map onto the package's ``net.slice<k>.<i>.*`` modules.
    """
    path = lpips_backbone_path(net)
    if not path.is_file():
        raise BackboneUnavailableError(_lpips_missing_message(net))
    import lpips as lpips_pkg  # slow (imports torchvision): only once the weights are known to be there

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation notice for pretrained=False
        model = lpips_pkg.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
    try:
        backbone = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise WeightsError(f"cannot read LPIPS backbone weights {path}: {exc}. "
                           f"Delete it and fetch {LPIPS_BACKBONES[net][1]} again.") from exc
    state = {}
    for slice_name, block in model.net.named_children():
        for idx in block._modules:
            for pname in block._modules[idx].state_dict():
                key = f"features.{idx}.{pname}"
                if key not in backbone:
                    raise WeightsError(f"{path} lacks {key!r}; it is not a torchvision {net} checkpoint. "
                                       f"Fetch {LPIPS_BACKBONES[net][1]} again.")
                state[f"net.{slice_name}.{idx}.{pname}"] = backbone[key]
    lin_path = Path(lpips_pkg.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    state.update(torch.load(lin_path, map_location="cpu", weights_only=True))
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # wrong tensor shapes
        raise WeightsError(f"{path} does not fit the LPIPS {net} backbone: {exc}") from exc
    # scaling_layer buffers are constants; lins.<i> aliases lin<i>, whose own keys were checked
    missing = [k for k in missing if not k.startswith(("scaling_layer.", "lins."))]
    if missing or unexpected:
        raise WeightsError(f"LPIPS ({net}) weights incomplete: missing {missing}, unexpected {unexpected}")
    return model.eval().requires_grad_(False).to(device)


def _lpips_model(net: str, device: torch.device) -> torch.nn.Module:
    key = (net, str(device))
    if key not in _LPIPS_MODELS:
        _LPIPS_MODELS[key] = _load_lpips_model(net, device)
    return _LPIPS_MODELS[key]


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lpips(a, b, net: str = "alex", crop_border: int = 0, device=None):
    """LPIPS distance (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric", Eq. 1): unit-normalised backbone activations, squared differences weighted
    per channel by the learned linear layers, averaged over space and summed over layers.

    Lower is more similar; ``lpips(x, x) == 0``. Inputs as :func:`psnr` (RGB, mapped to [-1, 1]
    as the package expects). The model is built once per ``(net, device)`` and cached. Raises
    :class:`~srlib.errors.BackboneUnavailableError` naming the missing file when the ImageNet
    backbone is not in the torch hub cache (see :func:`lpips_available`); never downloads.

    Returns a float, or one value per image (numpy ``(N,)``) for batched input.
    """
    _check_net(net)
    x, y, batched = _prepare_pair(a, b, crop_border, y_channel=False)
    device = torch.device(device) if device is not None else _default_device()
    model = _lpips_model(net, device)
    tx = torch.from_numpy(x / 127.5 - 1.0).permute(0, 3, 1, 2).float().to(device)
    ty = torch.from_numpy(y / 127.5 - 1.0).permute(0, 3, 1, 2).float().to(device)
    try:
        with torch.no_grad():
            d = model(tx, ty).reshape(-1).double().cpu().numpy()
    except RuntimeError as exc:
        if min(x.shape[1:3]) < 32:
            raise DatasetError(f"LPIPS ({net}) cannot process a {x.shape[1]}x{x.shape[2]} image: "
                               f"it is too small for the backbone; use images of at least 32x32") from exc
        raise
    return _result(d, batched)


# ---------------------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------------------

ALL_METRICS = ("psnr", "ssim", "lpips", "niqe")


def evaluate(sr, hr, crop_border: int, metrics=ALL_METRICS, lpips_net: str = "alex",
             niqe_model=None, device=None) -> dict:
    """Measure a super-resolved image ``sr`` against its ground truth ``hr``.

    Returns a dict with the requested keys among ``psnr_y``, ``ssim_y`` (Y channel, border of
    ``crop_border`` removed), ``lpips`` (RGB, same crop; ``None`` when the backbone is not
    cached), ``niqe`` (of ``sr`` alone, on Y after the crop; ``None`` when the image is too small
    for one NIQE patch) and ``notes``: a string, empty when every metric ran, otherwise saying
    which metric is missing and why (e.g. ``"lpips unavailable: ..."``). A metric that cannot
    run is reported as missing, never replaced by a made-up number. Batched input gives arrays.
    """
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise DatasetError(f"unknown metrics {unknown}; choose among {', '.join(ALL_METRICS)}")
    out: dict = {}
    notes: list[str] = []
    if "psnr" in metrics:
        out["psnr_y"] = psnr(sr, hr, crop_border, y_channel=True)
    if "ssim" in metrics:
        out["ssim_y"] = ssim(sr, hr, crop_border, y_channel=True)
    if "lpips" in metrics:
        ok, reason = lpips_available(lpips_net)
        out["lpips"] = lpips(sr, hr, net=lpips_net, crop_border=crop_border, device=device) if ok else None
        if not ok:
            notes.append(f"lpips unavailable: {reason}")
    if "niqe" in metrics:
        from .niqe import niqe  # imported here: srlib.niqe itself imports this module

        try:
            out["niqe"] = niqe(sr, crop_border=crop_border, model=niqe_model)
        except DatasetError as exc:
            out["niqe"] = None
            notes.append(f"niqe unavailable: {exc}")
    out["notes"] = "; ".join(notes)
    return out


def evaluate_many(pairs, crop_border: int, metrics=ALL_METRICS, **kwargs) -> dict:
    """Evaluate ``(sr, hr)`` pairs of single images (any sizes) and average each metric over them.

    Returns ``{"n": count, "per_image": [evaluate(...) for each pair], <metric>: mean, "notes": ...}``.
    A mean skips images where the metric is ``None`` (and says so in ``notes``); it is ``None``
    when no image had it. PSNR means are of per-image dB values (the SR convention), and an
    ``inf`` (identical pair) makes the mean ``inf``.
    """
    per_image = [evaluate(sr, hr, crop_border, metrics=metrics, **kwargs) for sr, hr in pairs]
    if not per_image:
        raise DatasetError("evaluate_many got no image pairs")
    out: dict = {"n": len(per_image), "per_image": per_image}
    notes = []
    for key in per_image[0]:
        if key == "notes":
            continue
        vals = [r[key] for r in per_image if r[key] is not None]
        out[key] = float(np.mean(vals)) if vals else None
        if len(vals) < len(per_image):
            notes.append(f"{key}: averaged over {len(vals)} of {len(per_image)} images")
    for r in per_image:
        if r["notes"] and r["notes"] not in notes:
            notes.append(r["notes"])
    out["notes"] = "; ".join(notes)
    return out


__all__ = ["rgb_to_y", "psnr", "ssim", "lpips", "lpips_available", "lpips_backbone_path", "evaluate",
           "evaluate_many", "to_batch_255", "crop", "Y_WEIGHTS_RGB", "LPIPS_BACKBONES"]

