"""Reading and writing images, and moving them between numpy and torch.

Every image in the course is either a numpy array ``H x W x 3`` of ``uint8`` RGB (what files hold)
or a float32 array / tensor with values in ``[0, 1]``. :func:`read_image` turns whatever a user
hands us (grayscale, palette, 16-bit, CMYK, with alpha, EXIF-rotated) into the first form, and
turns every way a file can be unreadable into one :class:`~srlib.errors.ImageReadError` whose
message names the file, the problem and what to do, instead of a Pillow traceback.

Conversions (all exact, tested value by value):

- ``1`` (1-bit), ``L``, ``I;16`` (16-bit gray), ``I``, ``F``: gray copied to the three channels.
- 16-bit samples (gray, RGB, RGBA, from PNG or TIFF) become 8 bit by ``round(v / 257)``: 65535 -> 255,
  ``257 * k`` -> ``k``. Pillow itself keeps only the high byte of 16-bit RGB (truncation); we decode
  the low byte too and round. (16-bit gray + alpha PNGs, which Pillow cannot unpack that way,
  keep Pillow's high byte, with a warning.)
- ``P`` (palette) with or without transparency, ``PA``, ``LA``, ``RGBA``: images with an alpha
  channel are composited over a **white** background, ``out = a * c + (1 - a) * 1`` in [0, 1],
  because a super-resolution model sees RGB only and white is what a viewer usually shows.
- ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: Pillow's conversion to RGB (ICC profiles are not applied).
- EXIF orientation (JPEG, TIFF, PNG eXIf) is applied with ``PIL.ImageOps.exif_transpose``, so the
  array is upright as a photo viewer shows it.
- Multi-frame files (animated GIF, multi-page TIFF): the first frame.
- ``I`` (32-bit integer) is read as 16-bit data clipped to [0, 65535]; ``F`` (32-bit float) as
  values in [0, 1] when its maximum is at most 1, else in [0, 255].

Safety: a file larger than :data:`MAX_PIXELS` is refused before it is decoded (a "decompression
bomb": a few kilobytes that claim billions of pixels). Pillow's own ``DecompressionBombWarning`` is
raised as an error too. Truncated files are errors: this module never sets Pillow's
``ImageFile.LOAD_TRUNCATED_IMAGES`` (it must stay ``False``), so a half-downloaded image cannot
silently enter a data set with grey bands.
"""

from __future__ import annotations

import errno
import os
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError

MAX_PIXELS = 80_000_000
"""Largest image (width x height) :func:`read_image` decodes: 80 megapixels, e.g. 10000 x 8000.

It sits below Pillow's own warning threshold (``Image.MAX_IMAGE_PIXELS``, about 89.5 MP by
default) so that this limit is the one that applies. To read a larger trusted image, raise both:
``srlib.io.MAX_PIXELS = ...`` and ``PIL.Image.MAX_IMAGE_PIXELS = ...``."""

LOSSLESS_SUFFIXES = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM"}

# Errors Pillow (and the codecs under it) raise for broken data; they all mean "this file is bad".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, zlib.error)


def _fail(path, problem: str, advice: str) -> ImageReadError:
    return ImageReadError(f"cannot read image '{path}': {problem}. {advice}")


def _swap16(rawmode: str) -> str | None:
    """The raw mode that unpacks the *low* byte of each 16-bit sample Pillow unpacks the high byte of.

    Pillow reads 16-bit RGB(A)/LA by keeping the most significant byte of every sample (raw modes
    such as ``RGB;16B``). Decoding the same data again with the opposite byte order yields the least
    significant bytes; ``high * 256 + low`` is the full 16-bit value.
    """
    if not isinstance(rawmode, str) or ";16" not in rawmode:
        return None
    base, _, order = rawmode.partition(";16")
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    if order not in ("B", "L"):
        return None
    return f"{base};16{'L' if order == 'B' else 'B'}"


