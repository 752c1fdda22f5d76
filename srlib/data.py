"""The course's embedded data sets, and the patch samplers that feed training.

Nothing here downloads anything: every image comes from files that installed packages ship, or is
rendered on the spot, so the smoke and standard profiles run offline.

Data sets (``load_images(name, split)``; every image ``H x W x 3`` ``uint8`` RGB):

- ``photos``: colour photographs bundled with scikit-image, scikit-learn and matplotlib, read from
  the packages' own files (never through their download helpers). The split is fixed in
  :data:`PHOTO_SPLITS`: 9 train images, 3 test images with different content (a portrait, an
  animal, an outdoor scene). The two views of the motorcycle stereo pair are both in train, since
  they show the same scene.
- ``text``: images of a few lines of words and numbers rendered with matplotlib's Agg backend and
  the fonts matplotlib bundles (DejaVu Sans / Serif / Sans Mono, STIX, Computer Modern), with a
  random font, size, text colour and background colour. ``TEXT_SIZE`` x ``TEXT_SIZE`` pixels
  (192). Image ``i`` of a split depends only on ``(seed, split, i)``; train and test use
  different random streams and disjoint word lists, so they never show the same text.
- ``textures``: scikit-image's grayscale brick, grass and gravel (512 x 512), as RGB. Train is the
  left half (512 x 256) of each, test the right half: all three textures in both splits, no
  pixel shared.

Patch samplers: :class:`PairedPatches` (LR/HR pairs for supervised training) and
:class:`UnpairedPatches` (LR-only patches of a target domain, for PDD). ``sample_batch(step, B)``
is a pure function of ``(seed, step)``, so a trainer resumes at any step without iterator state.
:func:`eval_pairs` yields whole test images as (name, LR, HR) for evaluation.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from .errors import DatasetError
from .io import read_image

DATASETS = ("photos", "text", "textures")
SPLITS = ("train", "test")

# ----------------------------------------------------------------------------- photos

# name -> (installed package, file inside the package folder, what it shows)
PHOTO_SOURCES: dict[str, tuple[str, str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png", "portrait of astronaut Eileen Collins (NASA)"),
    "chelsea": ("skimage", "data/chelsea.png", "Chelsea the cat"),
    "china": ("sklearn", "datasets/images/china.jpg", "Summer Palace, Beijing: roofs, trees, sky"),
    "coffee": ("skimage", "data/coffee.png", "a cup of coffee on a saucer"),
    "rocket": ("skimage", "data/rocket.jpg", "Falcon 9 rocket on the launch pad"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg", "Hubble eXtreme Deep Field"),
    "immunohistochemistry": ("skimage", "data/ihc.png", "stained tissue under a microscope"),
    "retina": ("skimage", "data/retina.jpg", "human retina (fundus photograph)"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png", "motorcycle, left stereo view"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png", "motorcycle, right stereo view"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "a flower close-up"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "portrait of Grace Hopper"),
}

PHOTO_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
              "motorcycle_left", "motorcycle_right", "flower", "grace_hopper"),
    "test": ("astronaut", "chelsea", "china"),  # a portrait, an animal, a scene
}

# ----------------------------------------------------------------------------- text

TEXT_SIZE = 192
"""Side of a rendered text image, in pixels (square)."""

N_TEXT = 24
"""Rendered text images per split when ``load_images('text', ..., n=None)``."""

# (family, weight, style) as matplotlib's font manager names them; all ship in mpl-data/fonts/ttf.
TEXT_FONTS: tuple[tuple[str, str, str], ...] = (
    ("DejaVu Sans", "normal", "normal"), ("DejaVu Sans", "bold", "normal"),
    ("DejaVu Sans", "normal", "oblique"), ("DejaVu Sans", "bold", "oblique"),
    ("DejaVu Serif", "normal", "normal"), ("DejaVu Serif", "bold", "normal"),
    ("DejaVu Serif", "normal", "italic"), ("DejaVu Serif", "bold", "italic"),
    ("DejaVu Sans Mono", "normal", "normal"), ("DejaVu Sans Mono", "bold", "normal"),
    ("STIXGeneral", "normal", "normal"), ("STIXGeneral", "bold", "normal"),
    ("STIXGeneral", "normal", "italic"), ("STIXGeneral", "bold", "italic"),
    ("cmr10", "normal", "normal"), ("cmb10", "normal", "normal"), ("cmti10", "normal", "normal"),
    ("cmss10", "normal", "normal"), ("cmtt10", "normal", "normal"),
)

_WORDS = """
about above across after again air always animal answer apple area autumn back ball bank
basket beach bell between bird black blue boat body book bottle bread bridge bright brother
brown build candle carry castle center chair change cherry child circle city clean clock cloud
coast color copper corner cotton country course daily dance desert dinner doctor dollar double
dragon dream driver early earth engine evening example family farmer father feather field finger
flower forest friend garden glass golden grain green guitar hammer harbor heavy height history
honey horse island jacket journey kettle kitchen ladder lemon letter light limit linen listen
little market meadow metal middle minute mirror morning mother mountain music narrow nature
needle night north number ocean orange paper pencil people picture planet pocket purple quarter
question quick rabbit rain river road rocket round saddle salt science season secret shadow
silver simple sister small smooth south spring square station stone storm story street strong
summer sunset table thunder ticket tiger timber today tower travel valley velvet village violet
voice water weather window winter wooden yellow yesterday zebra
""".split()
# Disjoint word lists: even positions for train, odd for test.
TEXT_WORDS = {"train": tuple(_WORDS[0::2]), "test": tuple(_WORDS[1::2])}
_SPLIT_ID = {"train": 0, "test": 1}

# ----------------------------------------------------------------------------- textures

TEXTURES = ("brick", "grass", "gravel")


def _check(name: str, split: str) -> None:
    if name not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}; valid data sets are: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} for data set {name!r}; valid splits are: "
                           f"{', '.join(SPLITS)}")


def _package_file(package: str, rel: str) -> str:
    """Path of a data file shipped inside an installed package.

    The package is located, not imported (importing scikit-learn's data sets takes seconds), and
    its download helpers are never called: nothing here can touch the network.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = {"skimage": "scikit-image", "sklearn": "scikit-learn"}.get(package, package)
        raise DatasetError(f"package {package!r} is not installed, so its bundled image '{rel}' is "
                           f"unavailable; install it with: pip install {dist}")
    path = os.path.join(list(spec.submodule_search_locations)[0], *rel.split("/"))
    if not os.path.isfile(path):
        raise DatasetError(f"the bundled image '{rel}' of package {package!r} is missing (looked at "
                           f"'{path}'); reinstall that package (pip install --force-reinstall) to "
                           "restore its sample data")
    return path


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    package, rel, _ = PHOTO_SOURCES[name]
    img = read_image(_package_file(package, rel))
    img.setflags(write=False)
    return img


@functools.lru_cache(maxsize=None)
def _texture(name: str, split: str) -> np.ndarray:
    gray = read_image(_package_file("skimage", f"data/{name}.png"))
    half = gray.shape[1] // 2
    img = np.ascontiguousarray(gray[:, :half] if split == "train" else gray[:, half:])
    img.setflags(write=False)
    return img


# ----------------------------------------------------------------------------- text rendering

@functools.lru_cache(maxsize=None)
def _font_path(family: str, weight: str, style: str) -> str:
    """The bundled mpl-data font file for (family, weight, style); system fonts are never used."""
    import matplotlib
    from matplotlib import font_manager

    bundled = os.path.realpath(os.path.join(matplotlib.get_data_path(), "fonts", "ttf"))
    prop = font_manager.FontProperties(family=family, weight=weight, style=style)
    try:
        path = font_manager.findfont(prop, fallback_to_default=False)
    except ValueError:
        path = ""
    if os.path.dirname(os.path.realpath(path)) != bundled:
        # a system font of the same name won the match: take matplotlib's own file instead
        want = font_manager.weight_dict.get(weight, 400)
        hits = [f.fname for f in font_manager.fontManager.ttflist
                if f.name == family and f.style == style and f.weight == want
                and os.path.dirname(os.path.realpath(f.fname)) == bundled]
        if not hits:
            raise DatasetError(f"matplotlib's bundled font {family!r} ({weight}, {style}) was not "
                               f"found in '{bundled}'; reinstall matplotlib")
        path = sorted(hits)[0]
    return path


def _luma(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _text_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random background and text colours whose luma differs by at least 0.35 (readable)."""
    while True:
        bg, fg = rng.random(3), rng.random(3)
        if abs(_luma(bg) - _luma(fg)) >= 0.35:
            return bg, fg


def render_text(seed: int, split: str, index: int, size: int = TEXT_SIZE) -> np.ndarray:
    """Render text image ``index`` of ``split`` for ``seed``: a pure function of its arguments.

    A font from :data:`TEXT_FONTS`, a size of 9-22 pt at 100 dpi (12-31 px), two to six lines of
    words from the split's word list (capitalised at random) and numbers, random background and
    text colours with enough contrast, drawn with antialiasing by Agg with matplotlib's default
    hinting (fixed here, so a user's rcParams cannot change the pixels).
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    rng = np.random.default_rng([int(seed), _SPLIT_ID[split], int(index)])
    family, weight, style = TEXT_FONTS[rng.integers(len(TEXT_FONTS))]
    font = FontProperties(fname=_font_path(family, weight, style))
    points = float(rng.uniform(9.0, 22.0))
    px = points * 100 / 72  # font size in pixels at 100 dpi
    max_lines = max(1, int(0.88 * size / (1.25 * px)))
    n_lines = min(int(rng.integers(2, 7)), max_lines)
    max_chars = max(4, int(0.9 * size / (0.58 * px)))  # average advance ~0.58 em
    words = TEXT_WORDS[split]
    lines = []
    for _ in range(n_lines):
        line = ""
        while True:
            if rng.random() < 0.2:
                word = str(int(rng.integers(0, 10 ** int(rng.integers(1, 5)))))
            else:
                word = words[rng.integers(len(words))]
                word = word.capitalize() if rng.random() < 0.3 else word
            candidate = f"{line} {word}" if line else word
            if line and len(candidate) > max_chars:
                break
            line = candidate
        lines.append(line)
    bg, fg = _text_colors(rng)
    x = float(rng.uniform(0.02, 0.08))
    y = 1.0 - float(rng.uniform(0.02, 0.08))

    fixed = {k: matplotlib.rcParamsDefault[k] for k in
             ("text.antialiased", "text.hinting", "text.hinting_factor", "text.kerning_factor")}
    with matplotlib.rc_context(fixed):
        fig = Figure(figsize=(size / 100, size / 100), dpi=100, facecolor=tuple(bg))
        canvas = FigureCanvasAgg(fig)
        fig.text(x, y, "\n".join(lines), fontproperties=font, fontsize=points, color=tuple(fg),
                 ha="left", va="top", linespacing=1.25)
        canvas.draw()
        img = np.array(canvas.buffer_rgba())[..., :3]
    return img


@functools.lru_cache(maxsize=8)
def _text_set(split: str, n: int, seed: int) -> tuple[np.ndarray, ...]:
    out = []
    for i in range(n):
        img = render_text(seed, split, i)
        img.setflags(write=False)
        out.append(img)
    return tuple(out)


# ----------------------------------------------------------------------------- public loaders

def load_images(name: str, split: str, *, n: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """The embedded data set ``name`` (photos / text / textures), split ``train`` or ``test``.

    Returns ``{image name: H x W x 3 uint8 RGB array}`` in a fixed order. Images are read or
    rendered on the first call and cached in memory; every call returns fresh copies, so a caller
    may modify them freely. ``n``: number of images (text: how many to render, default
    :data:`N_TEXT`; photos and textures: the first ``n`` of the fixed list, default all).
    ``seed`` only affects ``text``. Unknown names or splits raise
    :class:`~srlib.errors.DatasetError` listing the valid ones.
    """
    _check(name, split)
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise DatasetError(f"n must be a positive number of images, got {n!r}")
    if name == "text":
        count = N_TEXT if n is None else int(n)
        images = _text_set(split, count, int(seed))
        return {f"text_{split}_{i:03d}": img.copy() for i, img in enumerate(images)}
    names = PHOTO_SPLITS[split] if name == "photos" else TEXTURES
    if n is not None and n > len(names):
        raise DatasetError(f"data set {name!r} has only {len(names)} {split} images, asked for n={n}")
    names = names if n is None else names[:n]
    if name == "photos":
        return {k: _photo(k).copy() for k in names}
    return {k: _texture(k, split).copy() for k in names}


def dataset_info(n_text: int | None = None) -> list[dict]:
    """One row per (data set, split): name, split, count, sizes (H x W), source. For notebook 00.

    The rows load (and cache) every image; pass them to ``srlib.report.save_table``.
    """
    sources = {
        "photos": "bundled sample images of scikit-image, scikit-learn and matplotlib",
        "text": f"rendered with matplotlib's bundled fonts ({TEXT_SIZE}x{TEXT_SIZE}, seed 0)",
        "textures": "scikit-image brick, grass, gravel (grayscale); left half train, right half test",
    }
    rows = []
    for name in DATASETS:
        for split in SPLITS:
            images = load_images(name, split, n=n_text if name == "text" else None)
            shapes = sorted({img.shape[:2] for img in images.values()}, key=lambda s: s[0] * s[1])
            sizes = (f"{shapes[0][0]}x{shapes[0][1]}" if len(shapes) == 1 else
                     f"{shapes[0][0]}x{shapes[0][1]} .. {shapes[-1][0]}x{shapes[-1][1]}")
            rows.append({"name": name, "split": split, "count": len(images), "sizes": sizes,
                         "images": ", ".join(images) if name != "text" else f"text_{split}_000 ..",
                         "source": sources[name]})
    return rows


# ----------------------------------------------------------------------------- patch samplers

Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def bicubic(scale: int) -> Degrade:
    """The default degradation: MATLAB bicubic downscale by ``scale``, clamped to [0, 1].

    ``srlib.degradations.bicubic_degrade`` (= ``imresize(hr, 1 / scale)``); the rng is unused.
    """
    from .degradations import bicubic_degrade

    def degrade(hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(bicubic_degrade(hr, scale), 0.0, 1.0)

    degrade.__name__ = f"bicubic_x{scale}"
    return degrade


def _as_named_images(images, what: str) -> list[tuple[str, np.ndarray]]:
    """Accept a {name: image} mapping or a sequence of images; check each is H x W x 3 uint8."""
    if isinstance(images, Mapping):
        items = [(str(k), v) for k, v in images.items()]
    elif (isinstance(images, Sequence) and not isinstance(images, (str, bytes))) or (
            isinstance(images, np.ndarray) and images.ndim == 4):
        items = [(f"image[{i}]", v) for i, v in enumerate(images)]
    else:
        raise DatasetError(f"{what}: images must be a dict {{name: H x W x 3 uint8 array}} or a list "
                           f"of such arrays, got {type(images).__name__}")
    if not items:
        raise DatasetError(f"{what}: no images given")
    out = []
    for name, img in items:
        arr = np.asarray(img)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise DatasetError(f"{what}: image {name!r} has shape {arr.shape} and dtype {arr.dtype}; "
                               "expected H x W x 3 uint8 RGB (use srlib.io.read_image, or "
                               "np.repeat(gray[..., None], 3, 2) for grayscale)")
        out.append((name, arr))
    return out


def _check_int(value, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DatasetError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _augment(patch: np.ndarray, hflip: bool, vflip: bool, rot90: bool) -> np.ndarray:
    """BasicSR's ``augment``: horizontal flip, vertical flip, then transpose (the 8 dihedral maps)."""
    if hflip:
        patch = patch[:, ::-1]
    if vflip:
        patch = patch[::-1]
    if rot90:
        patch = patch.transpose(1, 0, 2)
    return patch


class _PatchSampler(torch.utils.data.Dataset):
    """Shared machinery: pick an image, crop (on a grid of ``align``), augment, degrade."""

    def __init__(self, images, crop: int, align: int, out: int, degrade: Degrade | None,
                 augment: bool, seed: int, epoch_size: int, what: str):
        self.images = _as_named_images(images, what)
        self.crop, self.align, self.out = crop, align, out
        self.degrade, self.augment = degrade, bool(augment)
        self.seed = _check_int(seed, "seed", 0)
        self.epoch_size = _check_int(epoch_size, "epoch_size")
        for name, img in self.images:
            h, w = img.shape[:2]
            if h < crop or w < crop:
                raise DatasetError(f"{what}: image {name!r} is {h}x{w}, smaller than the {crop}x{crop} "
                                   "patch it must yield; drop it, upscale it, or use a smaller patch")

    def _rng(self, *key: int) -> np.random.Generator:
        for k in key:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
                raise DatasetError(f"step and index must be integers >= 0, got {k!r}")
        return np.random.default_rng([self.seed, *map(int, key)])

    def _patch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """One sample: (degraded patch or None, clean patch), float32 H x W x 3 in [0, 1]."""
        name, img = self.images[int(rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        top = self.align * int(rng.integers((h - self.crop) // self.align + 1))
        left = self.align * int(rng.integers((w - self.crop) // self.align + 1))
        flips = rng.random(3) < 0.5  # drawn even when augment=False: same crops either way
        patch = img[top:top + self.crop, left:left + self.crop]
        if self.augment:
            patch = _augment(patch, *flips)
        clean = np.ascontiguousarray(patch, dtype=np.float32) / np.float32(255.0)
        if self.degrade is None:
            return None, clean
        low = np.asarray(self.degrade(clean, rng), dtype=np.float32)
        if low.shape != (self.out, self.out, 3):
            raise DatasetError(f"degrade {getattr(self.degrade, '__name__', self.degrade)!r} returned "
                               f"shape {low.shape} for a {self.crop}x{self.crop} patch; expected "
                               f"({self.out}, {self.out}, 3)")
        return np.clip(low, 0.0, 1.0), clean

    def __len__(self) -> int:
        return self.epoch_size

    @staticmethod
    def _chw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


class PairedPatches(_PatchSampler):
    """Random (LR, HR) training patches made on the fly from HR images.

    Each sample: pick an image uniformly, crop an ``hr_patch`` x ``hr_patch`` HR patch whose corner
    lies on the ``scale`` grid (so it matches the LR pixel grid of the whole image), apply BasicSR's
    augmentation (horizontal flip, vertical flip, 90-degree rotation by transpose, each with
    probability 1/2) when ``augment``, then make the LR patch from the *augmented* HR patch with
    ``degrade(hr, rng)`` (so LR and HR always agree), clamped to [0, 1].

    Args:
        images: ``{name: H x W x 3 uint8}`` or a list of such arrays; each at least ``hr_patch``
            on both sides (else :class:`~srlib.errors.DatasetError` naming the image).
        scale: SR factor; ``hr_patch`` must be a multiple of it.
        degrade: ``f(hr float32 H x W x 3 in [0, 1], rng) -> lr float (hr_patch/scale)^2 x 3``.
            Default :func:`bicubic` (MATLAB bicubic). Random degradations must draw from ``rng``.
        seed: with the step, the only source of randomness.
        epoch_size: ``len(self)``, a nominal epoch for ``DataLoader`` use.

    ``sample_batch(step, B)`` is a pure function of ``(seed, step, B)``: sample ``b`` of a batch
    uses the generator ``default_rng([seed, step, b])``, so a resumed trainer gets exactly the
    batch it would have had, and ``sample_batch(s, 8)[:4]`` equals ``sample_batch(s, 4)``.
    ``self[i]`` is a pure function of ``(seed, i)`` too (its own stream).
    """

    def __init__(self, images, scale: int, hr_patch: int, *, degrade: Degrade | None = None,
                 augment: bool = True, seed: int = 0, epoch_size: int = 1000):
        scale = _check_int(scale, "scale")
        hr_patch = _check_int(hr_patch, "hr_patch")
        if hr_patch % scale:
            raise DatasetError(f"hr_patch {hr_patch} is not a multiple of scale {scale}; use "
                               f"{hr_patch - hr_patch % scale or scale} or {hr_patch + scale - hr_patch % scale}")
        self.scale, self.hr_patch, self.lr_patch = scale, hr_patch, hr_patch // scale
        super().__init__(images, hr_patch, scale, hr_patch // scale,
                         bicubic(scale) if degrade is None else degrade, augment, seed, epoch_size,
                         "PairedPatches")

    def sample_batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr, hr)``: float32 tensors ``(B, 3, hr_patch/scale, ...)`` and ``(B, 3, hr_patch, ...)``."""
        batch_size = _check_int(batch_size, "batch_size")
        pairs = [self._patch(self._rng(0, step, b)) for b in range(batch_size)]
        lr = torch.from_numpy(np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2).copy())
        hr = torch.from_numpy(np.stack([p[1] for p in pairs]).transpose(0, 3, 1, 2).copy())
        return lr, hr

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.epoch_size:
            raise IndexError(f"index {index} out of range for epoch_size {self.epoch_size}")
        lr, hr = self._patch(self._rng(1, index))
        return self._chw(lr), self._chw(hr)


class UnpairedPatches(_PatchSampler):
    """Random LR-only patches of a target domain (PDD's unlabelled real-world inputs).

    Two ways to use it:

    - ``degrade=None``: the images are already low-resolution target-domain images; each sample is
      a ``patch`` x ``patch`` crop of one of them (augmented like :class:`PairedPatches`).
    - ``degrade=f``: the images are clean HR images; each sample crops ``patch * scale`` HR pixels
      (corner on the ``scale`` grid), augments, and returns ``f(crop, rng)`` clamped to [0, 1],
      which must be ``patch`` x ``patch`` (e.g. the course's hidden real-world degradation).

    ``sample_batch(step, B)`` returns one float32 tensor ``(B, 3, patch, patch)``, a pure function of
    ``(seed, step)`` exactly as for :class:`PairedPatches`. ``self[i]`` returns one ``(3, p, p)``.
    """

    def __init__(self, images, patch: int, *, degrade: Degrade | None = None, scale: int = 4,
                 augment: bool = True, seed: int = 0, epoch_size: int = 1000):
        patch = _check_int(patch, "patch")
        scale = _check_int(scale, "scale")
        self.patch, self.scale = patch, scale
        crop, align = (patch, 1) if degrade is None else (patch * scale, scale)
        super().__init__(images, crop, align, patch, degrade, augment, seed, epoch_size,
                         "UnpairedPatches")

    def _one(self, rng: np.random.Generator) -> np.ndarray:
        low, clean = self._patch(rng)
        return clean if low is None else low

    def sample_batch(self, step: int, batch_size: int) -> torch.Tensor:
        """Float32 tensor ``(B, 3, patch, patch)`` in [0, 1]."""
        batch_size = _check_int(batch_size, "batch_size")
        batch = np.stack([self._one(self._rng(0, step, b)) for b in range(batch_size)])
        return torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.epoch_size:
            raise IndexError(f"index {index} out of range for epoch_size {self.epoch_size}")
        return self._chw(self._one(self._rng(1, index)))


# ----------------------------------------------------------------------------- evaluation

def eval_pairs(images, scale: int, *, degrade: Degrade | None = None, max_side: int | None = None,
               seed: int = 0) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(name, lr_uint8, hr_uint8)`` for whole test images, in order.

    HR is mod-cropped to multiples of ``scale`` (bottom/right rows dropped, as BasicSR's
    ``mod_crop``); with ``max_side`` it is then centre-cropped so no side exceeds ``max_side``
    rounded down to a multiple of ``scale``. LR is ``degrade(hr float, rng)`` (default
    :func:`bicubic`), clamped and rounded to uint8 (half up, as MATLAB), exactly what a stored
    benchmark LR image holds. ``rng`` for image ``i`` is ``default_rng([seed, i])``. An image
    smaller than ``scale`` raises :class:`~srlib.errors.DatasetError`.
    """
    scale = _check_int(scale, "scale")
    if max_side is not None:
        max_side = _check_int(max_side, "max_side", scale)
    items = _as_named_images(images, "eval_pairs")
    for name, img in items:  # checked now, not at the first next()
        if img.shape[0] < scale or img.shape[1] < scale:
            raise DatasetError(f"eval_pairs: image {name!r} is {img.shape[0]}x{img.shape[1]}, smaller "
                               f"than the scale factor {scale}; it has no LR pixel")
    return _eval_pairs(items, scale, bicubic(scale) if degrade is None else degrade, max_side, seed)


def _eval_pairs(items, scale, degrade, max_side, seed):
    for i, (name, img) in enumerate(items):
        h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
        top = left = 0
        if max_side is not None:
            side = max_side - max_side % scale
            top, left = (h - min(h, side)) // 2, (w - min(w, side)) // 2
            h, w = min(h, side), min(w, side)
        hr = np.ascontiguousarray(img[top:top + h, left:left + w])
        low = np.asarray(degrade(hr.astype(np.float32) / np.float32(255.0),
                                 np.random.default_rng([int(seed), i])))
        if low.shape != (h // scale, w // scale, 3):
            raise DatasetError(f"eval_pairs: degrade returned shape {low.shape} for {name!r} "
                               f"({h}x{w}); expected ({h // scale}, {w // scale}, 3)")
        lr = np.floor(np.clip(low.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        yield name, lr, hr


__all__ = ["DATASETS", "SPLITS", "PHOTO_SOURCES", "PHOTO_SPLITS", "TEXT_SIZE", "N_TEXT", "TEXT_FONTS",
           "TEXTURES", "load_images", "dataset_info", "render_text", "bicubic", "PairedPatches",
           "UnpairedPatches", "eval_pairs"]

if __name__ == "__main__":  # python -m srlib.data download NAME: the paper profile's data sets
    import sys

    from .datasets import main

    sys.exit(main(prog="python -m srlib.data"))
