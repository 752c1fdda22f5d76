"""The paper profile's dry run: a tiny fake data tree and a few training steps, on CPU.

``make course PROFILE=paper DRY_RUN=1`` (``python -m srlib.course --profile paper --dry-run``)
executes every notebook's paper-profile code path (the papers' architectures, losses, data
loaders and evaluation) without the data sets or a GPU, so that CI catches a broken paper path.
The runner

1. writes a fake data tree with :func:`make_fake_tree` (a few small PNG/JPEG images in every
   folder of ``data/manifests.json``, HR/LR pairs consistent by name and size, completion
   markers flagged ``"fake": true``) and points ``$SRLIB_DATA`` at it;
2. points ``$SRLIB_CACHE`` at a folder of the run, so no dry-run model enters the user's cache;
3. sets ``$SRLIB_DRY_RUN=1`` and passes the papermill parameter ``dry_run=True``.

A notebook honours it by building its paper configs as usual and then calling
``cfg = shrink(cfg)`` when ``dry_run`` is true: :func:`shrink` cuts training to one step per phase
and the batch size, and keeps everything that defines the method (architecture sizes, losses, weights, patch
size: a VGG-style discriminator's input size is fixed by the patch). Device selection stays
automatic, so on a CPU-only CI machine the dry run checks the CPU fallbacks of the trainer
(fp32 or CPU bf16 autocast instead of CUDA AMP, gloo instead of nccl).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from . import datasets as ds_mod

DRY_RUN_ENV = "SRLIB_DRY_RUN"
FAKE_FLAG = "FAKE_DATA"
STEP_FIELDS = ("steps",)
"""Fields that count training iterations; set to the dry run's ``steps`` (one, plus one per phase)."""
PHASE_FIELDS = ("d_init_steps", "warmup_steps")
"""Phases of a run (PDD's discriminator-only and warm-up steps, a semantic model's L1 start): each
one that the config uses runs exactly one step. A phase counted inside ``steps`` adds one to it,
so the steps after every phase still run; a config class lists the phase fields that are runs of
their own instead (not inside ``steps``) in its ``SEPARATE_RUNS``."""
BATCH_BOUND_FIELDS = ("neg_num",)
"""Counts drawn from the batch (CSD's negatives are LR images of the batch): capped at ``batch_size``."""
DATA_FIELDS = {"n_text": 8}
"""Sizes of generated training data (rendered text images), capped: data, not the method."""

HR_SIZES = ((202, 198), (198, 206), (206, 202))
"""Fake HR sizes of training splits: not multiples of 3 or 4 (mod-crop is exercised), large
enough for the papers' largest patch (48 LR pixels x 4 = 192)."""
EVAL_HR_SIZES = ((106, 110), (110, 106), (154, 146))
"""Fake HR sizes of held-out splits (``valid``, ``*test``): not multiples of 3 or 4 either;
whole-image NIQE still has a 96-px patch after a 4-px border crop, and the last (largest) image
leaves room for notebook 00's crops shifted by up to 32 px. Together about 40 % of the training
images' area, because the notebooks run the papers' full-size networks over every one of them;
a notebook that scores only the first image of a set gets a small one."""


def is_held_out(split: str) -> bool:
    """True for a manifest split that is only evaluated on (DIV2K ``valid``, ``test``, ``canon_test``)."""
    return split == "valid" or split.endswith("test")


def is_dry_run() -> bool:
    """True when the course runner started this process for a dry run (``$SRLIB_DRY_RUN``)."""
    return os.environ.get(DRY_RUN_ENV, "") not in ("", "0", "false", "False")


def dry_profile(profile):
    """The dry-run variant of the paper profile for a notebook's own knobs.

    Its :meth:`~srlib.profiles.Profile.pick` returns the smoke value and its evaluation crop
    and text-set size are the smoke profile's; its name stays ``"paper"`` and
    :func:`srlib.profiles.get_profile` maps it back to the real paper profile, so recipe configs
    built from it are the paper's (then cut by :func:`shrink`).
    """
    from .profiles import get_profile

    p = get_profile(profile)
    if p.name != "paper":
        raise ValueError(f"a dry run exercises the paper profile, not {p.name!r}")
    smoke = get_profile("smoke")
    return dataclasses.replace(p, dry_run=True, eval_max_side=smoke.eval_max_side, n_text=smoke.n_text)


