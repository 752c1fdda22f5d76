"""Upscale an image of any size with a trained model: tiling with overlap, colour correction.

:func:`upscale` cuts the low-resolution image into ``tile x tile`` pieces, gives each piece
``tile_overlap`` extra pixels of context on every side (fewer at the image border, where the
model sees the border exactly as it would on the whole image), runs the model on that piece
alone and keeps only the centre of the result. Only one piece (plus its overlap) is on the
device at a time and the output is assembled on the host, so device memory is bounded by the
tile, not by the image. When the model's receptive field reaches no further than
``tile_overlap`` LR pixels, the tiled result equals the untiled one (up to float rounding);
with a larger receptive field the difference shrinks as the overlap grows (see the tests).

Large images: ``tile="auto"`` (what ``python -m srlib upscale`` uses) takes :data:`DEFAULT_TILE`
pieces, so memory stays bounded whatever the image size; ``tile=None`` runs the whole image at
once (fine for the course's small images; a 6000 x 6000 photo at x4 would need tens of GB).
Running out of memory (CUDA or CPU) raises :class:`InferenceMemoryError`, which names the
piece size and says to pass a smaller tile.

Precision: fp32 by default; ``dtype="fp16"`` or ``"bf16"`` runs the model under
``torch.autocast`` (the model's weights are not converted). fp16 needs CUDA; bf16 also works on
CPU (slowly).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ImageReadError, SrlibError

DEFAULT_TILE = 256
"""LR tile side of ``tile="auto"``. A 256 + 2 x 16 pixel piece through RRDBNet x4 (64 features,
23 blocks) keeps feature maps of 64 x 1152 x 1152 float32 (~340 MB each) at the output size, a
few of them alive at once: a peak of a couple of GB, which fits a laptop or any CUDA card. Larger
tiles are a little faster; pass one when memory allows."""


class InferenceMemoryError(SrlibError, MemoryError):
    """The model ran out of memory (CUDA or CPU) on a piece of the image: use smaller tiles."""


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text
                                              or "cannot allocate memory" in text or "failed to allocate" in text)


def resolve_tile(tile, h: int, w: int) -> int | None:
    """``"auto"`` -> :data:`DEFAULT_TILE` (None when the image fits one tile); ``None`` -> None
    (the whole image at once); a positive integer -> itself."""
    if isinstance(tile, str):
        if tile != "auto":
            raise ValueError(f"tile must be a positive number of LR pixels, 'auto' or None, got {tile!r}")
        return None if max(h, w) <= DEFAULT_TILE else DEFAULT_TILE
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or int(tile) < 1:
        raise ValueError(f"tile must be a positive number of LR pixels, 'auto' or None, got {tile!r}")
    return int(tile)


#: LR pixels of mirrored context around the image (see :func:`upscale`'s ``pre_pad``).
DEFAULT_PRE_PAD = 8


def upscale(model: nn.Module, image, *, scale: int, tile: int | str | None = None, tile_overlap: int = 16,
            color_correct: bool = False, device=None, dtype=None, pad_multiple: int = 1,
            pre_pad: int = DEFAULT_PRE_PAD) -> np.ndarray:
    """Super-resolve ``image`` with ``model``; returns an ``(H*scale, W*scale, 3)`` uint8 RGB array.

    Args:
        model: maps ``(1, 3, h, w)`` in [0, 1] to ``(1, 3, h*scale, w*scale)``. It is put in
            ``eval()`` mode and on ``device`` for the call, then returned to its previous mode
            and device.
        image: uint8 ``H x W x 3`` RGB (the usual case); or float ``H x W x 3`` in [0, 1]; or a
            float tensor ``(3, H, W)`` / ``(1, 3, H, W)`` in [0, 1]. A 2-D grayscale array is
            repeated to three channels. Anything PIL-like goes through ``np.asarray``.
        scale: the model's upscaling factor (checked against its output).
        tile: side of the LR tiles; ``"auto"`` uses :data:`DEFAULT_TILE` (bounded memory for any
            image size); ``None`` runs the whole image at once. An image smaller than a tile is
            one tile.
        tile_overlap: LR pixels of context added around each tile (clamped at the image border).
        color_correct: match the output's per-channel mean/std to the input's (:func:`color_correct`).
        device: ``None`` -> CUDA when available, else CPU.
        dtype: ``None`` / ``"fp32"`` (default), ``"fp16"`` (CUDA only) or ``"bf16"``.
        pad_multiple: reflect-pad each piece so its sides are multiples of this (e.g. 2 for an
            x2 RRDBNet, whose pixel-unshuffle needs even sizes); the padding is cropped away.
        pre_pad: LR pixels of mirrored image added around the whole image before the model
            runs, cropped away after (Real-ESRGAN's ``pre_pad``). A network with zero-padded
            convolutions and no image-space skip (RRDBNet) must learn to compensate for the
            zeros beyond the border, which a briefly trained one does badly: its outermost output
            row and column come out several times worse than the interior (a visible line).
            With mirrored context the image border is no longer the network's border. 0 turns it off.
    """
    lr = as_float_image(image)
    scale, tile_overlap, pad_multiple = int(scale), int(tile_overlap), int(pad_multiple)
    pre_pad = int(pre_pad)
    if pre_pad < 0:
        raise ValueError(f"pre_pad must be >= 0 LR pixels, got {pre_pad}")
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    tile = resolve_tile(tile, *lr.shape[:2])
    if tile_overlap < 0 or pad_multiple < 1:
        raise ValueError(f"tile_overlap must be >= 0 and pad_multiple >= 1, got {tile_overlap}, {pad_multiple}")
    dev = _pick_device(device)
    amp_dtype = _inference_dtype(dtype, dev)

    h, w = lr.shape[:2]
    step = int(tile) if tile is not None else max(h, w)
    pad = min(pre_pad, h - 1, w - 1) if pre_pad else 0  # numpy's reflect needs pad < side
    padded = np.pad(lr, ((pad, pad), (pad, pad), (0, 0)), mode="reflect") if pad else lr
    context = max(tile_overlap, pad)
    try:
        out = np.empty((h * scale, w * scale, 3), np.float32 if color_correct else np.uint8)
    except MemoryError:
        raise InferenceMemoryError(f"not enough memory for the {w * scale}x{h * scale} output of a {w}x{h} "
                                   "image; upscale a smaller image or crop it into parts") from None
    was_training, home = model.training, _model_device(model)
    model.eval().to(dev)
    autocast = torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    piece_side = min(step + 2 * context, max(h, w) + 2 * pad)
    try:
        with torch.inference_mode(), autocast:
            for y0 in range(0, h, step):
                for x0 in range(0, w, step):
                    y1, x1 = min(y0 + step, h), min(x0 + step, w)
                    # piece bounds in the padded image (original pixel y sits at y + pad)
                    iy0, iy1 = max(y0 + pad - context, 0), min(y1 + pad + context, h + 2 * pad)
                    ix0, ix1 = max(x0 + pad - context, 0), min(x1 + pad + context, w + 2 * pad)
                    piece = torch.from_numpy(np.ascontiguousarray(padded[iy0:iy1, ix0:ix1].transpose(2, 0, 1)))
                    sr = _run(model, piece[None].to(dev), scale, pad_multiple)
                    oy, ox = (y0 + pad - iy0) * scale, (x0 + pad - ix0) * scale
                    core = sr[0, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
                    core = core.float().permute(1, 2, 0).cpu().numpy()
                    out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = (
                        core if color_correct else to_uint8(core))
    except (RuntimeError, MemoryError) as exc:
        if not _is_out_of_memory(exc):
            raise
        what = f"tiles of {step} pixels" if tile is not None else f"the whole {w}x{h} image at once"
        smaller = max(8, min(step, DEFAULT_TILE) // 2)
        raise InferenceMemoryError(
            f"out of memory on {dev.type} running the model on pieces of up to {piece_side}x{piece_side} "
            f"LR pixels ({what}): use a smaller tile, e.g. --tile {smaller} (tile={smaller})") from None
    finally:
        model.train(was_training)
        if home is not None:
            model.to(home)
    if color_correct:
        return to_uint8(_match_mean_std(out, lr, axes=(0, 1)))
    return out


def color_correct(sr, lr):
    """Match each channel's mean and standard deviation of ``sr`` to those of ``lr``.

    ``out_c = (sr_c - mean(sr_c)) / std(sr_c) * std(lr_c) + mean(lr_c)``, clipped to [0, 1].
    This is the test-time colour correction of PDD (Zhang, Lee & Yao, "Pairwise Distance
    Distillation for Unsupervised Real-World Image Super-Resolution", ECCV 2024): a model
    adapted to a new domain can shift the global colour of its output, and the LR input's
    channel statistics (which resizing barely changes) are the best reference available
    without ground truth. It changes colour balance and contrast only, never structure.

    ``sr`` and ``lr`` are both numpy ``H x W x 3`` (uint8 or float in [0, 1]; the result has
    ``sr``'s kind: uint8 in, uint8 out, else float32), or both tensors ``(..., 3, H, W)``.
    """
    if isinstance(sr, torch.Tensor):
        if not isinstance(lr, torch.Tensor) or sr.shape[-3] != 3 or lr.shape[-3] != 3:
            raise ImageReadError("color_correct on tensors needs two (..., 3, H, W) tensors")
        return _match_mean_std(sr, lr.to(sr), axes=(-2, -1))
    out = _match_mean_std(as_float_image(sr), as_float_image(lr), axes=(0, 1))
    return to_uint8(out) if np.asarray(sr).dtype == np.uint8 else out


def as_float_image(image) -> np.ndarray:
    """Any accepted image form -> float32 ``H x W x 3`` in [0, 1] (see :func:`upscale`)."""
    if isinstance(image, torch.Tensor):
        t = image.detach()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ImageReadError(f"an image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
        arr = t.float().cpu().numpy().transpose(1, 2, 0)
    else:
        arr = np.asarray(image)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        arr = np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageReadError(f"expected an H x W x 3 RGB image, got shape {arr.shape}; "
                             "drop an alpha channel first (image[..., :3])")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageReadError(f"the image is empty (shape {arr.shape})")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise ImageReadError(f"images must be uint8 or float in [0, 1], got dtype {arr.dtype}")
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if not np.isfinite(arr).all() or lo < -1e-3 or hi > 1 + 1e-3:
        raise ImageReadError(f"a float image must hold finite values in [0, 1], got range [{lo:.4g}, {hi:.4g}]; "
                             "divide uint8 data by 255")
    return np.clip(arr, 0.0, 1.0).astype(np.float32, copy=False)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 by clipping and rounding to nearest (``round(x * 255)``)."""
    return np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)


def _run(model: nn.Module, x: torch.Tensor, scale: int, multiple: int) -> torch.Tensor:
    """Model on one piece, padded to a multiple of ``multiple`` and cropped back; shape checked."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    y = model(x)
    want = ((h + ph) * scale, (w + pw) * scale)
    if not isinstance(y, torch.Tensor) or y.ndim != 4 or tuple(y.shape[-2:]) != want or y.shape[1] != 3:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"the model turned a {tuple(x.shape)} input into {got}, not (1, 3, {want[0]}, "
                         f"{want[1]}): check scale={scale} against the model's upscaling factor")
    return y[..., :h * scale, :w * scale]


def _match_mean_std(sr, lr, axes):
    if isinstance(sr, torch.Tensor):
        mu_s, sd_s = sr.mean(axes, keepdim=True), sr.std(axes, keepdim=True, unbiased=False)
        mu_l, sd_l = lr.mean(axes, keepdim=True), lr.std(axes, keepdim=True, unbiased=False)
        return ((sr - mu_s) / sd_s.clamp_min(1e-8) * sd_l + mu_l).clamp(0, 1)
    mu_s, sd_s = sr.mean(axes, keepdims=True), sr.std(axes, keepdims=True)
    mu_l, sd_l = lr.mean(axes, keepdims=True), lr.std(axes, keepdims=True)
    return np.clip((sr - mu_s) / np.maximum(sd_s, 1e-8) * sd_l + mu_l, 0, 1).astype(np.float32)


def _pick_device(device) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        return device
    from .runtime import pick_device
    return pick_device(str(device))


def _inference_dtype(dtype, device: torch.device):
    key = str(dtype).replace("torch.", "").lower() if dtype is not None else "fp32"
    if key in ("fp32", "float32", "float"):
        return None
    if key in ("bf16", "bfloat16"):
        return torch.bfloat16
    if key in ("fp16", "float16", "half"):
        if device.type != "cuda":
            raise ValueError("fp16 inference needs a CUDA device; on CPU use dtype=None (fp32) "
                             "or dtype='bf16'")
        return torch.float16
    raise ValueError(f"dtype must be None/'fp32', 'fp16' or 'bf16', got {dtype!r}")


def _model_device(model: nn.Module):
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return None
