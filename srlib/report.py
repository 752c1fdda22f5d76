"""Figures and tables with provenance.

Every figure (PNG) and table (CSV + Markdown) the course shows is written through this
module into a figures folder, next to a ``<stem>.provenance.json`` record that says how it was
made: profile, feature backbone, srlib version, git commit, seconds since the notebook
started, and the versions of Python and torch. A reader who finds a number in ``figures/``
can tell where it came from without opening the notebook.

Use :class:`Report` in a notebook (one per notebook, it remembers the prefix, profile and start
time) or the plain functions :func:`save_figure` / :func:`save_table`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import __version__

PROVENANCE_SUFFIX = ".provenance.json"


#: The repository that holds this srlib (an editable install); its ``figures/`` is the committed one.
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Set by the course runner (``python -m srlib.course``) in every notebook kernel it starts.
COURSE_RUNNER_ENV = "SRLIB_COURSE_RUNNER"


def committed_figures_dir() -> Path:
    """The repository's ``figures/``: written only by ``make course`` at the standard profile."""
    return REPO_ROOT / "figures"


def resolve_figures_dir(figures_dir: str | os.PathLike | None, profile: str) -> Path:
    """Where a notebook writes its figures and tables, so a student's run never overwrites the
    committed ``figures/``.

    - ``None``, ``""`` or ``"auto"`` (the notebooks' default): ``build/figures/<profile>/`` in the
      repository (or under the working directory when srlib is not an editable install).
    - any other path: that folder, except the committed ``figures/``, which only the course runner
      (``make course``, which sets :data:`COURSE_RUNNER_ENV`) may write, and only at the standard
      profile: anything else raises a ``ValueError`` that says what to do.

    The folder is created. Returns an absolute path.
    """
    profile = str(profile)
    if figures_dir is None or str(figures_dir).strip() in ("", "auto"):
        base = REPO_ROOT if (REPO_ROOT / "notebooks").is_dir() else Path.cwd()
        out = base / "build" / "figures" / profile
    else:
        out = Path(figures_dir).expanduser().resolve()
        if out == committed_figures_dir().resolve():
            if not os.environ.get(COURSE_RUNNER_ENV):
                raise ValueError(
                    f"figures_dir={str(figures_dir)!r} is the committed figures/ folder, which only "
                    "`make course` (standard profile, clean tree) writes. Leave figures_dir = None to "
                    f"write to build/figures/{profile}/, or pass another folder.")
            if profile != "standard":
                raise ValueError(f"the committed figures/ come from the standard profile; a {profile!r} "
                                 f"run writes to build/figures/{profile}/ (figures_dir = None)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The current git commit of the source tree (with ``-dirty`` if it has changes), or None.

    Changes under ``figures/`` do not count: they are what a course run writes, so the figures a
    clean-tree rebuild saves after its first one still record the commit they came from.
    """
    here = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(top,exclude)figures"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(*, profile: str, backbone: str | None = None, seconds: float | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record written next to every figure and table."""
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch_version = None
    record = {
        "profile": profile,
        "backbone": backbone,
        "srlib_version": __version__,
        "git_commit": git_commit(),
        "seconds": None if seconds is None else round(float(seconds), 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "torch": torch_version,
    }
    if extra:
        record.update({str(k): _jsonable(v) for k, v in extra.items()})
    return record


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy / torch scalars
        return _jsonable(value.item())
    return str(value)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Temp file + rename (:mod:`srlib.atomic`): mode follows the umask, leftovers of killed
    writes of the same file are removed, errors name ``path``."""
    from .atomic import write_bytes

    write_bytes(path, data)


def _write_provenance(figures_dir: Path, stem: str, files: list[str], record: dict) -> Path:
    path = figures_dir / f"{stem}{PROVENANCE_SUFFIX}"
    record = dict(record, files=sorted(files))
    _atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return path


def save_figure(fig, name: str, figures_dir: str | os.PathLike = "figures", *, profile: str,
                backbone: str | None = None, seconds: float | None = None,
                extra: Mapping[str, Any] | None = None, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``<figures_dir>/<name>.png`` with its provenance record."""
    figures_dir = Path(figures_dir)
    path = figures_dir / f"{name}.png"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    _atomic_write_bytes(path, buf.getvalue())
    _write_provenance(figures_dir, name, [path.name],
                      provenance(profile=profile, backbone=backbone, seconds=seconds, extra=extra))
    return path


def _format_cell(value: Any, digits: int) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        for key in row:
            if key not in cols:
                cols.append(key)
    return cols


def markdown_table(rows: Sequence[Mapping[str, Any]], digits: int = 4,
                   notes: Iterable[str] = ()) -> str:
    """Render rows (dicts) as a GitHub Markdown table; ``None``/NaN show as ``n/a``."""
    cols = _columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_format_cell(row.get(c), digits) for c in cols) + " |")
    notes = [n for n in notes if n]
    if notes:
        lines.append("")
        lines.extend(f"- {n}" for n in notes)
    return "\n".join(lines) + "\n"


