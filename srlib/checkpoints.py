"""Course checkpoints: long-trained models shipped in ``data/checkpoints`` with their provenance.

At the standard profile every notebook trains for a few minutes, which is too little for the
papers' effects to be seen. The course therefore ships models trained by srlib's own recipes on
the bundled data with longer schedules, as courses with expensive models do, and lets a student
retrain any of them on demand:

- :data:`REGISTRY` lists every shipped model once: its name, the recipe config of its long
  schedule (:func:`course_config`), how to train it and which architecture it is.
- ``make checkpoints`` (``python -m srlib.checkpoints build [--only NAME ...]``) trains them
  through the recipes and the trainer and writes ``data/checkpoints/<name>.pth`` (the generator's
  state dict, fp32, loadable with ``weights_only=True``), ``<name>.history.csv`` (its loss history)
  and one ``manifest.json`` entry per model (config, architecture, steps, wall seconds, threads,
  precision, srlib version, git commit, sha256, held-out metrics). A model whose entry already
  matches its config is skipped; an interrupted model resumes from its trainer checkpoint.
- :func:`obtain` is what a notebook calls: at the standard profile with ``checkpoints="auto"`` a
  model comes from the shipped file when the manifest's config equals the one the notebook asks
  for and the file's sha256 is right; otherwise it is trained (through the model cache) and the
  reason is printed. ``"retrain"`` always trains. The smoke profile never loads shipped files, so
  CI keeps exercising the training code.
- :func:`load` reads one shipped model; a missing file or a wrong checksum is a
  :class:`~srlib.errors.WeightsError` naming the file and the command that rebuilds it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import __version__
from .errors import WeightsError
from .profiles import get_profile

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS_ENV = "SRLIB_CHECKPOINTS"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "srlib.checkpoints/1"
MODES = ("auto", "retrain")
REBUILD = "make checkpoints (python -m srlib.checkpoints build --only {name})"


def checkpoints_dir() -> Path:
    """``$SRLIB_CHECKPOINTS`` when set, else the repository's ``data/checkpoints``."""
    env = os.environ.get(CHECKPOINTS_ENV, "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / "data" / "checkpoints"


# ------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class CourseModel:
    """One shipped model.

    Attributes:
        name: file stem in ``data/checkpoints``.
        notebooks: the notebooks that use it.
        description: one line for ``python -m srlib.checkpoints list``.
        make_config: ``profile -> config``; at ``"standard"`` the long checkpoint schedule, at
            the other profiles the recipe's own ``for_profile`` values.
        train: ``(config, *, device, cache_dir, progress, checkpoints_dir) -> Trained``.
        arch: ``config -> (class name in srlib.archs, constructor kwargs)`` of the shipped network.
    """

    name: str
    notebooks: tuple[str, ...]
    description: str
    make_config: Callable[[str], Any]
    train: Callable[..., Any]
    arch: Callable[[Any], tuple[str, dict]]


REGISTRY: dict[str, CourseModel] = {}


def register(model: CourseModel) -> CourseModel:
    """Add a model to :data:`REGISTRY` (a name is registered once)."""
    if model.name in REGISTRY and REGISTRY[model.name] is not model:
        raise ValueError(f"a course checkpoint named {model.name!r} is already registered")
    REGISTRY[model.name] = model
    return model


def _get(name: str) -> CourseModel:
    _load_registry()
    if name not in REGISTRY:
        raise KeyError(f"no course checkpoint named {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def course_config(name: str, profile: str):
    """The config of model ``name`` that a notebook at ``profile`` asks for."""
    return _get(name).make_config(get_profile(profile).name)


# --------------------------------------------------------------------- config identity
def config_dict(cfg) -> dict:
    """A config as plain JSON data (tuples -> lists), ``vgg_weights="auto"`` resolved.

    Two configs are the same model exactly when their dicts are equal.
    """
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        data = dataclasses.asdict(cfg)
    elif isinstance(cfg, dict):
        data = dict(cfg)
    else:
        raise TypeError(f"a recipe config must be a dataclass, got {type(cfg).__name__}")
    data = json.loads(json.dumps(data, default=str))
    _resolve_auto(data)
    return {"type": type(cfg).__qualname__, **data} if not isinstance(cfg, dict) else data


def _resolve_auto(data: dict) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            _resolve_auto(value)
        elif key == "vgg_weights" and value == "auto":
            from .recipes.srgan import resolve_vgg_weights
            data[key] = resolve_vgg_weights("auto")


def _config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: shipped {va!r}, asked {vb!r}")
    return out


# ---------------------------------------------------------------------------- manifest
def read_manifest(directory: Path | None = None) -> dict:
    """``{"format": ..., "models": {name: entry}}``; an absent manifest is an empty one."""
    path = (Path(directory) if directory is not None else checkpoints_dir()) / MANIFEST
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "models": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc}); restore it from git or rebuild with "
                           "make checkpoints") from exc
    if data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("models"), dict):
        raise WeightsError(f"{path} is not a srlib checkpoint manifest (format {MANIFEST_FORMAT!r})")
    return data


