"""The project's setup stays coherent and the README's setup instructions stay true.

- environment.yml mirrors pyproject.toml, and pins torch/torchvision to the Makefile's versions;
- one minimum Python version in README, pyproject.toml, environment.yml and the Makefile;
- one cache layout: ``<root>/models`` and ``<root>/weights`` under ``$SRLIB_CACHE`` or
  ``~/.cache/srlib``, and ``make clean-cache`` removes exactly those;
- ``make help`` lists every target; ``srlib list`` shows what the README says it shows;
- notebooks are clean and parameterised.
"""

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text()
README = (ROOT / "README.md").read_text()
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _norm(spec: str) -> str:
    return re.sub(r"\s+", "", spec).lower().replace("_", "-")


def _name(spec: str) -> str:
    return re.match(r"[a-z0-9.\-]+", _norm(spec)).group(0)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.match(r"\d+(?:\.\d+)*", text).group(0).split("."))


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject_specs() -> dict[str, str]:
    project = _project()
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {_name(s): _norm(s) for s in specs}


def _environment_specs() -> dict[str, str]:
    pip_section = (ROOT / "environment.yml").read_text().split("- pip:", 1)[1]
    specs = [line.strip()[2:] for line in pip_section.splitlines() if line.strip().startswith("- ")]
    return {_name(s): _norm(s) for s in specs}


def _make_variable(name: str) -> str:
    m = re.search(rf"^{name}\s*[:?]?=\s*(.*)$", MAKEFILE, re.M)
    assert m, f"Makefile defines no {name}"
    return m.group(1).strip()


def _torch_pins() -> dict[str, str]:
    """``{"torch": "2.14.1", ...}`` from the Makefile's TORCH_SPEC."""
    pins = {}
    for spec in _make_variable("TORCH_SPEC").split():
        name, sep, version = _norm(spec).partition("==")
        assert sep, f"TORCH_SPEC must pin exact versions (name==version), got {spec!r}"
        pins[name] = version
    return pins


# ------------------------------------------------------------------ versions (issue points 3 and 7)
def test_environment_yml_lists_the_same_packages_as_pyproject():
    wanted, listed = _pyproject_specs(), _environment_specs()
    assert set(listed) == set(wanted), (f"only in environment.yml: {sorted(set(listed) - set(wanted))}; "
                                        f"only in pyproject.toml: {sorted(set(wanted) - set(listed))}")


def test_environment_yml_versions_match_pyproject_and_the_makefile_pins():
    wanted, listed, pins = _pyproject_specs(), _environment_specs(), _torch_pins()
    assert set(pins) == {"torch", "torchvision"}, pins
    for name, spec in listed.items():
        if name in pins:
            # the tested version, exactly as make setup installs it ...
            assert spec == f"{name}=={pins[name]}", (
                f"environment.yml has {spec}; the Makefile installs {name}=={pins[name]} (TORCH_SPEC)")
            # ... and one that pyproject.toml's lower bound accepts
            low = re.search(r">=([\d.]+)", wanted[name])
            assert low and _version(pins[name]) >= _version(low.group(1)), (
                f"{name}=={pins[name]} does not satisfy pyproject.toml's {wanted[name]}")
        else:
            assert spec == wanted[name], f"environment.yml has {spec}, pyproject.toml {wanted[name]}"


def test_one_minimum_python_everywhere():
    low = re.fullmatch(r">=(\d+\.\d+)", _project()["requires-python"].strip())
    assert low, "requires-python should be a plain lower bound like '>=3.11'"
    low = low.group(1)
    readme = re.search(r"Python (\d+\.\d+) or newer", README)
    assert readme and readme.group(1) == low, "README's 'Python X or newer' must match requires-python"
    conda = re.search(r"python=(\d+\.\d+)", (ROOT / "environment.yml").read_text()).group(1)
    assert _version(conda) >= _version(low)
    assert _make_variable("MIN_PYTHON") == low, "the Makefile's MIN_PYTHON must match requires-python"


def test_readme_names_the_tested_versions():
    for name, version in _torch_pins().items():
        assert re.search(rf"\b{name} {re.escape(version)}\b", README), (
            f"README should say that {name} {version} (the Makefile's pin) is the tested version")


def test_this_interpreter_is_supported():
    import sys
    low = _version(re.search(r">=([\d.]+)", _project()["requires-python"]).group(1))
    assert sys.version_info[:len(low)] >= low


# ------------------------------------------------------------------ cache layout (issue point 5)
def test_cache_layout_under_srlib_cache(tmp_path, monkeypatch):
    import srlib.train as T
    import srlib.weights as W
    from srlib.paths import cache_root

    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert T.default_cache_dir() == tmp_path / "c" / "models"
    assert W.default_cache_dir() == tmp_path / "c" / "weights"
    assert W.cache_path("RealESRGAN_x4plus") == tmp_path / "c" / "weights" / "RealESRGAN_x4plus.pth"


