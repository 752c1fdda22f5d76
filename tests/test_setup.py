"""The project's setup stays coherent: environment.yml mirrors pyproject.toml, notebooks are clean."""

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _norm(spec: str) -> str:
    return re.sub(r"\s+", "", spec).lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(map(_norm, project["dependencies"]))
    for extra in project["optional-dependencies"].values():
        wanted |= set(map(_norm, extra))
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = {_norm(line.strip()[2:]) for line in pip_section.splitlines()
              if line.strip().startswith("- ")}
    assert listed == wanted, (f"only in environment.yml: {sorted(listed - wanted)}; "
                              f"only in pyproject.toml: {sorted(wanted - listed)}")
    pyver = re.search(r"python=(\d+\.\d+)", text).group(1)
    low = re.search(r">=(\d+\.\d+)", project["requires-python"]).group(1)
    assert tuple(map(int, pyver.split("."))) >= tuple(map(int, low.split(".")))


def _notebooks():
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert _notebooks(), "notebooks/ has no notebooks"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_sources_are_clean_and_parameterised(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; clear them before committing"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    src = "".join(tagged[0]["source"])
    for name in ("profile", "seed", "device", "figures_dir"):
        assert re.search(rf"^{name}\s*=", src, re.M), f"{path.name}: parameter {name!r} missing"
    assert re.match(r"\d\d_[a-z0-9_]+\.ipynb$", path.name)
    assert nb["metadata"].get("kernelspec", {}).get("language", "python") == "python"