def _open_checked(path: Path) -> Image.Image:
    """Open (header only), enforce the pixel limit, and map every failure to ImageReadError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _fail(path, f"it declares too many pixels to decode safely ({exc})",
                    "If you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS and "
                    "srlib.io.MAX_PIXELS, or downscale it with another tool first") from exc
    except UnidentifiedImageError as exc:
        raise _fail(path, "it is not an image file Pillow can recognise (or its header is damaged)",
                    "Check that it is a PNG/JPEG/TIFF/BMP/WebP image and not, e.g., an HTML error "
                    "page saved by a failed download") from exc
    except _DECODE_ERRORS as exc:
        raise _fail(path, f"opening failed ({type(exc).__name__}: {exc})",
                    "The file is probably damaged; download or export it again") from exc
    pixels = im.width * im.height
    if pixels > MAX_PIXELS:
        im.close()
        raise _fail(path, f"it is {im.width} x {im.height} = {pixels:,} pixels, more than the "
                    f"limit srlib.io.MAX_PIXELS = {MAX_PIXELS:,} (a possible decompression bomb)",
                    "If you trust the file, raise srlib.io.MAX_PIXELS (and PIL.Image.MAX_IMAGE_PIXELS)"
                    ", or downscale it with another tool first")
    return im


def _load(path: Path, im: Image.Image, rawmode: str | None = None) -> Image.Image:
    """Decode pixel data (optionally with another raw mode) and apply the EXIF orientation."""
    try:
        if rawmode is not None:
            im.tile = [t._replace(args=(rawmode,) + tuple(t.args[1:]) if isinstance(t.args, tuple)
                                  else rawmode) for t in im.tile]
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _fail(path, f"it declares too many pixels to decode safely ({exc})",
                    "If you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS") from exc
    except _DECODE_ERRORS as exc:
        raise _fail(path, f"its pixel data is truncated or corrupt ({type(exc).__name__}: {exc})",
                    "The file is incomplete (an interrupted download or copy?); fetch or export "
                    "it again") from exc
    try:
        return ImageOps.exif_transpose(im)
    except Exception as exc:  # broken EXIF must not make a readable image unreadable
        warnings.warn(f"{path}: EXIF orientation could not be applied ({exc}); image left as stored",
                      stacklevel=3)
        return im


def _to_unit_float(path: Path, im: Image.Image, low: Image.Image | None) -> np.ndarray:
    """Pixel values as float64 in [0, 1], shape H x W x C with C in {1, 2, 3, 4} (gray/LA/RGB/RGBA)."""
    mode = im.mode
    if low is not None:  # 16-bit RGB / RGBA / LA: combine Pillow's high bytes with our low bytes
        value = np.asarray(im).astype(np.float64) * 256.0 + np.asarray(low).astype(np.float64)
        arr = value / 65535.0
    elif mode == "1":
        arr = np.asarray(im, dtype=np.float64)
    elif mode.startswith("I;16"):
        arr = np.asarray(im).astype(np.float64) / 65535.0
    elif mode == "I":
        arr = np.clip(np.asarray(im).astype(np.float64), 0, 65535) / 65535.0
    elif mode == "F":
        raw = np.nan_to_num(np.asarray(im).astype(np.float64))
        arr = np.clip(raw if raw.max(initial=0.0) <= 1.0 else raw / 255.0, 0.0, 1.0)
    elif mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.asarray(im).astype(np.float64) / 255.0
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB")).astype(np.float64) / 255.0
    elif mode in ("La", "RGBa"):  # premultiplied alpha
        arr = np.asarray(im.convert(mode.upper())).astype(np.float64) / 255.0
    else:  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        try:
            arr = np.asarray(im.convert("RGB")).astype(np.float64) / 255.0
        except ValueError as exc:
            raise _fail(path, f"its pixel mode {mode!r} cannot be converted to RGB",
                        "Convert it to an 8-bit RGB PNG with another tool first") from exc
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an ``H x W x 3`` ``uint8`` RGB array, whatever its mode.

    See the module docstring for every conversion: gray and palette images become RGB, 16-bit
    samples become 8-bit by ``round(v / 257)``, alpha is composited over white, EXIF orientation is
    applied. Raises :class:`~srlib.errors.ImageReadError` (a ``ValueError``) naming the file, the
    problem and the fix for a missing, empty, truncated, non-image or oversized
    (> :data:`MAX_PIXELS`) file; the original exception is chained as ``__cause__``.
    """
    path = Path(path)
    if not path.exists():
        raise _fail(path, "the file does not exist", "Check the path and the working directory "
                    f"(currently '{os.getcwd()}')")
    if not path.is_file():
        raise _fail(path, "it is not a regular file (a directory?)", "Pass the path of an image file")
    if path.stat().st_size == 0:
        raise _fail(path, "the file is empty (0 bytes)",
                    "It was probably created by an interrupted download or copy; fetch it again")

    im = _open_checked(path)
    try:
        rawmode = im.tile[0].args if im.tile else None
        rawmode = rawmode[0] if isinstance(rawmode, tuple) else rawmode
        low_mode = _swap16(rawmode) if im.mode in ("RGB", "RGBA", "LA") else None
        loaded = _load(path, im)
        low = None
        if low_mode is not None:
            try:  # the file decoded once already, so a failure here is the codec, not the data
                with Image.open(path) as again:
                    low = _load(path, again, low_mode)
            except Exception:
                warnings.warn(f"{path}: 16-bit samples reduced by Pillow's truncation (the low "
                              "bytes could not be decoded)", stacklevel=2)
                low = None
        if low is None and loaded.mode in ("RGB", "L"):  # the common cases: no arithmetic needed
            arr8 = np.asarray(loaded)
            return np.ascontiguousarray(np.repeat(arr8[..., None], 3, axis=2) if arr8.ndim == 2
                                        else arr8.copy())
        arr = _to_unit_float(path, loaded, low)
    finally:
        im.close()

    if arr.shape[2] in (2, 4):  # composite over white
        alpha = arr[..., -1:]
        arr = arr[..., :-1] * alpha + (1.0 - alpha)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)