class SavedTable(type(Path())):
    """The CSV path of a saved table that a notebook shows as the table itself.

    :func:`save_table` and :meth:`Report.table` return it, so ``rep.table(rows, "results")`` as
    the last line of a cell renders the Markdown table (with its notes) in Jupyter and in the
    executed notebooks of ``make course``, instead of printing a path. Everywhere else it is the
    ordinary ``Path`` of the CSV.
    """

    def _repr_markdown_(self):
        try:
            return self.with_suffix(".md").read_text()
        except OSError:
            return None


def save_table(rows: Sequence[Mapping[str, Any]], name: str,
               figures_dir: str | os.PathLike = "figures", *, profile: str,
               backbone: str | None = None, seconds: float | None = None,
               extra: Mapping[str, Any] | None = None, notes: Iterable[str] = (),
               digits: int = 4) -> Path:
    """Save rows (a list of dicts) as ``<name>.csv`` and ``<name>.md`` with provenance.

    The CSV keeps full precision and writes ``None`` as an empty field (so a missing LPIPS is an
    empty cell, never a made-up number); the Markdown rounds to ``digits`` decimals, shows
    ``n/a`` for missing values and lists ``notes`` (e.g. why a metric is unavailable) below.
    Returns the CSV path as a :class:`SavedTable` (renders as the table in a notebook).
    """
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError(f"table {name!r} has no rows; nothing to save")
    figures_dir = Path(figures_dir)
    cols = _columns(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: ("" if row.get(c) is None else _jsonable(row.get(c))) for c in cols})
    csv_path = figures_dir / f"{name}.csv"
    md_path = figures_dir / f"{name}.md"
    notes = list(notes)
    _atomic_write_bytes(csv_path, buf.getvalue().encode())
    _atomic_write_bytes(md_path, markdown_table(rows, digits, notes).encode())
    _write_provenance(figures_dir, name, [csv_path.name, md_path.name],
                      provenance(profile=profile, backbone=backbone, seconds=seconds,
                                 extra=dict(extra or {}, notes=notes) if notes else extra))
    return SavedTable(csv_path)


@dataclass
class Report:
    """One notebook's writer: prefixes names with the notebook number and records its profile.

    ``figures_dir`` goes through :func:`resolve_figures_dir`: ``None`` (the notebooks' default)
    means ``build/figures/<profile>/``; the committed ``figures/`` is refused outside ``make course``.

    >>> rep = Report(None, notebook="00", profile="smoke")
    >>> rep.figure(fig, "degradations")      # -> build/figures/smoke/00_degradations.png (+ provenance)
    >>> rep.table(rows, "metrics")           # -> build/figures/smoke/00_metrics.csv / .md (+ provenance);
    ...                                      #    as a cell's last line it renders the table
    """

    figures_dir: str | os.PathLike | None
    notebook: str
    profile: str
    backbone: str | None = None
    started: float = field(default_factory=time.time)
    extra: dict = field(default_factory=dict)
    precision: str = "auto"
    device: str = "auto"
    checkpoints: list = field(default_factory=list)

    def __post_init__(self):
        self.figures_dir = resolve_figures_dir(self.figures_dir, self.profile)

    @property
    def precision_policy(self) -> str:
        """What the notebook's training and inference ran with, e.g. ``cpu fp32, channels_last``."""
        from .runtime import PrecisionPolicy, pick_device

        return PrecisionPolicy(self.precision, pick_device(self.device)).name

    def use_checkpoint(self, info: Mapping[str, Any]) -> None:
        """Record a shipped course checkpoint (name, sha256, steps) in every later provenance."""
        entry = {k: info.get(k) for k in ("name", "sha256", "steps")}
        if entry not in self.checkpoints:
            self.checkpoints.append(entry)

    def _stem(self, name: str) -> str:
        prefix = f"{self.notebook}_"
        return name if name.startswith(prefix) else prefix + name

    def _extra(self, extra: Mapping[str, Any] | None) -> dict:
        return dict(self.extra, notebook=self.notebook, precision=self.precision_policy,
                    checkpoints=list(self.checkpoints), **(extra or {}))

    def figure(self, fig, name: str, *, backbone: str | None = None,
               extra: Mapping[str, Any] | None = None) -> Path:
        return save_figure(fig, self._stem(name), self.figures_dir, profile=self.profile,
                           backbone=backbone or self.backbone,
                           seconds=time.time() - self.started, extra=self._extra(extra))

    def table(self, rows: Sequence[Mapping[str, Any]], name: str, *, backbone: str | None = None,
              notes: Iterable[str] = (), extra: Mapping[str, Any] | None = None,
              digits: int = 4) -> Path:
        return save_table(rows, self._stem(name), self.figures_dir, profile=self.profile,
                          backbone=backbone or self.backbone,
                          seconds=time.time() - self.started, extra=self._extra(extra),
                          notes=notes, digits=digits)
