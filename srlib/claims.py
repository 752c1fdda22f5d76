"""The claims table: what each source text claims, and whether it held in the course's own tables.

Each seed of the course (the five source texts in ``shared/seeds``) makes claims: SRResNet beats
bicubic, the GAN models look sharper than their PSNR start, the CSD student stays close to its
teacher, PDD improves the generalist on the target domain, ... This module declares each claim in
code, once: an id, the seed it comes from, the claim in one sentence, the paper's number where the
seed gives one, the table and columns our number comes from, the comparison that decides, and the
noise band (the spread over seeds, images or categories that the notebook measured). The numbers
are never typed: they are read from the committed ``figures/`` tables every time.

Status rule (one for every claim). A comparison gives a *margin*: how far our number lies on the
claimed side of the claim's bound (positive = as claimed), in the metric's units, and a *noise
band* (>= 0) from the notebook's own repeats: ``Z = 2`` standard errors of the mean paired
difference over seeds, images or categories (of the slope for a sweep), or, when a table gives only
each row's standard deviation over its images, the combined spread ``sqrt(sa² + sb²)``. Then

- ``held``: margin > band;
- ``not held``: margin < -band;
- ``not resolved``: |margin| <= band (the difference is within the noise the notebook measured);
- ``not measured``: the table has no value for it (e.g. LPIPS without its AlexNet weights);
- ``table missing``: the notebook that writes the table has not committed it yet;
- ``error``: the table is there but lacks a column or row the claim reads (the declaration and
  the notebook disagree: fix one of them).

Where a table carries no spread, the band is "not measured" and the sign of the margin alone
decides; the table says so in its "why" column. A deterministic computation (a parameter count, a
metric of one fixed image) has band 0.

Commands (``make test`` runs ``check``)::

    python -m srlib.claims build   # (re)write figures/claims.json and figures/claims.md
    python -m srlib.claims check   # exit 1, naming the claim, when the tables and claims.json disagree
    python -m srlib.claims show    # print the table without writing anything

``check`` fails when (a) a claim's status differs from ``claims.json`` or a claim is missing from
it (or ``claims.json`` lists one no longer declared, or ``claims.md`` is not the rendering of
``claims.json``), (b) a claim reads a table that is missing although its notebook has committed
tables (any ``figures/NN_*.csv``), or (c) a claim is in ``error``. A claim of a notebook that has
no tables in ``figures/`` yet (a notebook still being written) is reported as
``table missing: run notebook NN`` and does not fail the check.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import SrlibError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FIGURES = REPO_ROOT / "figures"
JSON_NAME = "claims.json"
MD_NAME = "claims.md"

HELD, NOT_HELD, NOT_RESOLVED = "held", "not held", "not resolved"
NOT_MEASURED, TABLE_MISSING, ERROR = "not measured", "table missing", "error"
STATUSES = (HELD, NOT_HELD, NOT_RESOLVED, NOT_MEASURED, TABLE_MISSING, ERROR)

#: Standard errors in a noise band (fixed before any result was looked at; notebook 04 uses the same).
Z = 2.0

RULE = ("margin = how far our number lies on the claimed side of the claim's bound (positive = as "
        "claimed); band = the noise the notebook measured: 2 standard errors of the paired "
        "difference over seeds, images or categories (of the slope, for a sweep), or the combined "
        "spread sqrt(sa^2 + sb^2) when the table gives only each row's standard deviation. "
        "held: margin > band; not held: margin < -band; not resolved: |margin| <= band. Without a "
        "measured band the sign of the margin decides, and the row says so.")


@dataclass(frozen=True)
class Seed:
    """One source text of the course."""

    file: str
    title: str
    link: str
    notebooks: str


SEEDS: dict[str, Seed] = {
    "000": Seed("000_950abd63a8bb9dc5.txt",
                "Park (2024), Semantic Super-Resolution via Self-Distillation and Adversarial Learning "
                "(a blog post on it)", "https://doi.org/10.1109/ACCESS.2023.3349023", "04"),
    "001": Seed("001_8ed83d812aabd2b7.txt", "GANs for super-resolution, SRGAN and the perceptual loss "
                "(a blog post)", "https://arxiv.org/abs/1609.04802", "00, 01, 02, 03"),
    "002": Seed("002_f58ab3ca7962e0cf.txt", "Zhang, Lee & Yao (ECCV 2024), Pairwise Distance Distillation "
                "for Unsupervised Real-World Image Super-Resolution", "https://arxiv.org/abs/2407.07302", "06"),
    "003": Seed("003_0d784b659181e53c.txt", "Meher et al. (IJRASET 2023), a summary of CSD: Wang et al. "
                "(IJCAI 2021), Towards Compact Single Image Super-Resolution via Contrastive "
                "Self-distillation", "https://arxiv.org/abs/2105.11683", "05"),
    "004": Seed("004_0c2249f1cb7213f7.txt", "An overview of GAN-based SR: SRGAN, ESRGAN (RRDB, relativistic "
                "GAN), losses, LSGAN, spectral normalisation", "https://arxiv.org/abs/1809.00219", "01, 02"),
}


class ClaimError(SrlibError, ValueError):
    """A table lacks a column or row that a claim reads."""


class _NotMeasured(Exception):
    """A value the claim needs is empty in the table (e.g. LPIPS unavailable)."""


# --------------------------------------------------------------------------------------------
# tables


def _parse(value: str) -> Any:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


@dataclass
class Table:
    """A committed table (``figures/<name>.csv``) with its provenance record, if any."""

    name: str
    rows: list[dict]
    columns: list[str]
    provenance: dict = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "Table":
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = [{k: _parse(v) for k, v in r.items()} for r in reader]
            columns = list(reader.fieldnames or [])
        prov_path = path.with_name(path.stem + ".provenance.json")
        try:
            prov = json.loads(prov_path.read_text())
        except (OSError, json.JSONDecodeError):
            prov = {}
        return cls(path.stem, rows, columns, prov)

    def column(self, names: str | Sequence[str]) -> str:
        """The first of ``names`` that the table has; a :class:`ClaimError` listing its columns if none."""
        names = (names,) if isinstance(names, str) else tuple(names)
        for n in names:
            if n in self.columns:
                return n
        raise ClaimError(f"column {' / '.join(names)} missing from {self.name}.csv "
                         f"(its columns: {', '.join(self.columns)})")

    def select(self, where: Mapping[str, Any]) -> list[dict]:
        """Rows whose columns match ``where`` (column or alias tuple -> value or tuple of accepted values)."""
        out = self.rows
        for col, want in where.items():
            c = self.column(col)
            accepted = want if isinstance(want, (tuple, list, set, frozenset)) else (want,)
            out = [r for r in out if any(_same(r.get(c), a) for a in accepted)]
        return out

    def row(self, where: Mapping[str, Any]) -> dict:
        rows = self.select(where)
        if len(rows) != 1:
            key = next(iter(where), None)
            seen = sorted({str(r.get(self.column(key))) for r in self.rows}) if key else []
            raise ClaimError(f"{len(rows)} rows of {self.name}.csv match {_where_text(where)} (expected "
                             f"exactly one; values of {_col_text(key)}: {', '.join(seen)})")
        return rows[0]


def _same(value: Any, want: Any) -> bool:
    if isinstance(value, float) and isinstance(want, (int, float)) and not isinstance(want, bool):
        return math.isclose(value, float(want), rel_tol=1e-9, abs_tol=1e-12)
    return str(value).strip().lower() == str(want).strip().lower()


def _col_text(col) -> str:
    return col if isinstance(col, str) else " / ".join(col)


def _where_text(where: Mapping[str, Any]) -> str:
    parts = []
    for col, want in where.items():
        w = want[0] if isinstance(want, (tuple, list)) else want
        parts.append(f"{_col_text(col) if isinstance(col, str) else col[0]}={w}")
    return ", ".join(parts)


def _label(where: Mapping[str, Any]) -> str:
    vals = [w[0] if isinstance(w, (tuple, list)) else w for w in where.values()]
    return " ".join(_fmt_key(v) for v in vals)


def _fmt_key(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class Tables:
    """Reads and caches the tables of one figures folder."""

    def __init__(self, figures_dir: str | Path):
        self.dir = Path(figures_dir)
        self._cache: dict[str, Table] = {}

    def exists(self, name: str) -> bool:
        return (self.dir / f"{name}.csv").is_file()

    def __getitem__(self, name: str) -> Table:
        if name not in self._cache:
            self._cache[name] = Table.read(self.dir / f"{name}.csv")
        return self._cache[name]

    def notebooks_with_tables(self) -> set[str]:
        """Notebook numbers that have at least one table (``NN_*.csv``) in the folder."""
        return {p.name[:2] for p in self.dir.glob("[0-9][0-9]_*.csv")}


def _value(row: dict, col: str, table: Table) -> float:
    v = row.get(col)
    if v is None:
        raise _NotMeasured(f"{col} is empty in {table.name}.csv (not measured at this profile)")
    if not isinstance(v, float):
        raise ClaimError(f"{col} in {table.name}.csv is {v!r}, not a number")
    if not math.isfinite(v):
        raise _NotMeasured(f"{col} is {v} in {table.name}.csv")
    return v


# --------------------------------------------------------------------------------------------
# noise bands


@dataclass(frozen=True)
class Band:
    value: float | None   # None: not measured
    text: str


class Noise:
    """How a comparison's noise band is measured; see the subclasses."""

    def band(self, table: Table, column: str, a: Mapping, b: Mapping, diff: float) -> Band:
        raise NotImplementedError


