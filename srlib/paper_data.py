"""Loaders for the paper profile's data sets (DIV2K, Flickr2K, Set5/Set14/B100/Urban100, RealSR,
DRealSR, LFW faces), read from the folders that ``python -m srlib.data download`` fills.

Splits are the ``pairs`` keys of ``data/manifests.json``: ``div2k`` has ``train`` and ``valid``,
``flickr2k`` ``train``, the benchmarks and ``drealsr`` ``test``, ``realsr`` ``canon_train``,
``canon_test``, ``nikon_train``, ``nikon_test``. An HR image and its LR partner share an id, the
file name without the set's suffix (``0801.png`` / ``0801x4.png`` in DIV2K, ``Canon_001_HR.png`` /
``Canon_001_LR4.png`` in RealSR); an image without its partner is an error naming the file.

Conventions (those of BasicSR's ``PairedImageDataset`` and of the papers' benchmark tables):

- evaluation pairs keep the stored LR image (the benchmarks' LR were made with MATLAB's
  ``imresize``) and crop the HR image to ``scale`` x the LR size from the top-left corner, which is
  the usual mod-crop when ``LR = floor(HR / scale)``; an HR smaller than that is an error;
- :func:`srlib.degradations.modcrop` drops the bottom/right rows so that both sides are multiples of ``scale``
  (for HR-only sets whose LR is made on the fly);
- PSNR/SSIM are then computed on Y with ``scale`` border pixels cropped (:mod:`srlib.metrics`).

Training patches (:class:`FolderPatches`) come from images on disk: each image is decoded once
into an uncompressed ``.npy`` under ``<root>/.srlib/decoded/`` and memory-mapped afterwards, so a
batch of crops touches only the crop's bytes instead of decoding 2K PNGs at every step, and
nothing holds all of DIV2K in RAM. ``sample_batch(step, B)`` is a pure function of
``(seed, step, B)``, as :class:`srlib.data.PairedPatches` (the trainer's exact resume needs it).

A data set that is not installed (no completion marker, see :mod:`srlib.datasets`) raises
:class:`~srlib.errors.DatasetError` naming the command that downloads it.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from . import datasets as ds_mod
from .data import _augment, bicubic
from .degradations import modcrop
from .errors import DatasetError
from .io import read_image

Pair = tuple[str, np.ndarray, np.ndarray]  # (id, LR uint8, HR uint8), as srlib.data.eval_pairs yields
Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]

FACES_TEST_EVERY = 10
"""LFW split: every 10th person in name order is a test identity (no person in both splits)."""


# ============================================================================================
# Presence
# ============================================================================================
def _download_command(ds, parts, root: Path) -> str:
    needed = ds.files_for(parts) if ds.files else ()
    part = f" --part {' '.join(sorted(parts))}" if parts and len(needed) < len(ds.files) else ""
    where = "" if root == ds_mod.data_root(None) else f" --root {root}"
    return f"{ds_mod.COMMAND} download {ds.name}{part}{where}"


def require(name: str, parts: Iterable[str] | None = None, root=None):
    """The manifest entry of ``name`` and the data root, once ``parts`` are installed there.

    Raises DatasetError saying how to get what is missing: the download command, or the manual
    steps for data sets without a direct download, or ``check`` for data put in place by hand.
    """
    ds = ds_mod.get(name)
    root = ds_mod.data_root(root)
    want = list(parts) if parts is not None else list(ds.layout)
    missing = [p for p in want if p not in ds_mod.installed_parts(ds, root)]
    if not missing:
        return ds, root
    present = [p for p in missing if ds_mod.scan(root, ds.layout[p])]
    check_cmd = f"{ds_mod.COMMAND} check {ds.name}{'' if root == ds_mod.data_root(None) else f' --root {root}'}"
    if present and not ds.files:
        how = (f"'{root / ds.layout[present[0]].dir}' has images but is not marked complete: run "
               f"`{check_cmd}` to verify the layout")
    elif present:
        how = (f"'{root / ds.layout[present[0]].dir}' has images but is not marked complete (an "
               f"interrupted download or extraction, or data placed by hand): run "
               f"`{_download_command(ds, missing, root)}` to finish it, or `{check_cmd}` for data you "
               "placed yourself")
    elif ds.manual and not ds.files:
        how = ds.manual
    else:
        from .resumable import human_bytes
        size = human_bytes(sum(f.size or 0 for f in ds.files_for(missing))) if all(
            f.size for f in ds.files_for(missing)) else "size not published"
        how = f"download it with `{_download_command(ds, missing, root)}` ({size})"
    raise DatasetError(f"the paper profile needs {ds.name} ({', '.join(missing)}) in '{root}', which "
                       f"is not there: {how}. The smoke and standard profiles need no download")


def _split(ds, split: str) -> dict:
    if split not in ds.pairs:
        raise DatasetError(f"data set {ds.name!r} has no split {split!r}; its splits are: "
                           f"{', '.join(ds.pairs) or 'none (images only)'}")
    return ds.pairs[split]


def _lr_key(ds, split: str, scale: int) -> str:
    spec = _split(ds, split)
    key = spec.get("lr", {}).get(str(int(scale)))
    if key is None:
        raise DatasetError(f"{ds.name} {split} has no x{scale} LR images; scales available: "
                           f"{', '.join('x' + s for s in spec.get('lr', {})) or 'none'}")
    return key


# ============================================================================================
# Paths
# ============================================================================================
def pair_paths(name: str, split: str, scale: int, root=None, *, source: str | None = None
               ) -> list[tuple[str, Path, Path]]:
    """``[(id, hr_path, lr_path)]`` of a split at ``scale``, sorted by id; every HR has its LR.

    ``source``: only ids that start with it, case-insensitively (DRealSR's camera: ``"panasonic"``,
    ``"olympus"``; PDD reports each source separately).
    """
    ds = ds_mod.get(name)
    key = _lr_key(ds, split, scale)
    spec = ds.pairs[split]
    ds, root = require(name, [key] + ([spec["hr"]] if "hr" in spec else []), root)
    lr_entry = ds.layout[key]
    lrs = ds_mod.scan(root, lr_entry)
    hrs = ds_mod.scan(root, lr_entry, hr=True) if spec.get("same_folder") else ds_mod.scan(
        root, ds.layout[spec["hr"]])
    lonely_hr = sorted(set(hrs) - set(lrs))
    lonely_lr = sorted(set(lrs) - set(hrs))
    if lonely_hr or lonely_lr:
        which = (f"HR image '{hrs[lonely_hr[0]]}' has no x{scale} LR partner" if lonely_hr else
                 f"LR image '{lrs[lonely_lr[0]]}' has no HR partner")
        raise DatasetError(f"{ds.name} {split}: {which} ({len(lonely_hr)} HR and {len(lonely_lr)} LR "
                           "images unpaired); the folder is damaged: download the data set again")
    if not lrs:
        raise DatasetError(f"{ds.name} {split}: no images in '{root / lr_entry.dir}'")
    ids = list(lrs)
    if source is not None:
        ids = [i for i in ids if i.lower().startswith(str(source).lower())]
        if not ids:
            known = sorted({i.split("_")[0].lower() for i in lrs})
            raise DatasetError(f"{ds.name} {split}: no image id starts with {source!r}; the ids start "
                               f"with: {', '.join(known)}")
    return [(i, hrs[i], lrs[i]) for i in ids]


def hr_paths(name: str, split: str, root=None) -> dict[str, Path]:
    """``{id: path}`` of a split's HR images (for HR-only use: degradations made on the fly)."""
    ds = ds_mod.get(name)
    spec = _split(ds, split)
    if spec.get("same_folder"):
        key = next(iter(spec["lr"].values()))
        ds, root = require(name, [key], root)
        return ds_mod.scan(root, ds.layout[key], hr=True)
    ds, root = require(name, [spec["hr"]], root)
    return ds_mod.scan(root, ds.layout[spec["hr"]])


