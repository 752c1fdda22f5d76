"""Images with category labels, for semantic SR (notebook 04).

Park (2024) trains one SR generator on several kinds of content at once and lets a
category-aware discriminator learn what each kind should look like. The course's categories
come from the embedded data of :mod:`srlib.data`, each with its own fixed train/test split:

- ``text`` (label 0): rendered text; train and test use different random streams and
  disjoint word lists, so no string is shared;
- ``photos`` (label 1): the bundled photographs, 9 train / 3 test, no image in both;
- ``textures`` (label 2): brick, grass, gravel; train is the left half of each, test the right
  half, so no pixel is shared;
- ``faces``: only at the paper profile (the paper's experiments used text and face sets). No
  face set ships with the installed packages; it is LFW from the data root, split by identity
  (``python -m srlib.data download faces``; :func:`srlib.paper_data.load_faces`). Asking for it
  without the download raises a :class:`~srlib.errors.DatasetError` naming that command.

:class:`CategoryPatches` samples balanced training batches ``(lr, hr, labels)``: sample ``b``
of a batch comes from category ``b % K``, so every category is seen equally often whatever its
number of images. Like :class:`srlib.data.PairedPatches`, ``sample_batch(step, B)`` is a pure
function of ``(seed, step, B)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from . import data
from .errors import DatasetError
from .io import read_image

CATEGORIES = ("text", "photos", "textures")
"""The offline categories, in label order (smoke and standard profiles)."""

PAPER_CATEGORIES = ("text", "faces", "photos", "textures")
"""The paper profile adds faces (needs the downloaded face set)."""

KNOWN = ("text", "photos", "textures", "faces")


def categories_for_profile(profile: str) -> tuple[str, ...]:
    """Categories used at ``profile``: faces only at ``paper``."""
    from .profiles import get_profile

    return PAPER_CATEGORIES if get_profile(profile).name == "paper" else CATEGORIES


def _check_categories(categories: Sequence[str]) -> tuple[str, ...]:
    cats = tuple(categories)
    if not cats:
        raise DatasetError("no categories given; use e.g. ('text', 'photos', 'textures')")
    unknown = [c for c in cats if c not in KNOWN]
    if unknown:
        raise DatasetError(f"unknown categories {unknown}; valid categories are {', '.join(KNOWN)}")
    if len(set(cats)) != len(cats):
        raise DatasetError(f"categories {cats} list a category twice")
    return cats


def _faces(split: str, faces_dir: str | os.PathLike | None) -> dict[str, np.ndarray]:
    """The face category: LFW from the data root (``python -m srlib.data download faces``), split
    by identity (:func:`srlib.paper_data.load_faces`), or the images of ``faces_dir/<split>``."""
    if faces_dir is None:
        from .paper_data import load_faces

        try:
            return load_faces(split)
        except DatasetError as exc:
            raise DatasetError(
                f"the 'faces' category is a paper-profile data set; no face set ships with the installed "
                f"packages ({exc}). Use the offline categories {', '.join(CATEGORIES)} at the smoke and "
                "standard profiles.") from exc
    folder = Path(faces_dir) / split
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise DatasetError(f"the 'faces' category needs face images in {folder} (none found)")
    return {p.stem: read_image(str(p)) for p in files}


def category_images(category: str, split: str, *, n_text: int | None = None, seed: int = 0,
                    faces_dir=None) -> dict[str, np.ndarray]:
    """``{name: H x W x 3 uint8}`` of one category's ``train`` or ``test`` split."""
    _check_categories([category])
    if split not in data.SPLITS:
        raise DatasetError(f"unknown split {split!r}; valid splits are {', '.join(data.SPLITS)}")
    if category == "faces":
        return _faces(split, faces_dir)
    return data.load_images(category, split, n=n_text if category == "text" else None, seed=seed)


