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


def target_train_lr(scale: int) -> dict[str, np.ndarray]:
    """The unlabelled target-domain training set: LR uint8 images only.

    Each target photo is mod-cropped to a multiple of ``scale``, degraded once by
    :func:`~srlib.degradations.hidden_degradation`, and its HR is discarded before returning, as
    with a camera whose clean images nobody has. Computed once per process (the degradation is
    deterministic); every call returns fresh copies.
    """
    return {k: v.copy() for k, v in _target_train_lr(int(scale)).items()}


@functools.lru_cache(maxsize=4)
def _target_train_lr(scale: int) -> dict[str, np.ndarray]:
    from .degradations import hidden_degradation, modcrop

    train = data.load_images("photos", "train")
    out = {}
    for name in TARGET_IMAGES:
        lr = hidden_degradation(modcrop(train[name], scale), scale)
        out[name] = np.ascontiguousarray(lr, dtype=np.uint8)
    return out


def eval_pairs(domain: str, scale: int, max_side: int | None = None
               ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Held-out test photos as ``(name, LR uint8, HR uint8)`` in the ``"source"`` domain (bicubic
    LR) or the ``"target"`` domain (hidden-degradation LR), HR centre-cropped to ``max_side``."""
    if domain not in DOMAINS:
        raise DatasetError(f"unknown domain {domain!r}; use 'source' (bicubic) or 'target' "
                           "(the hidden real-world degradation)")
    test = data.load_images("photos", "test")
    degrade = None if domain == "source" else target_degrade(scale)
    return list(data.eval_pairs(test, scale, degrade=degrade, max_side=max_side))


class MixedBatches:
    """``batch_fn(step) -> {"lr_s", "hr_s", "lr_t"}``: half labelled source, half unlabelled target.

    Args:
        source: ``{name: HR uint8}`` labelled images; LR made by ``degrade`` (default bicubic).
        target_lr: ``{name: LR uint8}`` unlabelled target-domain images (already low resolution).
        scale, lr_patch: SR factor and LR patch side (source HR patches are ``lr_patch * scale``).
        batch_size: samples *per domain* (the trainer sees ``2 * batch_size`` inputs).
        seed: the batches are a pure function of ``(seed, step)`` (exact resume).

    Every call checks that the target half is ``(B, 3, lr_patch, lr_patch)`` LR patches and that
    the batch holds exactly the keys ``lr_s``, ``hr_s``, ``lr_t``.
    """

    def __init__(self, source: Mapping[str, np.ndarray], target_lr: Mapping[str, np.ndarray], *,
                 scale: int, lr_patch: int, batch_size: int, seed: int = 0, degrade=None):
        if not target_lr:
            raise DatasetError("MixedBatches needs at least one unlabelled target LR image")
        self.scale, self.lr_patch, self.batch_size = int(scale), int(lr_patch), int(batch_size)
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


__all__ = ["SOURCE_IMAGES", "TARGET_IMAGES", "DOMAINS", "BATCH_KEYS", "source_images",
           "target_degrade", "target_train_lr", "eval_pairs", "MixedBatches", "check_unlabelled"]