# ============================================================================================
# Whole images
# ============================================================================================
def crop_to_lr(hr: np.ndarray, lr: np.ndarray, scale: int, what: str = "image") -> np.ndarray:
    """The HR image cropped to ``scale`` x the LR size (top-left), BasicSR's test-time convention."""
    h, w = lr.shape[0] * scale, lr.shape[1] * scale
    if hr.shape[0] < h or hr.shape[1] < w:
        raise DatasetError(f"{what}: HR is {hr.shape[0]}x{hr.shape[1]}, smaller than {scale} x its LR "
                           f"({lr.shape[0]}x{lr.shape[1]}); the pair does not belong together")
    return np.ascontiguousarray(hr[:h, :w])


def _take(items: list, n: int | None, what: str) -> list:
    if n is None:
        return items
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DatasetError(f"n must be a positive number of images, got {n!r}")
    return items[:int(n)]


def load_pairs(name: str, split: str, scale: int, *, root=None, n: int | None = None,
               source: str | None = None) -> list[Pair]:
    """``[(id, lr, hr)]`` uint8 evaluation pairs: stored LR, HR cropped to ``scale`` x LR.

    The format of :func:`srlib.data.eval_pairs`, so :mod:`srlib.recipes.evaluate` scores them as
    they are. ``n``: the first ``n`` pairs by id.
    """
    out = []
    for i, hp, lp in _take(pair_paths(name, split, scale, root, source=source), n, name):
        lr = read_image(lp)
        out.append((i, lr, crop_to_lr(read_image(hp), lr, scale, f"{name} {split} {i}")))
    return out


