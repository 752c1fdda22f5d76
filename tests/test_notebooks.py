"""Every course notebook runs end to end in the smoke profile (what CI checks on every change)."""

from pathlib import Path

import pytest

from srlib import course

NOTEBOOKS = course.list_notebooks(course.DEFAULT_NOTEBOOKS)


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(nb: Path, tmp_path):
    figures = tmp_path / "figures"
    results = course.run_course(profile="smoke", only=[nb.name[:2]], figures_dir=figures,
                                out_dir=tmp_path / "out", log=lambda *a: None)
    (res,) = results
    assert res.ok, f"{nb.name} failed: {res.error} (see {res.output})"
    written = sorted(p.name for p in figures.iterdir())
    assert any(n.endswith(".png") for n in written), f"{nb.name} saved no figure"
    stems = {n.split(".")[0] for n in written if not n.endswith(".provenance.json")}
    assert all(s.startswith(nb.name[:3]) for s in stems), f"unprefixed outputs: {stems}"
    for s in stems:
        assert (figures / f"{s}.provenance.json").exists(), f"{s} has no provenance record"