@dataclass(frozen=True)
class Exact(Noise):
    """A deterministic number (a parameter count, a metric of one fixed image): band 0."""

    why: str = "deterministic computation"

    def band(self, table, column, a, b, diff) -> Band:
        return Band(0.0, f"band 0 ({self.why})")


@dataclass(frozen=True)
class Unmeasured(Noise):
    """No spread is measured; the sign decides and the row says why."""

    why: str = "the table gives one number per row"

    def band(self, table, column, a, b, diff) -> Band:
        return Band(None, f"no noise band measured ({self.why})")


@dataclass(frozen=True)
class SpreadColumns(Noise):
    """The table's own spread columns (``<column><suffix>``, e.g. ``niqe_std``, each row's standard
    deviation over its images): band = sqrt(sa² + sb²), the combined spread (unpaired; for three
    images it is close to 2 standard errors of the difference). Falls back to "not measured"
    when the table has no such column."""

    suffixes: tuple[str, ...] = ("_std", "_sd")
    what: str = "std over images"
    names: tuple[str, ...] = ()   # explicit spread columns, e.g. ("niqe_std",) for a column "niqe_mean"

    def band(self, table, column, a, b, diff) -> Band:
        for sc in list(self.names) + [column + suf for suf in self.suffixes]:
            if sc in table.columns:
                sa, sb = _value(table.row(a), sc, table), _value(table.row(b), sc, table)
                return Band(math.hypot(sa, sb), f"band sqrt({sc}_a² + {sc}_b²) ({self.what})")
        return Band(None, "no noise band measured (the table gives one mean per row, no spread column)")


@dataclass(frozen=True)
class PerGroup(Noise):
    """Paired differences over a group column (images, categories, seeds as rows): band = Z standard errors.

    The rows of ``a`` and ``b`` with the group column free (all groups except ``exclude``) are
    paired by group; the band is ``Z * s / sqrt(n)`` with ``s`` the sample standard deviation
    (ddof=1) of the ``n`` per-group differences. Fewer than two groups: not measured."""

    column: str | tuple[str, ...]
    exclude: tuple[str, ...] = ("overall", "all", "mean")
    what: str = "groups"

    def band(self, table, column, a, b, diff) -> Band:
        g = table.column(self.column)
        free = lambda w: {k: v for k, v in w.items() if table.column(k) != g}  # noqa: E731
        rows_a = {str(r[g]): r for r in table.select(free(a)) if str(r[g]).lower() not in self.exclude}
        rows_b = {str(r[g]): r for r in table.select(free(b)) if str(r[g]).lower() not in self.exclude}
        keys = sorted(set(rows_a) & set(rows_b))
        diffs = [_value(rows_a[k], column, table) - _value(rows_b[k], column, table) for k in keys]
        if len(diffs) < 2:
            return Band(None, f"no noise band measured (fewer than two {self.what} in {table.name})")
        return Band(_se_band(diffs), f"band = {Z:g} standard errors of the paired difference over "
                                      f"{len(diffs)} {self.what}")


@dataclass(frozen=True)
class PerSeedColumn(Noise):
    """A column that lists one value per seed (``"6 8 4"``): band = Z standard errors of the mean of
    the per-seed differences of the two rows, paired by position."""

    column: str

    def band(self, table, column, a, b, diff) -> Band:
        c = table.column(self.column)
        va = [float(x) for x in str(table.row(a)[c]).split()]
        vb = [float(x) for x in str(table.row(b)[c]).split()]
        if len(va) != len(vb):
            raise ClaimError(f"{c} lists {len(va)} and {len(vb)} seeds for the two rows of {table.name}")
        if len(va) < 2:
            return Band(None, "no noise band measured (one seed)")
        d = [x - y for x, y in zip(va, vb)]
        return Band(_se_band(d), f"band = {Z:g} standard errors of the per-seed differences over "
                                 f"{len(d)} seeds ({' '.join(f'{x:+g}' for x in d)})")


def _std(xs: Sequence[float]) -> float:
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _se_band(diffs: Sequence[float]) -> float:
    """``Z`` standard errors of the mean of ``diffs`` (sample std, ddof=1)."""
    return Z * _std(diffs) / math.sqrt(len(diffs))


