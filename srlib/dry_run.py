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
``cfg = shrink(cfg)`` when ``dry_run`` is true: :func:`shrink` cuts the step counts and the batch
size and keeps everything that defines the method (architecture sizes, losses, weights, patch
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
"""Fields that count training iterations; set to the dry run's ``steps``."""
PHASE_FIELDS = ("d_init_steps", "warmup_steps")
"""Phases inside a run (discriminator warm-up, ...): capped at ``steps - 1`` so every phase runs."""
BATCH_BOUND_FIELDS = ("neg_num",)
"""Counts drawn from the batch (CSD's negatives are LR images of the batch): capped at ``batch_size``."""
DATA_FIELDS = {"n_text": 8}
"""Sizes of generated training data (rendered text images), capped: data, not the method."""

HR_SIZES = ((202, 198), (198, 206), (206, 202))
"""Fake HR sizes: not multiples of 3 or 4 (mod-crop is exercised), large enough for the papers'
largest patch (48 LR pixels x 4 = 192)."""


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


def shrink(cfg, *, steps: int = 2, batch_size: int = 2, lr_patch: int | None = None):
    """A copy of a recipe config with ``steps`` iterations and ``batch_size`` samples per step.

    Nested configs (an ESRGAN's ``psnr`` pre-training, PDD's generalist) are shrunk too.
    Schedules stay valid: a cosine ``period`` becomes at most ``steps``, multistep ``milestones``
    beyond ``steps`` are dropped, warm-up phases are capped below ``steps``, generated data
    (:data:`DATA_FIELDS`) is capped, counts drawn from the batch (:data:`BATCH_BOUND_FIELDS`) are
    capped at the new batch size. ``lr_patch`` is kept unless given. Everything else (widths,
    depths, loss weights, layers) is unchanged.
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"shrink expects a recipe config dataclass, got {type(cfg).__name__}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    changes = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = shrink(value, steps=steps, batch_size=batch_size, lr_patch=lr_patch)
        elif f.name in STEP_FIELDS and isinstance(value, int):
            changes[f.name] = min(value, steps)
        elif f.name in PHASE_FIELDS and isinstance(value, int):
            changes[f.name] = min(value, max(steps - 1, 0))
        elif f.name in DATA_FIELDS and isinstance(value, int):
            changes[f.name] = min(value, DATA_FIELDS[f.name])
        elif f.name == "batch_size" and isinstance(value, int):
            changes[f.name] = min(value, batch_size)
        elif f.name == "lr_patch" and lr_patch is not None and isinstance(value, int):
            changes[f.name] = min(value, lr_patch)
        elif f.name == "period" and isinstance(value, int) and value > 0:
            changes[f.name] = min(value, steps)
        elif f.name == "milestones" and isinstance(value, tuple):
            changes[f.name] = tuple(m for m in value if m < steps)
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
    cameras; sizes :data:`HR_SIZES`) and, for every scale of the
    manifest, LR images made from them by MATLAB bicubic (so pairs agree by name and size). The
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
            hrs = {i: _fake_hr(rng, *HR_SIZES[k % len(HR_SIZES)]) for k, i in enumerate(ids)}
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


__all__ = ["DRY_RUN_ENV", "is_dry_run", "dry_profile", "shrink", "make_fake_tree", "is_fake", "HR_SIZES"]