def shrink(cfg, *, steps: int = 1, batch_size: int = 2, lr_patch: int | None = None):
    """A copy of a recipe config that runs every phase of its training once, ``batch_size``
    samples per step.

    ``steps`` iterations after the phases: each phase a config uses (:data:`PHASE_FIELDS` > 0)
    becomes one step and, when it lies inside ``steps``, adds one to it. A config without phases
    (SRResNet, ESRGAN, CSD) trains one step; PDD's EMA method three (D alone, warm-up,
    adapting); a semantic method one L1 step (a run of its own) then one step of the method.
    Nested configs (an ESRGAN's ``psnr`` pre-training, PDD's generalist) are shrunk too.
    Schedules stay valid: a cosine ``period`` becomes at most the new step count, multistep
    ``milestones`` beyond it are dropped, generated data (:data:`DATA_FIELDS`) is capped, counts
    drawn from the batch (:data:`BATCH_BOUND_FIELDS`) are capped at the new batch size.
    ``lr_patch`` is kept unless given. Everything else (widths, depths, loss weights, layers)
    is unchanged.
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"shrink expects a recipe config dataclass, got {type(cfg).__name__}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    separate = set(getattr(type(cfg), "SEPARATE_RUNS", ()))
    phases = {f.name: min(getattr(cfg, f.name), 1) for f in dataclasses.fields(cfg)
              if f.name in PHASE_FIELDS and isinstance(getattr(cfg, f.name), int)}
    total = steps + sum(v for k, v in phases.items() if k not in separate)
    changes = dict(phases)
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = shrink(value, steps=steps, batch_size=batch_size, lr_patch=lr_patch)
        elif f.name in STEP_FIELDS and isinstance(value, int):
            changes[f.name] = min(value, total)
        elif f.name in DATA_FIELDS and isinstance(value, int):
            changes[f.name] = min(value, DATA_FIELDS[f.name])
        elif f.name == "batch_size" and isinstance(value, int):
            changes[f.name] = min(value, batch_size)
        elif f.name == "lr_patch" and lr_patch is not None and isinstance(value, int):
            changes[f.name] = min(value, lr_patch)
        elif f.name == "period" and isinstance(value, int) and value > 0:
            changes[f.name] = min(value, total)
        elif f.name == "milestones" and isinstance(value, tuple):
            changes[f.name] = tuple(m for m in value if m < total)
    new_batch = changes.get("batch_size", getattr(cfg, "batch_size", None))
    for name in BATCH_BOUND_FIELDS:
        value = getattr(cfg, name, None)
        if isinstance(value, int) and isinstance(new_batch, int) and value > new_batch:
            changes[name] = new_batch
    return dataclasses.replace(cfg, **changes)


# ============================================================================================
# The fake tree
# ============================================================================================
def _fake_hr(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colour field with a few sharp bars: structure at every scale, like a photo."""
    from PIL import Image

    small = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), dtype=np.float64) / 255.0
    yy, xx = np.mgrid[0:h, 0:w]
    bars = ((xx // int(rng.integers(3, 9)) + yy // int(rng.integers(3, 9))) % 2).astype(np.float64)
    img = 0.75 * np.clip(base, 0, 1) + 0.25 * bars[..., None] * rng.random(3)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def _fake_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    from .degradations import bicubic_degrade, modcrop

    return bicubic_degrade(modcrop(hr, scale), scale)  # uint8 in, uint8 out, rounded as MATLAB


def _name(pattern: str, ident: str, n: str) -> str:
    return pattern.replace("{id}", ident).replace("{n}", n)


def _save(img: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else \
        Image.fromarray(img).save(path)


def make_fake_tree(root, *, manifests=None, per_folder: int = 3, n_people: int = 10, seed: int = 0) -> Path:
    """Write a fake data tree under ``root`` in every data set's layout; return ``root``.

    Each split gets ``per_folder`` HR images (one per source for a set with sources, DRealSR's
    cameras; sizes :data:`HR_SIZES`, :data:`EVAL_HR_SIZES` for held-out splits) and, for every
    scale of the manifest, LR images made from them by MATLAB bicubic (so pairs agree by name and size). The
    face set gets ``n_people`` people with one image each (enough for a test identity). Every
    archive and hand-placed data set is marked complete with ``"fake": true``.
    """
    root = Path(root)
    manifests = ds_mod.load_manifests() if manifests is None else manifests
    rng = np.random.default_rng(seed)
    for ds in manifests.values():
        done = set()
        for split, spec in ds.pairs.items():
            ids = ([f"{src}_{k + 1}" for k, src in enumerate(ds.sources)] if ds.sources else
                   [f"{ds.name}{split}{k:03d}".replace("_", "") for k in range(per_folder)])
            sizes = EVAL_HR_SIZES if is_held_out(split) else HR_SIZES
            hrs = {i: _fake_hr(rng, *sizes[k % len(sizes)]) for k, i in enumerate(ids)}
            for scale_s, key in spec.get("lr", {}).items():
                entry, scale = ds.layout[key], int(scale_s)
                for i, hr in hrs.items():
                    _save(_fake_lr(hr, scale), root / entry.dir / _name(entry.pattern, i, "1"))
                    if spec.get("same_folder"):
                        _save(hr, root / entry.dir / _name(entry.hr_pattern, i, str(scale)))
                done.add(key)
            if "hr" in spec:
                entry = ds.layout[spec["hr"]]
                for i, hr in hrs.items():
                    _save(hr, root / entry.dir / _name(entry.pattern, i, str(max(map(int, spec["lr"]))
                                                                          if spec.get("lr") else 1)))
                done.add(spec["hr"])
        for key, entry in ds.layout.items():  # image-only folders (faces)
            if key in done:
                continue
            for k in range(n_people if entry.subfolders else per_folder):
                person = f"Person_{k:02d}"
                name = _name(entry.pattern, f"{person}_0001" if entry.subfolders else f"img{k:03d}", "1")
                _save(_fake_hr(rng, 128, 128), root / entry.dir / (person if entry.subfolders else "") / name)
        info = {"dataset": ds.name, "fake": True, "verified": False}
        for fe in ds.files:
            ds_mod.write_marker(root, fe.filename, {**info, "file": fe.filename, "provides": list(fe.provides)})
        if not ds.files:
            ds_mod.write_marker(root, f"manual-{ds.name}", info)
    (ds_mod.state_dir(root) / FAKE_FLAG).write_text("a fake data tree written by srlib.dry_run.make_fake_tree\n")
    return root


def is_fake(root=None) -> bool:
    """True when the data root (default: :func:`srlib.datasets.data_root`) is a fake tree."""
    return (ds_mod.state_dir(ds_mod.data_root(root)) / FAKE_FLAG).exists()


__all__ = ["DRY_RUN_ENV", "is_dry_run", "dry_profile", "shrink", "make_fake_tree", "is_fake", "HR_SIZES", "EVAL_HR_SIZES",
           "is_held_out"]