def test_cache_layout_default_and_tilde(tmp_path, monkeypatch):
    import srlib.train as T
    import srlib.weights as W

    monkeypatch.setenv("HOME", str(tmp_path))
    for unset in (None, ""):  # unset and empty both mean the default
        if unset is None:
            monkeypatch.delenv("SRLIB_CACHE", raising=False)
        else:
            monkeypatch.setenv("SRLIB_CACHE", unset)
        assert T.default_cache_dir() == tmp_path / ".cache" / "srlib" / "models"
        assert W.default_cache_dir() == tmp_path / ".cache" / "srlib" / "weights"
    monkeypatch.setenv("SRLIB_CACHE", "~/elsewhere")
    assert T.default_cache_dir() == tmp_path / "elsewhere" / "models"
    assert W.default_cache_dir() == tmp_path / "elsewhere" / "weights"


def test_cached_train_writes_under_models(tmp_path, monkeypatch):
    import torch

    from srlib.train import cached_train

    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path))
    run = cached_train({"layout": "test"}, lambda cfg: {"G": torch.nn.Linear(1, 1)})
    assert run.path == tmp_path / "models" / run.key
    assert (run.path / "models.pt").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["models"]


@needs_make
def test_make_clean_cache_removes_models_and_weights_only(tmp_path):
    root = tmp_path / "cache"
    for sub in ("models/abc", "weights", "notes"):
        (root / sub).mkdir(parents=True)
    (root / "models/abc/models.pt").write_bytes(b"x")
    (root / "weights/w.pth").write_bytes(b"x")
    (root / "notes/keep.txt").write_text("mine")
    res = subprocess.run(["make", "-s", "clean-cache", f"SRLIB_CACHE={root}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in root.iterdir()) == ["notes"]
    assert (root / "notes/keep.txt").read_text() == "mine"
    (root / "notes/keep.txt").unlink()
    (root / "notes").rmdir()
    subprocess.run(["make", "-s", "clean-cache", f"SRLIB_CACHE={root}"], cwd=ROOT, check=True,
                   capture_output=True, timeout=60)
    assert not root.exists(), "an empty cache root is removed too"


# ------------------------------------------------------------------ Makefile (issue points 1 and 6)
def _targets() -> list[str]:
    return re.findall(r"^([a-zA-Z0-9_-]+):(?!=)", MAKEFILE, re.M)


@needs_make
def test_make_help_lists_every_target():
    targets = _targets()
    assert {"help", "setup", "test", "test-fast", "course", "clean", "clean-cache"} <= set(targets)
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    listed = re.findall(r"^  ([a-zA-Z0-9_-]+) +\S", out.split("\nvariables")[0], re.M)
    assert sorted(listed) == sorted(targets), f"make help lists {listed}, the Makefile has {targets}"
    phony = set(" ".join(re.findall(r"^\.PHONY:(.*)$", MAKEFILE, re.M)).split())
    assert set(targets) <= phony, f"targets missing from .PHONY: {sorted(set(targets) - phony)}"


def test_readme_documents_every_make_target():
    missing = [t for t in _targets() if f"`make {t}`" not in README]
    assert not missing, f"README's make targets table lacks {missing}"


@needs_make
def test_make_setup_says_what_it_does_and_lets_pip_show_progress(tmp_path):
    res = subprocess.run(["make", "-n", "setup", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=60)
    steps = re.findall(r"\[(\d)/(\d)\]", res.stdout)
    assert len(steps) >= 4 and [int(a) for a, _ in steps] == list(range(1, len(steps) + 1))
    installs = [line for line in res.stdout.splitlines() if " install " in line and "pip" in line]
    heavy = [line for line in installs if "torch==" in line or ".[course,test]" in line]
    assert len(heavy) == 2, installs
    assert not any("--quiet" in line or re.search(r"\s-q\b", line) for line in heavy), heavy


# ------------------------------------------------------------------ README (issue points 2 and 4)
def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    return [line.split("#")[0].strip() for b in blocks for line in b.splitlines() if line.strip()]


def test_readme_commands_use_the_virtual_environment():
    bare = [c for c in _readme_commands()
            if re.match(r"(python3?|pip3?|pytest|jupyter)\b", c)]
    assert not bare, f"README commands that fail outside an activated environment: {bare}"


def test_srlib_list_shows_url_and_sha256(capsys, tmp_path, monkeypatch):
    import srlib.weights as W
    from srlib.cli import main

    assert re.search(r"srlib list .*URL, sha256", README)
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split()[0]: b for b in out.strip().split("\n\n")}
    assert list(blocks) == list(W.OFFICIAL)
    for name, entry in W.OFFICIAL.items():
        assert re.search(rf"url: +{re.escape(entry.url)}$", blocks[name], re.M), blocks[name]
        assert re.search(rf"sha256: +{entry.sha256 or 'none published'}", blocks[name]), blocks[name]
    assert str(tmp_path / "weights") in out


# ------------------------------------------------------------------ notebooks
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