def load_hr_images(name: str, split: str, *, root=None, n: int | None = None,
                   scale: int | None = None) -> dict[str, np.ndarray]:
    """``{id: HR uint8}`` of a split (mod-cropped to ``scale`` when given)."""
    paths = _take(list(hr_paths(name, split, root).items()), n, name)
    return {i: (modcrop(read_image(p), scale) if scale else read_image(p)) for i, p in paths}


def load_lr_images(name: str, split: str, scale: int, *, root=None, n: int | None = None,
                   source: str | None = None) -> dict[str, np.ndarray]:
    """``{id: LR uint8}`` of a split: a real-world domain's LR images alone (PDD's unlabelled target)."""
    return {i: read_image(lp) for i, _, lp in _take(pair_paths(name, split, scale, root, source=source), n, name)}


def face_paths(split: str, root=None) -> dict[str, Path]:
    """``{id: path}`` of the LFW faces of ``split`` (``train`` / ``test``, disjoint identities)."""
    if split not in ("train", "test"):
        raise DatasetError(f"unknown face split {split!r}; use 'train' or 'test'")
    ds, root = require("faces", ["images"], root)
    paths = ds_mod.scan(root, ds.layout["images"])
    people = sorted({p.parent.name for p in paths.values()})
    test = {person for k, person in enumerate(people) if k % FACES_TEST_EVERY == FACES_TEST_EVERY - 1}
    return {i: p for i, p in paths.items() if (p.parent.name in test) == (split == "test")}


def load_faces(split: str, *, root=None, n: int | None = None, scale: int | None = None) -> dict[str, np.ndarray]:
    """``{id: uint8}`` LFW faces of ``split`` (mod-cropped to ``scale`` when given): notebook 04's
    face category at the paper profile."""
    items = _take(list(face_paths(split, root).items()), n, "faces")
    return {i: (modcrop(read_image(p), scale) if scale else read_image(p)) for i, p in items}


# ============================================================================================
# Training patches from disk
# ============================================================================================
class _Decoded:
    """Decode an image once to ``<cache>/<key>.npy``, then memory-map it (a bounded LRU of maps)."""

    def __init__(self, cache_dir: Path, max_open: int = 256):
        self.cache_dir = Path(cache_dir)
        self.max_open = max_open
        self._open: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, path: Path) -> np.ndarray:
        path = Path(path)
        st = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]
        if key in self._open:
            self._open.move_to_end(key)
            return self._open[key]
        npy = self.cache_dir / f"{key}.npy"
        if not npy.exists():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_dir / f".{key}.{os.getpid()}.tmp.npy"
            np.save(tmp, read_image(path))
            os.replace(tmp, npy)
        arr = np.load(npy, mmap_mode="r")
        self._open[key] = arr
        if len(self._open) > self.max_open:
            self._open.popitem(last=False)
        return arr