def _write_manifest(directory: Path, manifest: dict) -> None:
    from .atomic import write_bytes as atomic_write_bytes

    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    atomic_write_bytes(directory / MANIFEST, text.encode())


def _add_manifest_entry(directory: Path, name: str, entry: dict) -> None:
    """Read, update and write the manifest under an exclusive lock, so that builds of different
    models running at the same time into one folder never drop each other's entries."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: one build at a time
        fcntl = None
    with open(directory / ".manifest.lock", "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest(directory)
        manifest["models"][name] = entry
        _write_manifest(directory, manifest)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_arch(arch: str, kwargs: dict) -> nn.Module:
    """``srlib.archs.<arch>(**kwargs)``: the network a manifest entry describes."""
    from . import archs

    cls = getattr(archs, arch, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise WeightsError(f"manifest names architecture {arch!r}, which srlib.archs does not have")
    return cls(**kwargs)


# ------------------------------------------------------------------------------ loading
@dataclass
class Shipped:
    """A loaded course checkpoint: the network (eval mode) and its manifest entry."""

    model: nn.Module
    entry: dict

    @property
    def info(self) -> dict:
        """``name``, ``sha256`` and ``steps``: what a figure's provenance records."""
        return {k: self.entry.get(k) for k in ("name", "sha256", "steps")}


def load(name: str, *, device="cpu", directory: Path | None = None) -> Shipped:
    """Load the shipped model ``name`` strictly into its architecture, after a sha256 check."""
    directory = Path(directory) if directory is not None else checkpoints_dir()
    entry = read_manifest(directory)["models"].get(name)
    rebuild = REBUILD.format(name=name)
    if entry is None:
        raise WeightsError(f"{directory / MANIFEST} has no entry for {name!r}; build it with {rebuild}")
    path = directory / entry["file"]
    if not path.is_file():
        raise WeightsError(f"course checkpoint {path} is missing; restore it from git or rebuild it "
                           f"with {rebuild}")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise WeightsError(f"course checkpoint {path} has sha256 {digest[:16]}..., the manifest says "
                           f"{entry['sha256'][:16]}...: the file is corrupt or was replaced; restore it "
                           f"from git or rebuild it with {rebuild}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"course checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                           f"rebuild it with {rebuild}") from exc
    net = build_arch(entry["arch"], entry["arch_kwargs"])
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise WeightsError(f"course checkpoint {path} does not fit {entry['arch']}"
                           f"({entry['arch_kwargs']}): {exc}; rebuild it with {rebuild}") from exc
    return Shipped(net.to(device).eval(), entry)


def read_history(entry: dict, directory: Path | None = None) -> list[dict]:
    """The loss history CSV shipped beside a model, as a list of rows."""
    directory = Path(directory) if directory is not None else checkpoints_dir()
    path = directory / entry.get("history", "")
    if not entry.get("history") or not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def why_not_shipped(name: str, cfg, *, directory: Path | None = None) -> str | None:
    """``None`` when the shipped ``name`` is exactly ``cfg``; else the reason in one line."""
    directory = Path(directory) if directory is not None else checkpoints_dir()
    try:
        entry = read_manifest(directory)["models"].get(name)
    except WeightsError as exc:
        return str(exc)
    if entry is None:
        return f"no shipped checkpoint {name!r} in {directory}"
    diff = _config_diff(entry["config"], config_dict(cfg))
    if diff:
        more = f" (+{len(diff) - 3} more)" if len(diff) > 3 else ""
        return f"the shipped {name!r} was trained with another config: " + "; ".join(diff[:3]) + more
    path = directory / entry["file"]
    if not path.is_file():
        return f"{path} is missing"
    if sha256_file(path) != entry["sha256"]:
        return f"{path} does not match its sha256 in the manifest"
    return None