# --------------------------------------------------------------------------------------------
# comparisons


@dataclass(frozen=True)
class Evidence:
    """What a comparison found: margin (positive = as claimed), band, our number(s) as text."""

    status: str
    ours: str
    why: str
    margin: float | None = None
    band: float | None = None


def decide(margin: float, band: float | None) -> str:
    """The status rule of the module docstring."""
    b = 0.0 if band is None else band
    if margin > b:
        return HELD
    if margin < -b:
        return NOT_HELD
    return NOT_RESOLVED


def _fmt(x: float, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if x == 0:
        return f"0 {unit}".strip()
    ax = abs(x)
    s = f"{x:.3g}" if ax >= 1000 or ax < 0.01 and x != 0 else (f"{x:.2f}" if ax >= 1 else f"{x:.3f}")
    return f"{s} {unit}".strip()


def _signed(x: float, unit: str = "") -> str:
    s = _fmt(x, unit)
    return s if s.startswith("-") else "+" + s


class Test:
    """A comparison: which tables it reads, a description, and how it decides."""

    def tables(self) -> list[str]:
        raise NotImplementedError

    def missing(self, tables: "Tables") -> list[str]:
        """The tables this comparison needs that are not in the folder."""
        return [n for n in self.tables() if not tables.exists(n)]

    def describe(self) -> str:
        raise NotImplementedError

    def evaluate(self, tables: Tables) -> Evidence:
        raise NotImplementedError


@dataclass(frozen=True)
class Diff(Test):
    """``value(a) - value(b)`` compared with ``bound``: ``sign=">"`` claims it is above, ``"<"`` below.

    ``a`` and ``b`` select one row each (``{column: value}``; a tuple of values accepts aliases).
    """

    table: str
    column: str | tuple[str, ...]
    a: Mapping[str, Any]
    b: Mapping[str, Any]
    sign: str = ">"
    bound: float = 0.0
    noise: Noise = Unmeasured()
    unit: str = ""

    def tables(self):
        return [self.table]

    def describe(self):
        col = _col_text(self.column)
        return f"{self.table}: {col}[{_label(self.a)}] - {col}[{_label(self.b)}] {self.sign} {self.bound:g}"

    def evaluate(self, tables):
        t = tables[self.table]
        col = t.column(self.column)
        ra, rb = t.row(self.a), t.row(self.b)
        va, vb = _value(ra, col, t), _value(rb, col, t)
        d = va - vb
        margin = d - self.bound if self.sign == ">" else self.bound - d
        band = self.noise.band(t, col, self.a, self.b, d)
        status = decide(margin, band.value)
        ours = f"{col}: {_label(self.a)} {_fmt(va, self.unit)}, {_label(self.b)} {_fmt(vb, self.unit)}"
        bound = f" against the bound {self.bound:g}" if self.bound else ""
        why = (f"difference {_signed(d, self.unit)}{bound}, margin {_signed(margin)}"
               + (f", band {_fmt(band.value)}" if band.value is not None else "") + f"; {band.text}")
        return Evidence(status, ours, why, margin, band.value)


@dataclass(frozen=True)
class Ratio(Test):
    """``value(a) / value(b)`` within ``tolerance`` (relative) of ``target`` (e.g. a compression ratio)."""

    table: str
    column: str | tuple[str, ...]
    a: Mapping[str, Any]
    b: Mapping[str, Any]
    target: float
    tolerance: float

    def tables(self):
        return [self.table]

    def describe(self):
        col = _col_text(self.column)
        return (f"{self.table}: {col}[{_label(self.a)}] / {col}[{_label(self.b)}] within "
                f"{100 * self.tolerance:g}% of {self.target:g}")

    def evaluate(self, tables):
        t = tables[self.table]
        col = t.column(self.column)
        va, vb = _value(t.row(self.a), col, t), _value(t.row(self.b), col, t)
        if vb == 0:
            raise ClaimError(f"{col} of {_label(self.b)} is 0 in {self.table}.csv; the ratio is undefined")
        r = va / vb
        margin = self.tolerance - abs(r / self.target - 1)
        status = decide(margin, 0.0)
        return Evidence(status, f"{col}: {_fmt(va)} / {_fmt(vb)} = {r:.2f}x",
                        f"{r:.2f}x is {100 * (r / self.target - 1):+.1f}% from {self.target:g}x "
                        f"(tolerance {100 * self.tolerance:g}%); band 0 (counted by code)", margin, 0.0)


@dataclass(frozen=True)
class Trend(Test):
    """The least-squares slope of ``y`` against ``x`` over the selected rows: ``sign=">"`` claims it
    rises, ``"<"`` that it falls. Band = Z standard errors of the slope (needs at least 3 points)."""

    table: str
    x: str | tuple[str, ...]
    y: str | tuple[str, ...]
    sign: str = ">"
    where: Mapping[str, Any] = field(default_factory=dict)
    unit: str = ""

    def tables(self):
        return [self.table]

    def describe(self):
        w = f" where {_where_text(self.where)}" if self.where else ""
        return (f"{self.table}: slope of {_col_text(self.y)} against {_col_text(self.x)}{w} "
                f"{'> 0 (rises)' if self.sign == '>' else '< 0 (falls)'}")

    def evaluate(self, tables):
        t = tables[self.table]
        xc, yc = t.column(self.x), t.column(self.y)
        rows = t.select(self.where) if self.where else t.rows
        pts = sorted((_value(r, xc, t), _value(r, yc, t)) for r in rows)
        if len(pts) < 2:
            raise ClaimError(f"{t.name}.csv has {len(pts)} rows for the trend of {yc} against {xc}")
        n = len(pts)
        mx = sum(p[0] for p in pts) / n
        my = sum(p[1] for p in pts) / n
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        if sxx == 0:
            raise ClaimError(f"all {xc} values are equal in {t.name}.csv; no slope")
        slope = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
        resid = [p[1] - (my + slope * (p[0] - mx)) for p in pts]
        ss_res = sum(e * e for e in resid)
        ss_tot = sum((p[1] - my) ** 2 for p in pts)
        r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
        if n >= 3:
            se = math.sqrt(ss_res / (n - 2) / sxx)
            band, btxt = Z * se, f"band = {Z:g} standard errors of the slope over {n} points"
        else:
            band, btxt = None, "no noise band measured (two points)"
        margin = slope if self.sign == ">" else -slope
        status = decide(margin, band)
        ys = ", ".join(f"{_fmt_key(x)}: {_fmt(y)}" for x, y in pts)
        why = (f"slope {_signed(slope)} per unit of {xc} (R² {r2:.2f})"
               + (f", band {_fmt(band)}" if band is not None else "") + f"; {btxt}")
        return Evidence(status, f"{yc} at {xc} = {ys}", why, margin, band)


@dataclass(frozen=True)
class PairedDelta(Test):
    """A difference a notebook measured itself, per test image: one row of its table with the mean
    paired difference (``delta``) and its standard error (``se``). ``sign=">"`` claims delta > 0.

    Used where the notebook pairs the images itself (notebook 04's ``04_claims``): the band is
    ``Z * se``, the rule is this module's, so our status and the notebook's must agree."""

    table: str
    where: Mapping[str, Any]
    sign: str = ">"
    delta: str = "delta"
    se: str = "se"
    n: str = "n"

    def tables(self):
        return [self.table]

    def describe(self):
        return f"{self.table}: {self.delta}[{_label(self.where)}] {self.sign} 0, band {Z:g} x {self.se}"

    def evaluate(self, tables):
        t = tables[self.table]
        row = t.row(self.where)
        d = _value(row, t.column(self.delta), t)
        se = _value(row, t.column(self.se), t)
        n = row.get(self.n) if self.n in t.columns else None
        margin = d if self.sign == ">" else -d
        band = Z * se
        status = decide(margin, band)
        nn = f" over {int(n)} paired images" if isinstance(n, float) else ""
        return Evidence(status, f"{self.delta} {_signed(d)} (se {_fmt(se)}{nn})",
                        f"margin {_signed(margin)}, band {_fmt(band)} = {Z:g} standard errors of the paired "
                        f"difference{nn}", margin, band)


@dataclass(frozen=True)
class Paired(Test):
    """Per-unit rows (one per image or seed): the mean of the paired differences ``a - b`` over the
    units both have, against ``bound``; band = Z standard errors of that mean."""

    table: str
    column: str | tuple[str, ...]
    a: Mapping[str, Any]
    b: Mapping[str, Any]
    sign: str = ">"
    by: str | tuple[str, ...] = "image"
    bound: float = 0.0
    unit: str = ""

    def tables(self):
        return [self.table]

    def describe(self):
        col = _col_text(self.column)
        return (f"{self.table}: mean over {_col_text(self.by)} of {col}[{_label(self.a)}] - {col}[{_label(self.b)}] "
                f"{self.sign} {self.bound:g}")

    def evaluate(self, tables):
        t = tables[self.table]
        col, by = t.column(self.column), t.column(self.by)
        ra = {str(r[by]): r for r in t.select(self.a)}
        rb = {str(r[by]): r for r in t.select(self.b)}
        keys = sorted(set(ra) & set(rb))
        if not keys:
            raise ClaimError(f"no {by} of {self.table}.csv has rows for both {_where_text(self.a)} and "
                             f"{_where_text(self.b)}")
        va = [_value(ra[k], col, t) for k in keys]
        vb = [_value(rb[k], col, t) for k in keys]
        diffs = [x - y for x, y in zip(va, vb)]
        d = sum(diffs) / len(diffs)
        margin = d - self.bound if self.sign == ">" else self.bound - d
        band = _se_band(diffs) if len(diffs) >= 2 else None
        status = decide(margin, band)
        ours = (f"{col}: {_label(self.a)} {_fmt(sum(va) / len(va), self.unit)}, {_label(self.b)} "
                f"{_fmt(sum(vb) / len(vb), self.unit)} (means over {len(keys)} {by}s)")
        btxt = (f"band {_fmt(band)} = {Z:g} standard errors of the paired difference over {len(keys)} {by}s"
                if band is not None else "no noise band measured (one unit)")
        why = (f"mean paired difference {_signed(d, self.unit)} ({', '.join(_signed(x) for x in diffs)}), "
               f"margin {_signed(margin)}; {btxt}")
        return Evidence(status, ours, why, margin, band)


@dataclass(frozen=True)
class FirstOf(Test):
    """The first comparison whose tables exist: per-image data when the notebook wrote them, else a
    summary table. Reported as missing only when none of them can be read."""

    options: tuple[Test, ...]

    def tables(self):
        return sorted({n for o in self.options for n in o.tables()})

    def missing(self, tables):
        for o in self.options:
            if not o.missing(tables):
                return []
        return self.options[0].missing(tables)

    def describe(self):
        return " OR ELSE ".join(o.describe() for o in self.options)

    def evaluate(self, tables):
        for i, o in enumerate(self.options):
            if not o.missing(tables):
                ev = o.evaluate(tables)
                if i:
                    skipped = ", ".join(n for p in self.options[:i] for n in p.missing(tables))
                    ev = Evidence(ev.status, ev.ours, ev.why + f" (from {', '.join(o.tables())}; {skipped} "
                                  "not written)", ev.margin, ev.band)
                return ev
        raise ClaimError("no table of this claim exists")


@dataclass(frozen=True)
class AllOf(Test):
    """Several comparisons that must all hold (e.g. "PSNR falls AND NIQE improves")."""

    parts: tuple[Test, ...]

    def tables(self):
        return sorted({n for p in self.parts for n in p.tables()})

    def describe(self):
        return " AND ".join(p.describe() for p in self.parts)

    def evaluate(self, tables):
        evs = [p.evaluate(tables) for p in self.parts]
        sts = [e.status for e in evs]
        if all(s == HELD for s in sts):
            status = HELD
        elif NOT_HELD in sts:
            status = NOT_HELD
        elif NOT_MEASURED in sts:
            status = NOT_MEASURED
        else:
            status = NOT_RESOLVED
        return Evidence(status, "; ".join(e.ours for e in evs),
                        " | ".join(f"{e.status}: {e.why}" for e in evs))


# --------------------------------------------------------------------------------------------
# claims


@dataclass(frozen=True)
class Claim:
    id: str
    notebook: str
    seed: str
    text: str
    test: Test
    paper: str | None = None

    def __post_init__(self):
        if self.seed not in SEEDS:
            raise ValueError(f"claim {self.id}: unknown seed {self.seed!r}; one of {', '.join(SEEDS)}")


@dataclass
class Result:
    claim: Claim
    status: str
    ours: str
    why: str
    margin: float | None = None
    band: float | None = None
    profile: str | None = None

    def record(self) -> dict:
        c = self.claim
        r = lambda x: None if x is None else float(f"{x:.6g}")  # noqa: E731
        return {"id": c.id, "notebook": c.notebook, "seed": c.seed, "seed_file": SEEDS[c.seed].file,
                "claim": c.text, "paper": c.paper, "tables": c.test.tables(),
                "comparison": c.test.describe(), "status": self.status, "ours": self.ours,
                "why": self.why, "margin": r(self.margin), "band": r(self.band), "profile": self.profile}


#: Methods scored on the same test images, in a table that keeps only each row's spread over the
#: images: that spread is mostly how different the images are (PSNR varies by several dB from one
#: photo to the next), not the uncertainty of the difference between two methods, so it is not
#: used as a band; the paired per-image differences would be (see :class:`Paired`).
_SAME_IMAGES = Unmeasured("the table gives each method's mean over the same test images (at most their "
                          "spread, which measures how different the images are), not the paired differences")


# Row selectors of the course's tables. Names of 04-06's rows accept the method keys of their
# recipes and the labels their notebooks print.
_BICUBIC = {"method": "bicubic"}
_SRRESNET = {"method": "SRResNet"}
_SRGAN = {"method": "SRGAN"}
_RRDB = {"method": ("RRDBNet (PSNR)", "RRDB (PSNR)")}
_ESRGAN = {"method": "ESRGAN"}
_M04 = {
    "semantic": ("semantic", "proposed", "proposed (D-feature self-distillation)"),
    "edsr": ("edsr", "vanilla EDSR (L1)", "vanilla EDSR"),
    "vgg": ("vgg", "VGG-based SR"),
    "multiclass": ("multiclass", "multi-class GAN"),
}
_M04_LABEL = {"edsr": "vanilla EDSR", "vgg": "VGG-based SR", "multiclass": "multi-class GAN"}
# The seed's table (000): PSNR / SSIM / PI / LPIPS of the four methods.
_PAPER04 = {"edsr": (27.42, 0.78, 2.54, 0.234), "multiclass": (28.01, 0.80, 2.31, 0.198),
            "vgg": (27.85, 0.79, 2.48, 0.205), "semantic": (28.29, 0.82, 2.14, 0.182)}
_M05 = {
    "teacher": ("teacher alone", "teacher"),
    "student": ("student alone", "student"),
    "csd": ("CSD, student", "csd student", "csd"),
    "sliced": ("sliced teacher (no joint training)", "teacher sliced"),
}
_M06 = {
    "generalist": ("generalist", "G (generalist)"),
    "specialist": ("specialist", "S (specialist)"),
    "naive": ("naive", "naive distillation", "ND"),
    "static": ("static", "PDD static"),
    "ema": ("ema", "PDD EMA", "PDD-EMA"),
}
_SOURCE, _TARGET = ("source", "synthetic"), ("target", "real-world", "real")


def _per_image_02(column: str, a: Mapping, b: Mapping, sign: str) -> Test:
    """Notebook 02's whole-image NIQE / hf_ratio: paired over the test images when it wrote them
    (``02_niqe_per_image``), else the means of ``02_results`` with their spread over images."""
    return FirstOf((Paired("02_niqe_per_image", column, a, b, sign, by="image"),
                    Diff("02_results", column, a, b, sign, noise=_SAME_IMAGES)))


def _c04() -> list[Claim]:
    """The seed table's comparisons, read from notebook 04's own paired per-image differences."""
    out = []
    metrics = [("psnr_y", ">", "PSNR-Y", 0, "dB"), ("ssim_y", ">", "SSIM-Y", 1, ""),
               ("niqe", "<", "NIQE (in place of PI)", 2, ""), ("lpips", "<", "LPIPS", 3, "")]
    for base in ("edsr", "multiclass", "vgg"):
        for col, sign, name, k, unit in metrics:
            p_ours, p_base = _PAPER04["semantic"][k], _PAPER04[base][k]
            pname = "PI" if col == "niqe" else name
            out.append(Claim(
                f"04-proposed-vs-{base}-{col.split('_')[0]}", "04", "000",
                f"The proposed self-distillation model has a {'higher' if sign == '>' else 'lower'} "
                f"{name} than {_M04_LABEL[base]}.",
                PairedDelta("04_claims", {"baseline": _M04[base], "metric": col}, sign),
                paper=f"{pname} {p_ours:g} vs {p_base:g}"))
    return out


CLAIMS: tuple[Claim, ...] = (
    # ---- notebook 00: PSNR prefers blur (seed 001: MSE-optimal outputs are smooth)
    Claim("00-psnr-prefers-blur", "00", "001",
          "PSNR scores a visibly blurred copy (Gaussian sigma 1 px) above a sharp copy shifted diagonally by 1 px: "
          "pixel metrics reward smoothness over faithful detail.",
          Diff("00_blur_vs_shift", "psnr_y_db", {"change": "gaussian blur", "amount_px": 1.0},
               {"change": "sharp, shifted diagonally", "amount_px": 1.0}, ">",
               noise=Exact("one fixed image, no sampling"), unit="dB")),
    Claim("00-ssim-prefers-blur", "00", "001",
          "SSIM, like PSNR, scores the sigma-1 blur above the 1-px shift.",
          Diff("00_blur_vs_shift", "ssim_y", {"change": "gaussian blur", "amount_px": 1.0},
               {"change": "sharp, shifted diagonally", "amount_px": 1.0}, ">",
               noise=Exact("one fixed image, no sampling"))),
    # ---- notebook 01: losses and spectral norm on the ring of Gaussians (seed 004)
    Claim("01-lsgan-covers-more-modes", "01", "004",
          "The least-squares GAN loss trains more stably than the standard (non-saturating) loss: it "
          "covers more modes of the ring.",
          Diff("01_losses_modes", "modes_covered_mean", {"setting": "least squares"},
               {"setting": "non-saturating"}, ">", noise=PerSeedColumn("modes_covered_per_seed"),
               unit="modes")),
    Claim("01-spectral-norm-covers-more-modes", "01", "004",
          "Spectral normalisation of a fast-learning discriminator keeps training stable: more modes covered.",
          Diff("01_spectral_norm_modes", "modes_covered_mean", {"setting": "fast D + spectral norm"},
               {"setting": "fast D"}, ">", noise=PerSeedColumn("modes_covered_per_seed"), unit="modes")),
    # ---- notebook 02: SRResNet, SRGAN, ESRGAN, interpolation (seeds 001, 004)
    Claim("02-srresnet-beats-bicubic", "02", "001",
          "A network trained for pixel fidelity (SRResNet) beats bicubic interpolation in PSNR-Y.",
          Diff("02_results", "psnr_y", _SRRESNET, _BICUBIC, ">", noise=_SAME_IMAGES, unit="dB")),
    Claim("02-rrdb-beats-bicubic", "02", "004",
          "The PSNR-oriented RRDBNet (ESRGAN's generator) beats bicubic interpolation in PSNR-Y.",
          Diff("02_results", "psnr_y", _RRDB, _BICUBIC, ">", noise=_SAME_IMAGES, unit="dB")),
    Claim("02-srgan-costs-psnr", "02", "001",
          "The adversarial fine-tuning costs PSNR: SRGAN is below its SRResNet start.",
          Diff("02_results", "psnr_y", _SRGAN, _SRRESNET, "<", noise=_SAME_IMAGES, unit="dB")),
    Claim("02-esrgan-costs-psnr", "02", "004",
          "The adversarial fine-tuning costs PSNR: ESRGAN is below its RRDBNet (PSNR) start.",
          Diff("02_results", "psnr_y", _ESRGAN, _RRDB, "<", noise=_SAME_IMAGES, unit="dB")),
    Claim("02-srgan-better-niqe", "02", "001",
          "SRGAN's outputs are more natural than its PSNR start's: lower NIQE than SRResNet.",
          _per_image_02("niqe", _SRGAN, _SRRESNET, "<")),
    Claim("02-esrgan-better-niqe", "02", "004",
          "ESRGAN's outputs are more natural than its PSNR start's: lower NIQE than RRDBNet (PSNR).",
          _per_image_02("niqe", _ESRGAN, _RRDB, "<")),
    Claim("02-esrgan-beats-srgan-niqe", "02", "004",
          "ESRGAN improves on SRGAN's perceptual quality: lower NIQE.",
          _per_image_02("niqe", _ESRGAN, _SRGAN, "<")),
    Claim("02-srgan-sharper", "02", "001",
          "SRGAN restores more fine detail than its PSNR start: higher hf_ratio than SRResNet.",
          _per_image_02("hf_ratio", _SRGAN, _SRRESNET, ">")),
    Claim("02-esrgan-sharper", "02", "004",
          "ESRGAN restores more fine detail than its PSNR start: higher hf_ratio than RRDBNet (PSNR).",
          _per_image_02("hf_ratio", _ESRGAN, _RRDB, ">")),
    Claim("02-interpolation-tradeoff", "02", "004",
          "Network interpolation from the PSNR model (alpha 0) to ESRGAN (alpha 1) traces a "
          "perception-distortion curve: PSNR-Y falls while NIQE improves (falls).",
          AllOf((Trend("02_interpolation", "alpha", "psnr_y", "<"),
                 Trend("02_interpolation", "alpha", "niqe", "<")))),
    # ---- notebook 03: pixel losses and perceptual features (seeds 001, 004)
    Claim("03-mse-regresses-to-mean", "03", "001",
          "A network trained with MSE regresses to the mean of the plausible answers: its output is "
          "less plausible than the L1 network's.",
          Diff("03_regression_to_mean", "relative plausibility", {"answer": "net_mse"},
               {"answer": "net_l1"}, "<", noise=Unmeasured("one training seed"))),
    Claim("03-l1-more-natural-than-mse", "03", "004",
          "L1 gives sharper, more natural SR than L2 (MSE): lower NIQE.",
          FirstOf((Diff("03_pixel_losses_niqe", ("niqe_mean", "niqe"), {"method": "l1"}, {"method": "mse"}, "<",
                        noise=_SAME_IMAGES),
                   Diff("03_pixel_losses", "niqe", {"method": "l1"}, {"method": "mse"}, "<",
                        noise=_SAME_IMAGES)))),
    Claim("03-deep-features-lose-pixels", "03", "001",
          "Deep VGG features keep content, not pixels: an image inverted from conv5_4 is much further "
          "from the target in PSNR-Y than one inverted from conv2_2.",
          Diff("03_feature_inversion", "psnr_y vs target", {"layer": "conv5_4"}, {"layer": "conv2_2"},
               "<", noise=Unmeasured("one crop, one optimisation"), unit="dB")),
    # ---- notebook 04: semantic self-distillation (seed 000)
    *_c04(),
    # ---- notebook 05: CSD (seed 003)
    Claim("05-csd-beats-student-alone", "05", "003",
          "The CSD student beats the same small network trained alone (PSNR-Y).",
          Diff("05_results", "psnr_y", {"model": _M05["csd"]}, {"model": _M05["student"]}, ">",
               noise=_SAME_IMAGES, unit="dB")),
    Claim("05-csd-close-to-teacher", "05", "003",
          "The CSD student stays within 0.2 dB PSNR-Y of its teacher at 16x compression.",
          Diff("05_results", "psnr_y", {"model": _M05["teacher"]}, {"model": _M05["csd"]}, "<", 0.2,
               noise=_SAME_IMAGES, unit="dB"),
          paper="0.2 dB loss at x4 on DIV2K, EDSR+ (43.09 M) to 2.7 M parameters"),
    Claim("05-student-16x-smaller", "05", "003",
          "The 0.25-width student has about 16x fewer parameters than the teacher.",
          Ratio("05_results", "params", {"model": _M05["teacher"]}, {"model": _M05["csd"]}, 16.0, 0.15),
          paper="16x (43.09 M / 2.70 M = 15.96x)"),
    Claim("05-student-faster", "05", "003",
          "The student is measurably faster than the teacher on the CPU (batch 1, 128x128 LR).",
          Diff("05_results", "cpu_ms", {"model": _M05["csd"]}, {"model": _M05["teacher"]}, "<",
               noise=SpreadColumns(("_iqr", "_std"), "spread of the repeated timings"), unit="ms")),
    Claim("05-negatives-help", "05", "003",
          "More negatives improve the student (PSNR-Y rises with K).",
          Trend("05_negatives", ("K", "k", "negatives"), "psnr_y", ">"),
          paper="a linear relationship between the number of negatives and performance"),
    Claim("05-negatives-cost-time", "05", "003",
          "More negatives cost training time: the step time rises with K.",
          Trend("05_negatives", ("K", "k", "negatives"), ("step_s", "step_ms", "step_time_ms"), ">"),
          paper="training time grows with the number of negatives"),
    Claim("05-negatives-cost-memory", "05", "003",
          "More negatives cost memory: the peak memory rises with K.",
          Trend("05_negatives", ("K", "k", "negatives"), ("peak_mb", "peak_memory_mb", "memory_mb"), ">"),
          paper="memory cost grows with the number of negatives"),
    # ---- notebook 06: PDD (seed 002)
    Claim("06-specialist-wins-source", "06", "002",
          "On the synthetic source domain the specialist beats the generalist (PSNR-Y; Tab. 1).",
          Diff("06_specialist_generalist", "psnr_y", {"model": _M06["specialist"], "domain": _SOURCE},
               {"model": _M06["generalist"], "domain": _SOURCE}, ">", noise=_SAME_IMAGES, unit="dB"),
          paper="PSNR 24.81 (static) / 26.26 (EMA) vs 23.98"),
    Claim("06-generalist-wins-target", "06", "002",
          "On the target (real-world) domain the generalist beats the specialist (PSNR-Y; Tab. 1).",
          Diff("06_specialist_generalist", "psnr_y", {"model": _M06["generalist"], "domain": _TARGET},
               {"model": _M06["specialist"], "domain": _TARGET}, ">", noise=_SAME_IMAGES, unit="dB"),
          paper="PSNR 25.08 vs 19.82"),
    Claim("06-static-improves-psnr", "06", "002",
          "PDD static improves on the generalist's PSNR-Y on the target domain (Fig. 4).",
          Diff("06_improvement", "psnr_y", {"method": _M06["static"]}, {"method": _M06["generalist"]}, ">",
               noise=_SAME_IMAGES, unit="dB"),
          paper="static: PSNR improves significantly on every domain"),
    Claim("06-ema-improves-psnr", "06", "002",
          "PDD EMA improves on the generalist's PSNR-Y on the target domain (Fig. 4).",
          Diff("06_improvement", "psnr_y", {"method": _M06["ema"]}, {"method": _M06["generalist"]}, ">",
               noise=_SAME_IMAGES, unit="dB"),
          paper="EMA improves all metrics, by the most"),
    Claim("06-ema-improves-niqe", "06", "002",
          "PDD EMA improves on the generalist's perceptual quality on the target domain: lower NIQE "
          "(in place of LPIPS / NRQM).",
          Diff("06_improvement", "niqe", {"method": _M06["ema"]}, {"method": _M06["generalist"]}, "<",
               noise=_SAME_IMAGES),
          paper="EMA improves all metrics, by the most"),
    Claim("06-naive-loses-perception", "06", "002",
          "Naive distillation loses perceptual quality on the target domain: higher NIQE than the generalist.",
          Diff("06_improvement", "niqe", {"method": _M06["naive"]}, {"method": _M06["generalist"]}, ">",
               noise=_SAME_IMAGES),
          paper="ND drops dramatically in LPIPS and NRQM while keeping or improving PSNR"),
    Claim("06-ema-at-least-static", "06", "002",
          "PDD EMA does better than PDD static on the target domain (PSNR-Y).",
          Diff("06_improvement", "psnr_y", {"method": _M06["ema"]}, {"method": _M06["static"]}, ">",
               noise=_SAME_IMAGES, unit="dB"),
          paper="EMA (ours) 25.94 vs SingleFixed 25.71 dB on Canon (Tab. 3)"),
    Claim("06-l1-intra-favours-fidelity", "06", "002",
          "Measuring the intra-model distance with L1 instead of cross-entropy favours fidelity: higher PSNR-Y.",
          Diff("06_ablation", "psnr_y", {"variant": ("L1 intra", "l1", "intra L1")},
               {"variant": ("CE intra", "ce", "both (CE)", "intra CE")}, ">", noise=_SAME_IMAGES, unit="dB"),
          paper="L1 26.17 vs CE 25.94 dB on Canon (Tab. 3)"),
    Claim("06-static-closes-domain-gap", "06", "002",
          "PDD static pulls the specialist's outputs on target inputs towards its outputs on source "
          "inputs: a smaller distance between the two clouds of low-level features (Fig. 5, Fig. 6).",
          Diff("06_cloud_distance", "kl_source_target", {"model": ("PDD static (after)", "static")},
               {"model": ("specialist (before)", "specialist")}, "<",
               noise=Unmeasured("one set of crops per domain")),
          paper="the KL divergence between labelled and unlabelled predictions decreases"),
    Claim("06-color-correction", "06", "002",
          "Colour correction removes the colour shift of the adapted model: lower mean colour error.",
          Diff("06_color", ("mean_color_error", "color_error"), {"correction": ("on", "after", "yes", True)},
               {"correction": ("off", "before", "no", False)}, "<", noise=_SAME_IMAGES)),
)


def claims_by_id() -> dict[str, Claim]:
    ids = [c.id for c in CLAIMS]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"duplicate claim ids: {', '.join(sorted(dup))}")
    return {c.id: c for c in CLAIMS}


