"""The two domains of notebook 06 (PDD): a labelled source domain and an unlabelled target domain.

Zhang, Lee & Yao, "Pairwise Distance Distillation for Unsupervised Real-World Image
Super-Resolution" (ECCV 2024), Sec. 3.2: the learner has HR images with synthetic LR
counterparts (the *source* domain, here MATLAB bicubic x4) and, separately, LR images of a
*target* domain whose degradation is unknown and whose HR images do not exist. Here the target
domain stands in for a camera: :func:`srlib.degradations.hidden_degradation` applied to photos
that never appear in the source set. The embedded photos are split three ways:

- :data:`SOURCE_IMAGES`: labelled HR photos; their LR is made on the fly (bicubic for the
  specialist and for PDD's supervised loss, Real-ESRGAN's second-order pipeline for the
  generalist);
- :data:`TARGET_IMAGES`: their HR is degraded once by the hidden degradation and then
  *dropped*; training sees only :func:`target_train_lr`, the LR images;
- the course's held-out test photos (``data.PHOTO_SPLITS["test"]``), evaluated in both domains:
  :func:`eval_pairs` ``("source")`` (bicubic LR) and ``("target")`` (hidden-degradation LR).
  Their HR serve only as the ground truth of the metrics.

:class:`MixedBatches` draws each training batch half from each domain (PDD Sec. 4.1: "equal
numbers of labeled and unlabeled inputs") and checks on every call that the target half holds
LR patches only (``lr_t``): there is no key, and no code path, that carries a target HR image.

At the paper profile the domains are the paper's (Sec. 5, "Datasets"): the labelled source is DF2K
(HR with bicubic LR, :func:`srlib.paper_data.paper_patches`), and the target is one source of a
real-world set, each trained separately as PDD does: RealSR v3 Canon or Nikon, DRealSR Panasonic
or Olympus (:data:`TARGETS`). Training sees their ``train`` LR images only; evaluation uses their
``test`` pairs (DRealSR's LR cut into non-overlapping 512 x 512 tiles, as the paper does to fit
memory), and the source domain is scored on DIV2K's validation pairs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np
import torch

from . import data
from .errors import DatasetError

SOURCE_IMAGES: tuple[str, ...] = ("coffee", "rocket", "hubble_deep_field", "retina",
                                  "motorcycle_left", "motorcycle_right")
"""Labelled source domain: HR photos (both motorcycle views, which show one scene, stay here)."""

TARGET_IMAGES: tuple[str, ...] = ("immunohistochemistry", "flower", "grace_hopper")
"""Unlabelled target domain: only their hidden-degradation LR images are ever used for training."""

DOMAINS = ("source", "target")
BATCH_KEYS = frozenset({"lr_s", "hr_s", "lr_t"})

CAMERA = "camera"
"""The simulated target domain: the embedded target photos under the hidden degradation."""

TARGETS: dict[str, tuple[str, str, str, str | None]] = {
    CAMERA: ("photos", "", "", None),
    "realsr_canon": ("realsr", "canon_train", "canon_test", None),
    "realsr_nikon": ("realsr", "nikon_train", "nikon_test", None),
    "drealsr_panasonic": ("drealsr", "train", "test", "panasonic"),
    "drealsr_olympus": ("drealsr", "train", "test", "olympus"),
}
"""Target domains: ``name -> (data set, train split, test split, camera id prefix or None)``.

PDD adapts to each source of RealSR and DRealSR separately and reports DRealSR's Panasonic and
Olympus only ("the others do not have sufficient training samples")."""

DREALSR_TILE = 512
"""DRealSR test LR images are cut into non-overlapping tiles of this side (PDD Sec. 5, Evaluation)."""

SOURCE_EVAL = ("div2k", "valid")
"""The source domain's test pairs at the paper profile: DIV2K validation, stored bicubic LR."""


def default_target(profile) -> str:
    """The target domain a notebook at ``profile`` uses: the simulated camera below the paper
    profile (nothing to download), RealSR v3 Canon at it (the first row of PDD's Tab. 2)."""
    from .profiles import get_profile

    return "realsr_canon" if get_profile(profile).name == "paper" else CAMERA


def check_target(target: str) -> str:
    """``target`` if it names a target domain, else a DatasetError listing them."""
    if target not in TARGETS:
        raise DatasetError(f"unknown target domain {target!r}; use one of {', '.join(TARGETS)} "
                           "('camera' is the simulated one, the others need their data set downloaded)")
    return target


def describe_target(target: str) -> str:
    """One line: what the target domain's LR images are."""
    name, train, test, camera = TARGETS[check_target(target)]
    if target == CAMERA:
        return ("hidden_degradation (simulated camera: defocus + lens blur, bicubic, Poisson-Gaussian "
                "noise, JPEG) of embedded photos")
    what = "RealSR v3" if name == "realsr" else "DRealSR"
    cam = (camera or train.split("_")[0]).capitalize()
    return f"{what} {cam}: LR photographs taken at a shorter focal length (real optics and sensor)"