class FolderPatches:
    """Random (LR, HR) training patches read from image files, BasicSR's paired random crop.

    Two sources:

    - ``items = [(id, hr_path, lr_path), ...]`` (:func:`pair_paths`): stored LR images (DIV2K's
      bicubic LR, RealSR's camera LR). An ``hr_patch / scale`` LR crop is drawn uniformly and the
      HR crop is the same region at ``scale`` x (corner ``scale`` x the LR corner);
    - ``items = [(id, hr_path, None), ...]`` (:func:`hr_items`): HR only; an HR crop on the
      ``scale`` grid, and LR = ``degrade(hr_crop, rng)`` (default MATLAB bicubic), as
      :class:`srlib.data.PairedPatches` does.

    Both then get the same flips and transpose (BasicSR's ``augment``) when ``augment``. Values
    are float32 in [0, 1], tensors ``(B, 3, h, w)``. Sample ``b`` of step ``s`` uses
    ``default_rng([seed, 0, s, b])``: a pure function of ``(seed, step, b)``.
    """

    def __init__(self, items, scale: int, hr_patch: int, *, degrade: Degrade | None = None,
                 augment: bool = True, seed: int = 0, cache_dir=None, root=None):
        self.items = [(str(i), Path(h), None if lp is None else Path(lp)) for i, h, lp in items]
        if not self.items:
            raise DatasetError("FolderPatches: no images given")
        if any(lp is None for _, _, lp in self.items) and any(lp is not None for _, _, lp in self.items):
            raise DatasetError("FolderPatches: mix of pairs and HR-only images; use one kind per sampler")
        if int(scale) < 1 or int(hr_patch) < 1 or hr_patch % scale:
            raise DatasetError(f"hr_patch {hr_patch} must be a positive multiple of scale {scale}")
        self.scale, self.hr_patch, self.lr_patch = int(scale), int(hr_patch), int(hr_patch) // int(scale)
        self.paired = self.items[0][2] is not None
        self.degrade = None if self.paired else (degrade or bicubic(self.scale))
        self.augment, self.seed = bool(augment), int(seed)
        cache = Path(cache_dir) if cache_dir is not None else ds_mod.state_dir(ds_mod.data_root(root)) / "decoded"
        self._read = _Decoded(cache)

    def __len__(self) -> int:
        return len(self.items)

    def _sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        name, hp, lp = self.items[int(rng.integers(len(self.items)))]
        hr_img = self._read(hp)
        s, p, lp_size = self.scale, self.hr_patch, self.lr_patch
        if self.paired:
            lr_img = self._read(lp)
            lh, lw = lr_img.shape[:2]
            if lh < lp_size or lw < lp_size:
                raise DatasetError(f"LR image '{lp}' is {lh}x{lw}, smaller than the {lp_size}x{lp_size} "
                                   "patch; use a smaller patch")
            if hr_img.shape[0] < lh * s or hr_img.shape[1] < lw * s:
                raise DatasetError(f"HR image '{hp}' is {hr_img.shape[0]}x{hr_img.shape[1]}, smaller than "
                                   f"{s} x its LR ({lh}x{lw})")
            top, left = int(rng.integers(lh - lp_size + 1)), int(rng.integers(lw - lp_size + 1))
            flips = rng.random(3) < 0.5
            lr = np.asarray(lr_img[top:top + lp_size, left:left + lp_size])
            hr = np.asarray(hr_img[top * s:top * s + p, left * s:left * s + p])
            if self.augment:
                lr, hr = _augment(lr, *flips), _augment(hr, *flips)
            return (np.ascontiguousarray(lr, dtype=np.float32) / np.float32(255.0),
                    np.ascontiguousarray(hr, dtype=np.float32) / np.float32(255.0))
        clean = self._hr_crop(hp, hr_img, rng)
        low = np.asarray(self.degrade(clean, rng), dtype=np.float32)
        if low.shape != (lp_size, lp_size, 3):
            raise DatasetError(f"degrade returned shape {low.shape} for a {p}x{p} patch; expected "
                               f"({lp_size}, {lp_size}, 3)")
        return np.clip(low, 0.0, 1.0), clean

    def _hr_crop(self, hp: Path, hr_img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An augmented ``hr_patch`` crop on the ``scale`` grid, float32 in [0, 1]."""
        s, p = self.scale, self.hr_patch
        h, w = hr_img.shape[:2]
        if h < p or w < p:
            raise DatasetError(f"HR image '{hp}' is {h}x{w}, smaller than the {p}x{p} patch")
        top = s * int(rng.integers((h - p) // s + 1))
        left = s * int(rng.integers((w - p) // s + 1))
        flips = rng.random(3) < 0.5
        hr = np.asarray(hr_img[top:top + p, left:left + p])
        if self.augment:
            hr = _augment(hr, *flips)
        return np.ascontiguousarray(hr, dtype=np.float32) / np.float32(255.0)

    @staticmethod
    def _check_step(step, batch_size) -> None:
        if isinstance(step, bool) or int(step) < 0 or int(batch_size) < 1:
            raise DatasetError(f"step must be >= 0 and batch_size >= 1, got {step!r}, {batch_size!r}")

    def sample_hr_batch(self, step: int, batch_size: int) -> torch.Tensor:
        """HR crops alone, ``(B, 3, hr_patch, hr_patch)`` float32, for pipelines that make their own
        LR from them (Real-ESRGAN's second-order pairs); HR-only samplers only. The crops are those
        :meth:`sample_batch` would draw at ``(step, b)``, before any degradation."""
        if self.paired:
            raise DatasetError("sample_hr_batch needs an HR-only sampler (hr_items), not stored pairs")
        self._check_step(step, batch_size)
        crops = []
        for b in range(int(batch_size)):
            rng = np.random.default_rng([self.seed, 0, int(step), b])
            _, hp, _ = self.items[int(rng.integers(len(self.items)))]
            crops.append(self._hr_crop(hp, self._read(hp), rng))
        return torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy())

    def sample_batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr, hr)`` float32 tensors ``(B, 3, hr_patch/scale, ...)`` and ``(B, 3, hr_patch, ...)``."""
        self._check_step(step, batch_size)
        pairs = [self._sample(np.random.default_rng([self.seed, 0, int(step), b])) for b in range(int(batch_size))]
        lr = torch.from_numpy(np.stack([a for a, _ in pairs]).transpose(0, 3, 1, 2).copy())
        hr = torch.from_numpy(np.stack([b for _, b in pairs]).transpose(0, 3, 1, 2).copy())
        return lr, hr


def hr_items(name: str, split: str, root=None) -> list[tuple[str, Path, None]]:
    """HR-only items for :class:`FolderPatches` (LR made on the fly by its ``degrade``)."""
    return [(i, p, None) for i, p in hr_paths(name, split, root).items()]


def training_patches(names: Iterable[str], scale: int, hr_patch: int, *, stored_lr: bool = True,
                     degrade: Degrade | None = None, seed: int = 0, root=None) -> FolderPatches:
    """Patches from the ``train`` splits of ``names`` (``("div2k", "flickr2k")`` is DF2K).

    ``stored_lr``: use the sets' stored bicubic LR (as BasicSR's paired training); otherwise HR
    only, LR = ``degrade`` (default MATLAB bicubic) on the fly.
    """
    items = []
    for name in names:
        items += (pair_paths(name, "train", scale, root) if stored_lr and degrade is None
                  else hr_items(name, "train", root))
    return FolderPatches(items, scale, hr_patch, degrade=degrade, seed=seed, root=root)


TRAIN_SETS: dict[str, tuple[str, ...]] = {"div2k": ("div2k",), "flickr2k": ("flickr2k",),
                                          "df2k": ("div2k", "flickr2k")}
"""Training-set names a recipe config may hold in ``dataset`` at the paper profile (DF2K = DIV2K
train + Flickr2K, ESRGAN's and PDD's training set)."""


def paper_hr_patches(dataset: str, scale: int, hr_patch: int, *, seed: int = 0, root=None) -> FolderPatches:
    """An HR-only sampler of a paper training set (:meth:`FolderPatches.sample_hr_batch`): the
    source of pipelines that degrade HR crops themselves (PDD's generalist, Real-ESRGAN data)."""
    items = [it for name in _train_set(dataset) for it in hr_items(name, "train", root)]
    return FolderPatches(items, scale, hr_patch, seed=seed, root=root)


def _train_set(dataset: str) -> tuple[str, ...]:
    """The data sets a paper training-set name stands for, or a DatasetError listing the names."""
    key = str(dataset).lower()
    if key not in TRAIN_SETS:
        raise DatasetError(f"unknown paper training set {dataset!r}; use one of {', '.join(TRAIN_SETS)}")
    return TRAIN_SETS[key]


def is_paper_set(dataset: str) -> bool:
    """True when ``dataset`` names a downloaded training set (:data:`TRAIN_SETS`), not an embedded one."""
    return str(dataset).lower() in TRAIN_SETS


def paper_patches(dataset: str, scale: int, hr_patch: int, *, seed: int = 0, degrade: Degrade | None = None,
                  root=None) -> FolderPatches:
    """The patch sampler of a recipe whose ``cfg.dataset`` is a paper training set.

    Stored bicubic LR when ``degrade`` is None (the papers' paired training), else HR only with
    ``degrade`` on the fly (Real-ESRGAN-style pipelines). Same ``sample_batch(step, B)`` as
    :class:`srlib.data.PairedPatches`, so a recipe's batch function takes either.
    """
    return training_patches(_train_set(dataset), scale, hr_patch, stored_lr=degrade is None, degrade=degrade,
                            seed=seed, root=root)


__all__ = ["Pair", "TRAIN_SETS", "is_paper_set", "paper_patches", "paper_hr_patches", "require", "pair_paths", "hr_paths", "modcrop", "crop_to_lr", "load_pairs",
           "load_hr_images", "load_lr_images", "face_paths", "load_faces", "FolderPatches", "hr_items",
           "training_patches", "FACES_TEST_EVERY"]