# --------------------------------------------------------------------------------------------
# evaluation, rendering, checking


def evaluate(claim: Claim, tables: Tables) -> Result:
    """The status of one claim against the tables of ``tables``."""
    missing = claim.test.missing(tables)
    if missing:
        return Result(claim, TABLE_MISSING, "", f"table missing: run notebook {claim.notebook} "
                      f"(no {', '.join(m + '.csv' for m in missing)} in {tables.dir.name}/)")
    present = [n for n in claim.test.tables() if tables.exists(n)]
    profiles = sorted({str(tables[n].provenance.get("profile")) for n in present
                       if tables[n].provenance.get("profile")})
    profile = ", ".join(profiles) or None
    try:
        ev = claim.test.evaluate(tables)
    except _NotMeasured as exc:
        return Result(claim, NOT_MEASURED, "", str(exc), profile=profile)
    except ClaimError as exc:
        return Result(claim, ERROR, "", str(exc), profile=profile)
    return Result(claim, ev.status, ev.ours, ev.why, ev.margin, ev.band, profile)


def evaluate_all(figures_dir: str | Path = DEFAULT_FIGURES,
                 claims: Iterable[Claim] = CLAIMS) -> list[Result]:
    tables = Tables(figures_dir)
    return [evaluate(c, tables) for c in claims]