def has_alpha(path: str | os.PathLike) -> bool:
    """Whether the image file at ``path`` has an alpha channel (or a transparent palette entry),
    which :func:`read_image` composites over white. Reads the header only; False for a file
    that cannot be opened (:func:`read_image` reports that)."""
    try:
        with Image.open(path) as im:
            return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info)
    except Exception:
        return False


def _as_uint8_hwc(img) -> np.ndarray:
    """Validate an HWC image (uint8, or float in [0, 1]) and return it as uint8 (rounded, clipped)."""
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got an array of shape {arr.shape}; "
                         "use srlib.io.to_image to convert a (3, H, W) tensor")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"the image is empty (shape {arr.shape}): there are no pixels to write")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ValueError(f"expected uint8 or float pixels, got dtype {arr.dtype}")
    if arr.dtype.kind in "iu":
        raise ValueError(f"integer image of dtype {arr.dtype} is ambiguous; pass uint8 (0-255) or "
                         "float values in [0, 1]")
    if not np.all(np.isfinite(arr)):
        raise ValueError("the image contains NaN or infinite values; nothing was written")
    return np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _lossless_format(path: Path) -> str:
    fmt = LOSSLESS_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write '{path}': use a lossless format "
                         f"({', '.join(sorted(LOSSLESS_SUFFIXES))}); PNG is recommended")
    return fmt


def check_writable(path: str | os.PathLike) -> Path:
    """Check, before any work is done, that :func:`write_image` can write ``path``.

    The suffix must be a lossless format, ``path`` must not be a folder, and its nearest existing
    parent must be a folder this process may write into (missing folders below it are created
    by the write). Raises ``ValueError`` (format) or the matching ``OSError`` (``IsADirectoryError``,
    ``NotADirectoryError``, ``PermissionError``) naming ``path``. Returns ``path`` as a Path.
    """
    path = Path(path)
    _lossless_format(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "cannot write: it is a folder; give a file name such as "
                                "out.png", str(path))
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write: '{parent}' is a file, not a folder",
                                 str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"cannot write: no permission to write in '{parent}'",
                              str(path))
    return path


def write_image(path: str | os.PathLike, img) -> Path:
    """Write an ``H x W x 3`` image (``uint8``, or float in [0, 1]: rounded and clipped) losslessly.

    The format comes from the suffix and must be lossless (``.png`` recommended; ``.bmp``,
    ``.tif``/``.tiff``, ``.ppm`` also work) so that a written image reads back bit for bit. Parent
    folders are created. The write is atomic (:mod:`srlib.atomic`): data goes to a temporary file
    in the same folder that is then renamed over ``path``, so a crash never leaves a half-written
    image behind, and a leftover of an earlier killed write is removed. The file's permissions
    follow the umask; an unwritable ``path`` raises an ``OSError`` that names ``path``. Returns
    the path.
    """
    from .atomic import atomic_open, make_dirs

    path = Path(path)
    fmt = _lossless_format(path)
    arr = _as_uint8_hwc(img)
    make_dirs(path.parent)
    with atomic_open(path, "wb") as fh:
        Image.fromarray(np.ascontiguousarray(arr), mode="RGB").save(fh, format=fmt)
    return path


def to_tensor(img):
    """``H x W x 3`` (or ``N x H x W x 3``) image -> float32 tensor ``(3, H, W)`` (or ``(N, 3, H, W)``).

    ``uint8`` values are divided by 255; float input is taken to be in [0, 1] already and is only
    cast to float32. The result is a new contiguous tensor (never shares memory with ``img``).
    """
    import torch

    arr = np.asarray(img)
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 or N x H x W x 3 image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
    else:
        raise ValueError(f"expected uint8 or float pixels, got dtype {arr.dtype}")
    perm = (2, 0, 1) if arr.ndim == 3 else (0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(perm)))


def to_image(tensor) -> np.ndarray:
    """Float tensor ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1] -> ``uint8`` ``H x W x 3`` (or N x ...).

    Values are scaled by 255, rounded to the nearest integer and clipped to [0, 255] (a network's
    output often overshoots [0, 1] slightly). Works for tensors on any device and with gradients.
    """
    arr = tensor.detach().float().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
    if arr.ndim not in (3, 4) or arr.shape[-3] != 3:
        raise ValueError(f"expected a (3, H, W) or (N, 3, H, W) tensor, got shape {tuple(arr.shape)}")
    arr = np.moveaxis(arr, -3, -1)
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