def source_images() -> dict[str, np.ndarray]:
    """The labelled source-domain HR photos (uint8), disjoint from the target and test photos."""
    train = data.load_images("photos", "train")
    return {k: train[k] for k in SOURCE_IMAGES}


def target_degrade(scale: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """``f(hr float [0,1], rng) -> lr``: the hidden target degradation in the samplers' signature.

    The degradation draws its own randomness (per :mod:`srlib.degradations`); ``rng`` is unused.
    """
    from .degradations import hidden_degradation

    def degrade(hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return hidden_degradation(hr, scale)

    degrade.__name__ = f"hidden_degradation_x{scale}"
    return degrade


def target_train_lr(scale: int, target: str = CAMERA, *, root=None) -> dict[str, np.ndarray]:
    """The unlabelled target-domain training set: LR uint8 images only.

    ``"camera"``: each target photo is mod-cropped to a multiple of ``scale``, degraded once by
    :func:`~srlib.degradations.hidden_degradation`, and its HR is discarded before returning, as
    with a camera whose clean images nobody has (computed once per process, the degradation is
    deterministic; every call returns fresh copies). A real-world ``target``: the LR images of its
    training split, read from the data root (their HR files are never opened).
    """
    from . import paper_data

    name, train, _, camera = TARGETS[check_target(target)]
    if target == CAMERA:
        return {k: v.copy() for k, v in _target_train_lr(int(scale)).items()}
    return paper_data.load_lr_images(name, train, int(scale), root=root, source=camera)


@functools.lru_cache(maxsize=4)
def _target_train_lr(scale: int) -> dict[str, np.ndarray]:
    from .degradations import hidden_degradation, modcrop

    train = data.load_images("photos", "train")
    out = {}
    for name in TARGET_IMAGES:
        lr = hidden_degradation(modcrop(train[name], scale), scale)
        out[name] = np.ascontiguousarray(lr, dtype=np.uint8)
    return out


def eval_pairs(domain: str, scale: int, max_side: int | None = None, *, target: str = CAMERA,
               root=None, n: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Test pairs ``(name, LR uint8, HR uint8)`` of the ``"source"`` or the ``"target"`` domain.

    ``target="camera"``: the held-out embedded photos, with bicubic LR (source) or the hidden
    degradation's LR (target), HR centre-cropped to ``max_side``; both domains show the same
    photos. A real-world ``target``: the source domain is DIV2K's validation pairs and the target
    domain the target's test pairs (stored LR; DRealSR's cut into :data:`DREALSR_TILE` tiles),
    centre-cropped to ``max_side`` HR pixels when given. ``n``: the first ``n`` images by name.
    """
    from . import paper_data

    if domain not in DOMAINS:
        raise DatasetError(f"unknown domain {domain!r}; use 'source' (bicubic) or 'target' "
                           "(the unlabelled real-world domain)")
    name, _, test_split, camera = TARGETS[check_target(target)]
    if target == CAMERA:
        test = data.load_images("photos", "test")
        if n is not None:
            test = dict(list(test.items())[:n])
        degrade = None if domain == "source" else target_degrade(scale)
        return list(data.eval_pairs(test, scale, degrade=degrade, max_side=max_side))
    if domain == "source":
        pairs = paper_data.load_pairs(*SOURCE_EVAL, scale, root=root, n=n)
    else:
        pairs = paper_data.load_pairs(name, test_split, scale, root=root, n=n, source=camera)
        if name == "drealsr":
            pairs = tile_pairs(pairs, scale, DREALSR_TILE)
    return [centre_crop_pair(p, scale, max_side) for p in pairs] if max_side else pairs


def tile_pairs(pairs, scale: int, lr_tile: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Each pair cut into non-overlapping ``lr_tile`` x ``lr_tile`` LR tiles (HR: ``scale`` x),
    row-major from the top-left, the remainder dropped; a side shorter than a tile is kept whole.
    Names get ``_r{row}c{col}``."""
    out = []
    for name, lr, hr in pairs:
        h, w = lr.shape[:2]
        th, tw = min(lr_tile, h), min(lr_tile, w)
        for r in range(h // th):
            for c in range(w // tw):
                out.append((f"{name}_r{r}c{c}", np.ascontiguousarray(lr[r * th:(r + 1) * th, c * tw:(c + 1) * tw]),
                            np.ascontiguousarray(hr[r * th * scale:(r + 1) * th * scale,
                                                    c * tw * scale:(c + 1) * tw * scale])))
    return out


def centre_crop_pair(pair, scale: int, max_side: int | None):
    """A pair centre-cropped to at most ``max_side`` HR pixels a side, on the ``scale`` grid."""
    name, lr, hr = pair
    if not max_side:
        return pair
    side = max(scale, (int(max_side) // scale) * scale)
    h, w = lr.shape[:2]
    lh, lw = min(h, side // scale), min(w, side // scale)
    top, left = (h - lh) // 2, (w - lw) // 2
    return (name, np.ascontiguousarray(lr[top:top + lh, left:left + lw]),
            np.ascontiguousarray(hr[top * scale:(top + lh) * scale, left * scale:(left + lw) * scale]))


class MixedBatches:
    """``batch_fn(step) -> {"lr_s", "hr_s", "lr_t"}``: half labelled source, half unlabelled target.

    Args:
        source: ``{name: HR uint8}`` labelled images, LR made by ``degrade`` (default bicubic); or
            a paired sampler with ``sample_batch(step, B) -> (lr, hr)`` of patch ``lr_patch``
            (:func:`source_patches` at the paper profile).
        target_lr: ``{name: LR uint8}`` unlabelled target-domain images (already low resolution).
        scale, lr_patch: SR factor and LR patch side (source HR patches are ``lr_patch * scale``).
        batch_size: samples *per domain* (the trainer sees ``2 * batch_size`` inputs).
        seed: the batches are a pure function of ``(seed, step)`` (exact resume).

    Every call checks that the target half is ``(B, 3, lr_patch, lr_patch)`` LR patches and that
    the batch holds exactly the keys ``lr_s``, ``hr_s``, ``lr_t``.
    """

    def __init__(self, source, target_lr: Mapping[str, np.ndarray], *,
                 scale: int, lr_patch: int, batch_size: int, seed: int = 0, degrade=None):
        if not target_lr:
            raise DatasetError("MixedBatches needs at least one unlabelled target LR image")
        self.scale, self.lr_patch, self.batch_size = int(scale), int(lr_patch), int(batch_size)
        if hasattr(source, "sample_batch"):  # a paired sampler already (DF2K at the paper profile)
            self.source = source
        else:
            self.source = data.PairedPatches(source, scale, lr_patch * scale, degrade=degrade, seed=seed)
        self.target = data.UnpairedPatches(target_lr, lr_patch, degrade=None, scale=scale,
                                           seed=seed + 1)

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        lr_s, hr_s = self.source.sample_batch(step, self.batch_size)
        lr_t = self.target.sample_batch(step, self.batch_size)
        batch = {"lr_s": lr_s, "hr_s": hr_s, "lr_t": lr_t}
        check_unlabelled(batch, self.lr_patch)
        return batch


def check_unlabelled(batch: Mapping[str, torch.Tensor], lr_patch: int) -> None:
    """Assert that a PDD batch carries no target-domain HR: keys and the target patch size."""
    keys = set(batch)
    if keys != BATCH_KEYS:
        raise AssertionError(f"a PDD batch must hold exactly {sorted(BATCH_KEYS)}, got {sorted(keys)}: "
                             "the target domain is unlabelled, its HR images must never reach training")
    lr_t, lr_s = batch["lr_t"], batch["lr_s"]
    want = (lr_patch, lr_patch)
    if tuple(lr_t.shape[-2:]) != want or tuple(lr_s.shape[-2:]) != want:
        raise AssertionError(f"target patches are {tuple(lr_t.shape)} and source LR patches "
                             f"{tuple(lr_s.shape)}; both must be LR patches of side {lr_patch}")


def source_patches(source: tuple[str, ...], scale: int, lr_patch: int, *, seed: int = 0, root=None):
    """The labelled source domain of a config's ``source`` as :class:`MixedBatches` takes it:
    ``{name: HR}`` of the embedded photos, or the bicubic-pair sampler of a paper training set
    (``("df2k",)``)."""
    from . import paper_data

    if len(source) == 1 and paper_data.is_paper_set(source[0]):
        return paper_data.paper_patches(source[0], scale, lr_patch * scale, seed=seed, root=root)
    all_src = source_images()
    unknown = [k for k in source if k not in all_src]
    if unknown:
        raise DatasetError(f"source {unknown[0]!r} is neither a labelled source photo ({', '.join(all_src)}) "
                           f"nor a paper training set alone ({', '.join(paper_data.TRAIN_SETS)})")
    return {k: all_src[k] for k in source}


__all__ = ["SOURCE_IMAGES", "TARGET_IMAGES", "DOMAINS", "BATCH_KEYS", "source_images",
           "target_degrade", "target_train_lr", "eval_pairs", "MixedBatches", "check_unlabelled",
           "CAMERA", "TARGETS", "DREALSR_TILE", "SOURCE_EVAL", "default_target", "check_target",
           "describe_target", "tile_pairs", "centre_crop_pair", "source_patches"]