def split_sources(categories: Sequence[str] = CATEGORIES, *, n_text: int = data.N_TEXT,
                  seed: int = 0) -> dict[str, dict[str, set]]:
    """What each split of each category is made of, to check that train and test are disjoint.

    ``{category: {"train": set, "test": set}}`` of source identifiers: photo names; for text
    the word list each split draws from; for textures ``(texture, column)`` pairs of the
    source image's pixel columns each split uses. (Rendered text also holds random numbers,
    drawn from the same digits in both splits; the words, and so every line, differ.)
    """
    out: dict[str, dict[str, set]] = {}
    for cat in _check_categories(categories):
        if cat == "photos":
            out[cat] = {s: set(data.PHOTO_SPLITS[s]) for s in data.SPLITS}
        elif cat == "text":
            out[cat] = {s: set(data.TEXT_WORDS[s]) for s in data.SPLITS}
        elif cat == "textures":
            out[cat] = {}
            for s in data.SPLITS:
                cols = set()
                for name in data.TEXTURES:
                    width = 2 * data.load_images("textures", "train")[name].shape[1]
                    half = width // 2
                    rng = range(0, half) if s == "train" else range(half, width)
                    cols.update((name, c) for c in rng)
                out[cat][s] = cols
        else:
            out[cat] = {s: set(_faces(s, None)) for s in data.SPLITS}
    return out


class CategoryPatches:
    """Balanced ``(lr, hr, labels)`` training batches from several categories.

    Args:
        images: ``{category: {name: H x W x 3 uint8}}`` in label order (label = position).
        scale, hr_patch: as :class:`srlib.data.PairedPatches` (bicubic LR, BasicSR augmentation).
        seed: with the step, the only source of randomness; category ``k`` samples with its own
            stream ``seed * 16 + k``.

    ``sample_batch(step, B)``: sample ``b`` belongs to category ``b % K``; returns float32
    ``lr (B, 3, p, p)``, ``hr (B, 3, p*scale, p*scale)`` and int64 ``labels (B,)``.
    """

    def __init__(self, images: Mapping[str, Mapping[str, np.ndarray]], scale: int, hr_patch: int,
                 *, seed: int = 0, augment: bool = True):
        if not isinstance(images, Mapping) or not images:
            raise DatasetError("CategoryPatches needs {category: {name: image}} with at least one "
                               "category")
        if len(images) > 16:
            raise DatasetError(f"at most 16 categories are supported, got {len(images)}")
        self.categories = tuple(images)
        self.samplers = [data.PairedPatches(images[c], scale, hr_patch, seed=int(seed) * 16 + k,
                                            augment=augment)
                         for k, c in enumerate(self.categories)]

    def sample_batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = len(self.categories)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise DatasetError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        labels = torch.arange(batch_size) % k
        lr_parts, hr_parts = {}, {}
        for c in range(k):
            n = int((labels == c).sum())
            if n:
                lr_parts[c], hr_parts[c] = self.samplers[c].sample_batch(step, n)
        used = {c: 0 for c in lr_parts}
        lrs, hrs = [], []
        for b in range(batch_size):
            c = b % k
            lrs.append(lr_parts[c][used[c]])
            hrs.append(hr_parts[c][used[c]])
            used[c] += 1
        return torch.stack(lrs), torch.stack(hrs), labels.long()


def category_eval_pairs(categories: Sequence[str], scale: int, *, max_side: int | None,
                        n_text: int, seed: int = 0, faces_dir=None) -> dict[str, list]:
    """Held-out ``(name, lr, hr)`` pairs per category (:func:`srlib.data.eval_pairs` of the test split).

    Text images are used whole (192 px); photos and textures are centre-cropped to ``max_side``.
    """
    out = {}
    for cat in _check_categories(categories):
        imgs = category_images(cat, "test", n_text=n_text, seed=seed, faces_dir=faces_dir)
        out[cat] = list(data.eval_pairs(imgs, scale, max_side=None if cat == "text" else max_side))
    return out


__all__ = ["CATEGORIES", "PAPER_CATEGORIES", "categories_for_profile", "category_images",
           "split_sources", "CategoryPatches", "category_eval_pairs"]