def to_json(results: Sequence[Result]) -> dict:
    """The content of ``claims.json`` (deterministic: no dates, so it changes only with the tables)."""
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    return {"about": "The course's claims, computed from the committed figures/ tables by "
                     "`python -m srlib.claims build`; do not edit by hand.",
            "rule": RULE, "counts": counts, "claims": [r.record() for r in results]}


def _cell(s: Any) -> str:
    return "" if s is None else str(s).replace("|", "\\|").replace("\n", " ")


def seed_heading(key: str) -> str:
    """``Seed 000: <title>`` and where it comes from, for a section of the claims table."""
    seed = SEEDS[key]
    return (f"## Seed {key}: {seed.title}\n\n"
            f"Source file `{seed.file}`; <{seed.link}>; course notebook(s) {seed.notebooks}.")


def seed_table(records: Sequence[Mapping]) -> str:
    """The Markdown table of some claim records (entries of ``claims.json``)."""
    lines = ["| claim | notebook | the paper | ours | status | why |", "|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| **{r['id']}**: {_cell(r['claim'])} | {r['notebook']} "
                     f"| {_cell(r['paper']) or 'no number in the seed'} "
                     f"| {_cell(r['ours']) or '-'} | **{r['status']}** | {_cell(r['why'])} |")
    return "\n".join(lines)


