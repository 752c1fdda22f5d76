"""The course runner: explicit kernel, injected parameters, out dir, failures named."""

import json
import os
import subprocess
import sys

import nbformat
import pytest

from srlib import course


def _write_nb(path, *cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'profile = "standard"\nseed = 0\ndevice = "auto"\nfigures_dir = "../figures"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runner_injects_parameters_and_reports_failures(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _write_nb(nbdir / "00_ok.ipynb",
              "import os, sys, pathlib\n"
              "pathlib.Path(figures_dir, 'seen.json').write_text("
              "__import__('json').dumps([profile, seed, os.getcwd(), sys.executable, "
              "os.environ.get('OMP_NUM_THREADS')]))")
    _write_nb(nbdir / "01_bad.ipynb", "x = 1", "raise RuntimeError('broken on purpose')")
    figs, out = tmp_path / "figs", tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "srlib.course", "--profile", "smoke",
                           "--notebooks-dir", str(nbdir), "--figures-dir", str(figs),
                           "--out-dir", str(out), "--jobs", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "FAILED 01_bad" in proc.stderr
    assert "RuntimeError: broken on purpose" in proc.stderr
    assert "| 00_ok | ok |" in proc.stdout
    profile, seed, cwd, exe, threads = json.loads((figs / "seen.json").read_text())
    # two notebooks side by side share the cores instead of each taking all of them
    expected = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // 2))
    assert threads == expected
    assert profile == "smoke" and seed == 0
    assert cwd == str(nbdir)
    assert exe == sys.executable  # the kernel is the interpreter that runs the course
    assert (out / "00_ok.ipynb").exists() and (out / "01_bad.ipynb").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert [r["ok"] for r in summary] == [True, False]
    assert all(r["peak_mb"] > 0 for r in summary)
    # the sources stay clean
    src = json.loads((nbdir / "00_ok.ipynb").read_text())
    assert not any(c.get("outputs") for c in src["cells"] if c["cell_type"] == "code")


def test_runner_times_out(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _write_nb(nbdir / "00_slow.ipynb", "import time; time.sleep(60)")
    results = course.run_course(profile="smoke", notebooks_dir=nbdir, figures_dir=tmp_path / "f",
                                out_dir=tmp_path / "o", timeout=8, log=lambda *a: None)
    assert not results[0].ok and "timed out" in results[0].error
    assert results[0].seconds < 30


def test_wrong_profile_and_unknown_notebook(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "srlib.course", "--profile", "fast"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "smoke, standard, paper" in proc.stderr
    (tmp_path / "00_a.ipynb").write_text("{}")
    with pytest.raises(SystemExit, match="no notebook matches 07"):
        course.list_notebooks(tmp_path, ["07"])


def test_relative_output_folders_resolve_from_the_callers_cwd(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _write_nb(nbdir / "00_rel.ipynb", "import pathlib; pathlib.Path(figures_dir, 'x.txt').write_text('1')")
    monkeypatch.chdir(tmp_path)
    (res,) = course.run_course(profile="smoke", notebooks_dir="notebooks", figures_dir="figs",
                               out_dir="build/nb", log=lambda *a: None)
    assert res.ok, res.error
    assert (tmp_path / "figs" / "x.txt").exists()
    assert (tmp_path / "build" / "nb" / "00_rel.ipynb").exists()


def test_executed_notebooks_hold_figures_and_rendered_tables(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _write_nb(nbdir / "00_fill.ipynb",
              "import matplotlib.pyplot as plt\n"
              "from srlib.report import Report\n"
              "rep = Report(figures_dir, notebook='00', profile=profile)\n"
              "fig, ax = plt.subplots(); ax.plot([0, 1])\n"
              "rep.figure(fig, 'line')\n"
              "plt.show()",
              "rep.table([{'method': 'bicubic', 'psnr_y': 25.0}], 'tab')")
    (res,) = course.run_course(profile="smoke", notebooks_dir=nbdir, figures_dir=tmp_path / "f",
                               out_dir=tmp_path / "o", log=lambda *a: None)
    assert res.ok, res.error
    nb = nbformat.read(tmp_path / "o" / "00_fill.ipynb", as_version=4)
    fig_out = [o for o in nb.cells[2].outputs if o.get("output_type") == "display_data"]
    assert fig_out and "image/png" in fig_out[0]["data"], nb.cells[2].outputs
    table_out = nb.cells[3].outputs[0]["data"]
    assert "| bicubic | 25.0000 |" in table_out["text/markdown"]


def test_committed_figures_need_standard_and_a_clean_tree(tmp_path):
    committed = course.committed_figures_dir()
    course.check_figures_target(tmp_path / "anywhere", "smoke", commit="abc-dirty")  # fine
    with pytest.raises(SystemExit, match="standard profile"):
        course.check_figures_target(committed, "smoke", commit="abc")
    with pytest.raises(SystemExit, match="uncommitted changes.*--allow-dirty"):
        course.check_figures_target(committed, "standard", commit="abc-dirty")
    course.check_figures_target(committed, "standard", commit="abc")
    course.check_figures_target(committed, "standard", commit="abc-dirty", allow_dirty=True)


def test_notebooks_start_in_the_order_of_only_and_are_reported_in_course_order(tmp_path):
    names = ["00_a.ipynb", "01_b.ipynb", "02_c.ipynb"]
    nbs = [tmp_path / n for n in names]
    assert course.run_order(nbs) == nbs
    assert [p.name for p in course.run_order(nbs, ["02", "00", "01"])] == ["02_c.ipynb", "00_a.ipynb", "01_b.ipynb"]
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    for n in names:  # each notebook appends its name to one file: the start order
        _write_nb(nbdir / n, f"open({str(tmp_path / 'order.txt')!r}, 'a').write({n[:2]!r} + ' ')")
    results = course.run_course(profile="smoke", notebooks_dir=nbdir, figures_dir=tmp_path / "f",
                                out_dir=tmp_path / "o", only=["02", "00", "01"], jobs=1, log=lambda *a: None)
    assert (tmp_path / "order.txt").read_text().split() == ["02", "00", "01"]
    assert [r.notebook for r in results] == ["00_a", "01_b", "02_c"]