def obtain(name: str, cfg, *, mode: str = "auto", device="auto", progress: bool = True,
           cache_dir=None, directory: Path | None = None, log=print):
    """The model ``name`` with config ``cfg``: shipped when possible, trained otherwise.

    ``mode="auto"``: at the standard profile, the shipped file when its manifest config equals
    ``cfg`` and its checksum holds; else train ``cfg`` (model cache first) and say why.
    ``"retrain"``: always train. At smoke (and paper) the model is always trained. Returns a
    :class:`~srlib.recipes.psnr.Trained`; ``trained.shipped`` is the manifest entry or ``None``.
    """
    from .recipes.psnr import Trained
    from .runtime import pick_device
    from .train import CachedRun

    if mode not in MODES:
        raise ValueError(f"checkpoints={mode!r}; use one of {', '.join(MODES)}")
    model_spec = _get(name)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    profile = getattr(cfg, "profile", None) or getattr(getattr(cfg, "psnr", None), "profile", None)
    reason = "checkpoints='retrain' asks for training"
    if mode == "auto":
        if profile != "standard":
            reason = f"the {profile} profile always trains (shipped checkpoints are standard-profile models)"
        else:
            reason = why_not_shipped(name, cfg, directory=directory)
            if reason is None:
                start = time.time()
                shipped = load(name, device=dev, directory=directory)
                run = CachedRun({"G": shipped.model.state_dict()},
                                read_history(shipped.entry, directory), key=shipped.entry["sha256"],
                                path=None, hit=True)
                trained = Trained(shipped.model, run, cfg, time.time() - start)
                trained.shipped = shipped.entry
                log(f"{name}: shipped course checkpoint ({shipped.entry['steps']} steps, "
                    f"sha256 {shipped.entry['sha256'][:12]})")
                return trained
    log(f"{name}: training ({reason})")
    trained = model_spec.train(cfg, device=dev, cache_dir=cache_dir, progress=progress,
                               checkpoints_dir=directory)
    trained.shipped = None
    return trained


# ------------------------------------------------------------------------------- build
def _history_csv(history: list[dict], path: Path) -> None:
    from .atomic import write_bytes as atomic_write_bytes

    keys = ["step"] + sorted({k for row in history for k in row} - {"step"})
    import io
    buf = io.StringIO()
    writer = csv.DictWriter(buf, keys)
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in keys})
    atomic_write_bytes(path, buf.getvalue().encode())


def _held_out_metrics(model: nn.Module, cfg, device) -> dict:
    from . import data
    from .recipes.evaluate import score, super_resolve

    scale = getattr(cfg, "scale", None) or cfg.psnr.scale
    pairs = list(data.eval_pairs(data.load_images("photos", "test"), scale,
                                 max_side=get_profile("standard").eval_max_side))
    res = score(super_resolve(model, pairs, scale, device=device), pairs, scale,
                metric_names=("psnr", "ssim"))
    return {"images": [n for n, _, _ in pairs], "psnr_y": res["psnr_y"], "ssim_y": res["ssim_y"],
            "how": f"x{scale}, HR centre crops <= {get_profile('standard').eval_max_side} px, "
                   f"Y channel (BT.601), {scale}-px border crop"}


def total_steps(cfg) -> int | None:
    """The training steps a model's config runs: its ``steps`` (a GAN config's own stage; its L1
    start is another course model), or, for a config made only of stages (notebook 06's
    generalist: an L1 stage then a GAN stage, one run), every stage's steps added up."""
    steps = getattr(cfg, "steps", None)
    if isinstance(steps, int):
        return steps

    def every_stage(c) -> int:
        own = getattr(c, "steps", 0)
        return (own if isinstance(own, int) else 0) + sum(
            every_stage(getattr(c, f.name)) for f in dataclasses.fields(c)
            if dataclasses.is_dataclass(getattr(c, f.name)))

    n = every_stage(cfg) if dataclasses.is_dataclass(cfg) else 0
    return n or None