def render_markdown(data: Mapping) -> str:
    """``claims.md`` from the content of ``claims.json``: one table per seed."""
    recs = data["claims"]
    lines = ["# The course's claims, checked", "",
             "Generated by `python -m srlib.claims build` from the committed `figures/` tables; "
             "`python -m srlib.claims check` (part of `make test`) fails when they disagree. "
             "Do not edit by hand.", "",
             f"**Rule.** {data['rule']}", "",
             "**Totals.** " + ", ".join(f"{s}: {n}" for s, n in data["counts"].items() if n), ""]
    for key in SEEDS:
        rows = [r for r in recs if r["seed"] == key]
        if rows:
            lines += [seed_heading(key), "", seed_table(rows), ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class CourseTable:
    """A table of ``figures/``: its name, Markdown rendering and provenance record."""

    name: str
    markdown: str
    provenance: dict

    @property
    def notebook(self) -> str:
        return self.name[:2]


def course_tables(figures_dir: str | Path = DEFAULT_FIGURES) -> list[CourseTable]:
    """Every ``NN_*.md`` table of a figures folder with its provenance, in notebook order."""
    figures_dir = Path(figures_dir)
    out = []
    for md in sorted(figures_dir.glob("[0-9][0-9]_*.md")):
        if not md.with_suffix(".csv").is_file():
            continue
        try:
            prov = json.loads(md.with_name(md.stem + ".provenance.json").read_text())
        except (OSError, json.JSONDecodeError):
            prov = {}
        out.append(CourseTable(md.stem, md.read_text(), prov))
    return out


def _code_commit() -> str | None:
    """The commit that last changed this module (``-dirty`` when it has uncommitted changes).

    The claims are a function of this module and of the tables alone, so their provenance names
    this file's commit, not the whole tree's (other uncommitted work does not change them)."""
    import subprocess

    here = Path(__file__).resolve()
    try:
        sha = subprocess.run(["git", "log", "-1", "--format=%H", "--", here.name], cwd=here.parent,
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", here.name], cwd=here.parent,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0 or not sha.stdout.strip():
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def provenance_record(figures_dir: str | Path, results: Sequence[Result]) -> dict:
    """``claims.provenance.json``: the command, this module's commit, and the sha256 of every input
    table (deterministic: the same inputs give the same bytes)."""
    import hashlib

    from . import __version__

    figures_dir = Path(figures_dir)
    names = sorted({n for r in results for n in r.claim.test.tables() if (figures_dir / f"{n}.csv").is_file()})
    inputs = {f"{n}.csv": hashlib.sha256((figures_dir / f"{n}.csv").read_bytes()).hexdigest() for n in names}
    profiles = sorted({r.profile for r in results if r.profile})
    return {"generated_by": "python -m srlib.claims build", "git_commit": _code_commit(),
            "code": "srlib/claims.py", "srlib_version": __version__, "profile": ", ".join(profiles) or None,
            "inputs": inputs, "files": [JSON_NAME, MD_NAME]}


def build(figures_dir: str | Path = DEFAULT_FIGURES) -> tuple[Path, Path]:
    """Write ``claims.json``, ``claims.md`` and ``claims.provenance.json`` into ``figures_dir``."""
    from .report import PROVENANCE_SUFFIX, _atomic_write_bytes

    figures_dir = Path(figures_dir)
    results = evaluate_all(figures_dir)
    data = to_json(results)
    jp, mp = figures_dir / JSON_NAME, figures_dir / MD_NAME
    _atomic_write_bytes(jp, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())
    _atomic_write_bytes(mp, render_markdown(data).encode())
    prov = provenance_record(figures_dir, results)
    _atomic_write_bytes(figures_dir / f"claims{PROVENANCE_SUFFIX}",
                        (json.dumps(prov, indent=2, sort_keys=True) + "\n").encode())
    return jp, mp


@dataclass
class CheckReport:
    failures: list[str]
    pending: list[str]
    ok_count: int

    @property
    def ok(self) -> bool:
        return not self.failures


def check(figures_dir: str | Path = DEFAULT_FIGURES) -> CheckReport:
    """Compare the claims computed from the tables with ``claims.json`` (rules in the module docstring)."""
    figures_dir = Path(figures_dir)
    jp = figures_dir / JSON_NAME
    fix = "run `python -m srlib.claims build` and commit figures/claims.*"
    try:
        recorded_data = json.loads(jp.read_text())
        recorded = {r["id"]: r for r in recorded_data["claims"]}
    except FileNotFoundError:
        return CheckReport([f"{jp} is missing: {fix}"], [], 0)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return CheckReport([f"{jp} is not a claims file ({exc}): {fix}"], [], 0)
    tables = Tables(figures_dir)
    committed = tables.notebooks_with_tables()
    failures, pending, ok = [], [], 0
    for r in (evaluate(c, tables) for c in CLAIMS):
        cid = r.claim.id
        rec = recorded.get(cid)
        if r.status == TABLE_MISSING:
            if r.claim.notebook in committed:
                failures.append(f"{cid}: {r.why}; notebook {r.claim.notebook} has committed tables, so "
                                "this one must be there too (or the claim must read another table)")
            else:
                pending.append(f"{cid}: {r.why}")
            if rec is not None and rec.get("status") != r.status and r.claim.notebook not in committed:
                failures.append(f"{cid}: claims.json says {rec.get('status')!r} but the table is missing: {fix}")
            continue
        if r.status == ERROR:
            failures.append(f"{cid}: {r.why}")
            continue
        if rec is None:
            failures.append(f"{cid}: not in claims.json (status now {r.status!r}): {fix}")
        elif rec.get("status") != r.status:
            failures.append(f"{cid}: status {r.status!r} from the tables differs from {rec.get('status')!r} "
                            f"in claims.json ({r.why}): {fix}")
        else:
            ok += 1
    for cid in sorted(set(recorded) - {c.id for c in CLAIMS}):
        failures.append(f"{cid}: in claims.json but no longer declared in srlib/claims.py: {fix}")
    mp = figures_dir / MD_NAME
    try:
        if mp.read_text() != render_markdown(recorded_data):
            failures.append(f"{mp.name} is not the rendering of {jp.name}: {fix}")
    except FileNotFoundError:
        failures.append(f"{mp} is missing: {fix}")
    return CheckReport(failures, pending, ok)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srlib.claims",
                                 description="The course's claims table, computed from the committed tables.")
    ap.add_argument("command", choices=("build", "check", "show"))
    ap.add_argument("--figures-dir", type=Path, default=DEFAULT_FIGURES,
                    help="folder with the tables and claims.json (default: the repository's figures/)")
    args = ap.parse_args(argv)
    if not args.figures_dir.is_dir():
        print(f"error: {args.figures_dir} is not a folder", file=sys.stderr)
        return 2
    if args.command == "show":
        print(render_markdown(to_json(evaluate_all(args.figures_dir))))
        return 0
    if args.command == "build":
        results = evaluate_all(args.figures_dir)
        jp, mp = build(args.figures_dir)
        counts = to_json(results)["counts"]
        print(f"wrote {jp} and {mp}: " + ", ".join(f"{s} {n}" for s, n in counts.items() if n))
        errors = [r for r in results if r.status == ERROR]
        for r in errors:
            print(f"error: {r.claim.id}: {r.why}", file=sys.stderr)
        return 1 if errors else 0
    rep = check(args.figures_dir)
    for p in rep.pending:
        print(f"pending  {p}")
    for f in rep.failures:
        print(f"FAILED   {f}", file=sys.stderr)
    print(f"claims check: {rep.ok_count} as recorded, {len(rep.pending)} pending (notebook without "
          f"tables yet), {len(rep.failures)} failed")
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
