"""The committed figures/ come from a clean tree: no provenance record may say "-dirty".

``make course`` refuses to write figures/ from a dirty tree (srlib.course.check_figures_target);
this test catches committed files that were made before that rule, or with --allow-dirty.

Switched on per notebook prefix: a prefix in ``NOT_YET_REGENERATED`` is expected to fail (xfail,
not strict) until its figures are regenerated from a clean HEAD; remove the prefix then, and the
test guards it from that commit on. Every other prefix, including notebooks added later, is
checked.
"""

import json
from pathlib import Path

import pytest

FIGURES = Path(__file__).resolve().parents[1] / "figures"

#: Notebook prefixes whose committed figures predate the clean regeneration (issue 12, item 7).
NOT_YET_REGENERATED: set[str] = set()

RECORDS = sorted(FIGURES.glob("*.provenance.json"))
PREFIXES = sorted({p.name[:2] for p in RECORDS})


def _dirty(prefix: str) -> list[str]:
    bad = []
    for path in RECORDS:
        if not path.name.startswith(prefix):
            continue
        commit = json.loads(path.read_text()).get("git_commit")
        if not commit or str(commit).endswith("-dirty"):
            bad.append(f"{path.name}: git_commit={commit!r}")
    return bad


def _param(prefix):
    if prefix in NOT_YET_REGENERATED:
        return pytest.param(prefix, marks=pytest.mark.xfail(
            strict=False, reason=f"figures/{prefix}_* predate the clean regeneration; drop "
                                 f"{prefix!r} from NOT_YET_REGENERATED once regenerated"))
    return prefix


@pytest.mark.parametrize("prefix", [_param(p) for p in PREFIXES] or ["none"])
def test_committed_provenance_names_a_clean_commit(prefix):
    bad = _dirty(prefix)
    assert not bad, ("committed figures made from a tree with uncommitted changes; regenerate them "
                     "with `make course` from a clean checkout:\n" + "\n".join(bad))


def test_every_committed_figure_has_a_provenance_record():
    stems = {p.name.split(".")[0] for p in FIGURES.iterdir() if p.suffix in (".png", ".csv", ".md")
             and not p.name.startswith("README")}
    missing = sorted(s for s in stems if not (FIGURES / f"{s}.provenance.json").exists())
    assert not missing, f"figures without a provenance record: {missing}"
