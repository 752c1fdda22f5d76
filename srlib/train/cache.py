"""A cache of trained models keyed by the recipe's configuration.

Notebook 03 needs the PSNR-oriented SRResNet that notebook 02 trained; notebook 07 needs every
model. Instead of retraining, :func:`cached_train` hashes the recipe's config dataclass and
looks in the cache first::

    run = cached_train(SRResNetConfig(profile="standard", steps=800), train_srresnet)
    G.load_state_dict(run["G"])       # trained now, or loaded from an earlier notebook
    run.history                       # its loss history, either way

The key is the sha256 of a canonical JSON (sorted keys, no spaces) of
``{"type": <config class name>, "config": dataclasses.asdict(config), "srlib": __version__,
"code": <sha256 of srlib's source files>}``: change any field, upgrade srlib, or edit its code
and the model is retrained (a version number alone does not change while the course is being
developed, and a model trained by older code must never be taken for a current one). Each entry is a folder
``<cache>/<key>/`` with ``models.pt`` (state dicts, read back with ``weights_only=True``),
``history.json`` and ``config.json``; it is written into a temporary folder and renamed into
place, so a crash never leaves a half entry that looks complete.

The cache lives in ``<root>/models`` with ``<root>`` = ``$SRLIB_CACHE`` if set, else
``~/.cache/srlib`` (see :mod:`srlib.paths`; official weight files go to ``<root>/weights``).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from ..errors import WeightsError
from ..paths import models_dir
from .trainer import Trainer

MODELS_FILE, HISTORY_FILE, CONFIG_FILE = "models.pt", "history.json", "config.json"


def default_cache_dir() -> Path:
    """``<root>/models``, root = ``$SRLIB_CACHE`` when set, else ``~/.cache/srlib``."""
    return models_dir()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the paths and contents of every ``.py`` file of the installed srlib."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def config_payload(config) -> dict:
    """What the key is computed from: config class name, its fields, srlib version and code."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        fields = dataclasses.asdict(config)
    elif isinstance(config, Mapping):
        fields = dict(config)
    else:
        raise TypeError(f"config must be a dataclass instance or a dict, got {type(config).__name__}")
    return {"type": type(config).__qualname__, "config": fields, "srlib": __version__,
            "code": code_fingerprint()}


def canonical_json(obj) -> str:
    """JSON with sorted keys and no whitespace; tuples become lists, paths strings, enums values."""
    def plain(o):
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        if isinstance(o, enum.Enum):
            return o.value
        if hasattr(o, "item") and callable(o.item):  # numpy / torch scalars
            return o.item()
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        raise TypeError(f"config value {o!r} of type {type(o).__name__} cannot be written as JSON; "
                        "use numbers, strings, bools, None, lists, tuples or dicts in configs")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=plain)


def cache_key(config) -> str:
    """sha256 hex digest of :func:`canonical_json` of :func:`config_payload`."""
    return hashlib.sha256(canonical_json(config_payload(config)).encode("utf-8")).hexdigest()


@dataclass
class CachedRun:
    """Result of :func:`cached_train`: ``run["G"]`` is a state dict (``"G_ema"`` for EMA copies)."""

    state_dicts: dict[str, dict[str, torch.Tensor]]
    history: list[dict] = field(default_factory=list)
    key: str = ""
    path: Path | None = None
    hit: bool = False  # True when loaded from the cache, False when trained just now

    def __getitem__(self, name: str) -> dict[str, torch.Tensor]:
        if name not in self.state_dicts:
            raise KeyError(f"no model {name!r} in this run; it has {sorted(self.state_dicts)}")
        return self.state_dicts[name]

    def keys(self):
        return self.state_dicts.keys()

    def history_frame(self) -> dict[str, list]:
        """The loss history as columns, like :meth:`Trainer.history_frame`."""
        keys = ["step"] + sorted({k for row in self.history for k in row} - {"step"})
        return {k: [row.get(k, float("nan")) for row in self.history] for k in keys}


def cached_train(config, build_and_train: Callable, cache_dir=None) -> CachedRun:
    """Load the models trained for ``config`` from the cache, or train them and cache them.

    ``build_and_train(config)`` is only called on a miss. It returns either the
    :class:`~srlib.train.Trainer` it used (its models are stored by name, EMA copies as
    ``"<name>_ema"``, plus its loss history) or a dict of name -> ``nn.Module`` / state dict.
    Under torchrun every rank trains, only rank 0 writes the entry.
    """
    key = cache_key(config)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = root / key
    if (entry / MODELS_FILE).is_file():
        return CachedRun(_load_models(entry / MODELS_FILE), _load_history(entry / HISTORY_FILE),
                         key, entry, hit=True)
    state_dicts, history = _unpack(build_and_train(config))
    if int(os.environ.get("RANK", "0")) == 0:
        _write_entry(root, key, state_dicts, history, config_payload(config))
    return CachedRun(state_dicts, history, key, entry, hit=False)


def _unpack(result) -> tuple[dict, list]:
    if isinstance(result, Trainer):
        sds = {n: m.state_dict() for n, m in result.raw_models.items()}
        sds.update({f"{n}_ema": m.state_dict() for n, m in result.ema.items()})
        history = [dict(row) for row in result.history]
    elif isinstance(result, Mapping):
        sds, history = {}, []
        for name, value in result.items():
            if isinstance(value, nn.Module):
                sds[name] = value.state_dict()
            elif isinstance(value, Mapping) and all(isinstance(t, torch.Tensor) for t in value.values()):
                sds[name] = dict(value)
            else:
                raise TypeError(f"build_and_train returned {type(value).__name__} for {name!r}; "
                                "expected an nn.Module or a state dict")
    else:
        raise TypeError("build_and_train must return the Trainer it used or a dict of name -> "
                        f"nn.Module / state dict, got {type(result).__name__}")
    sds = {n: {k: t.detach().cpu().clone() for k, t in sd.items()} for n, sd in sds.items()}
    return sds, history


def _write_entry(root: Path, key: str, state_dicts, history, payload) -> None:
    from ..atomic import clean_stale, make_dirs, make_temp_dir

    make_dirs(root)
    # temp folders of runs killed while writing (any key) are removed; this one's mode follows
    # the umask (tempfile.mkdtemp would make the entry 0700)
    clean_stale(root / key, any_name=True)
    tmp = make_temp_dir(root / key)
    try:
        torch.save(state_dicts, tmp / MODELS_FILE)
        (tmp / HISTORY_FILE).write_text(json.dumps(history, indent=1))
        (tmp / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
        try:
            os.replace(tmp, root / key)
        except OSError:  # another process cached the same key first: keep theirs
            if not (root / key / MODELS_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_models(path: Path) -> dict:
    try:
        sds = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cached models {path} are corrupt ({type(exc).__name__}: {exc}); "
                           f"delete the folder {path.parent} to retrain them") from exc
    if not isinstance(sds, dict) or not all(isinstance(v, dict) for v in sds.values()):
        raise WeightsError(f"{path} does not hold a dict of state dicts; delete {path.parent} to retrain")
    return sds


def _load_history(path: Path) -> list:
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cached loss history {path} is corrupt ({exc}); "
                           f"delete the folder {path.parent} to retrain") from exc