def build(names=None, *, directory: Path | None = None, device="auto", progress: bool = True,
          force: bool = False, config_override: Callable | None = None, log=print) -> list[str]:
    """Train and write the registered models (all, or ``names``); returns the names written.

    ``config_override(name, cfg) -> cfg`` changes a config before training (the tests use it to
    build a smoke-size model). A model whose manifest entry already matches is skipped unless
    ``force``. Training goes through the model cache, so an interrupted build resumes there.
    """
    from .report import git_commit
    from .runtime import PrecisionPolicy, pick_device

    _load_registry()
    directory = Path(directory) if directory is not None else checkpoints_dir()
    directory.mkdir(parents=True, exist_ok=True)
    names = list(names) if names else list(REGISTRY)
    for n in names:
        _get(n)
    dev = pick_device(device)
    written = []
    for i, name in enumerate(names, 1):
        spec = REGISTRY[name]
        cfg = spec.make_config("standard")
        if config_override is not None:
            cfg = config_override(name, cfg)
        if not force and why_not_shipped(name, cfg, directory=directory) is None:
            log(f"[{i}/{len(names)}] {name}: up to date, skipped")
            continue
        log(f"[{i}/{len(names)}] {name}: training ({spec.description})")
        start = time.time()
        trained = spec.train(cfg, device=dev, progress=progress, checkpoints_dir=directory)
        seconds = time.time() - start
        arch, kwargs = spec.arch(cfg)
        state = {k: v.detach().float().contiguous().cpu() for k, v in trained.model.state_dict().items()}
        check = build_arch(arch, kwargs)
        check.load_state_dict(state)  # strict: what we ship loads into what we name
        from .train.trainer import atomic_torch_save
        path = directory / f"{name}.pth"
        atomic_torch_save(state, path)
        _history_csv(trained.history, directory / f"{name}.history.csv")
        steps = total_steps(cfg)
        entry = {
            "name": name, "file": path.name, "history": f"{name}.history.csv",
            "notebooks": list(spec.notebooks), "description": spec.description,
            "arch": arch, "arch_kwargs": kwargs, "config": config_dict(cfg), "steps": steps,
            "wall_seconds": round(seconds, 1), "trained_now": not trained.cached,
            "threads": torch.get_num_threads(),
            "precision": PrecisionPolicy(getattr(cfg, "precision", "auto"), dev).name,
            "device": str(dev), "srlib_version": __version__, "git_commit": git_commit(),
            "torch": torch.__version__, "sha256": sha256_file(path),
            "bytes": path.stat().st_size, "params": sum(p.numel() for p in check.parameters()),
            "held_out": _held_out_metrics(trained.model, cfg, dev),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _add_manifest_entry(directory, name, entry)
        log(f"[{i}/{len(names)}] {name}: {steps} steps in {seconds / 60:.1f} min, held-out PSNR-Y "
            f"{entry['held_out']['psnr_y']:.2f} dB, {entry['bytes'] / 1e6:.2f} MB")
        written.append(name)
    return written


# ---------------------------------------------------------------------- the registry
_LOADED = False


def _load_registry() -> None:
    """Import the modules that register course models (kept out of import time of srlib)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from .recipes import course_models  # noqa: F401  (registers notebook 02/03 models)
    import importlib

    for module in ("srlib.recipes.semantic", "srlib.recipes.csd", "srlib.recipes.realworld",
                   "srlib.recipes.pdd"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        hook = getattr(mod, "register_course_models", None)
        if callable(hook):
            hook(register)


# --------------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srlib.checkpoints", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train the course checkpoints and write data/checkpoints")
    b.add_argument("--only", nargs="+", metavar="NAME", help="only these models")
    b.add_argument("--dir", type=Path, default=None, help="output folder (default data/checkpoints)")
    b.add_argument("--device", default="auto")
    b.add_argument("--force", action="store_true", help="retrain even when the entry matches")
    sub.add_parser("list", help="the registered models and whether their shipped file is current")
    v = sub.add_parser("verify", help="check every shipped file against its sha256 and architecture")
    v.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build":
            build(args.only, directory=args.dir, device=args.device, force=args.force)
        elif args.cmd == "list":
            _load_registry()
            for name, spec in REGISTRY.items():
                why = why_not_shipped(name, spec.make_config("standard"))
                print(f"{name:14s} notebooks {','.join(spec.notebooks):6s} "
                      f"{'shipped' if why is None else 'NOT current: ' + why}")
        else:
            entries = read_manifest(args.dir)["models"]
            for name in entries:
                load(name, directory=args.dir)
                print(f"{name}: ok")
    except (WeightsError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run the imported module's main, so that the registry the recipes fill is the one it reads.
    from srlib.checkpoints import main as _main

    raise SystemExit(_main())
