import csv
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from srlib import report  # noqa: E402


def test_table_writes_csv_markdown_and_provenance(tmp_path):
    rows = [{"method": "bicubic", "psnr_y": 25.123456, "lpips": None},
            {"method": "srresnet", "psnr_y": 26.5, "lpips": None}]
    path = report.save_table(rows, "02_results", tmp_path, profile="smoke", backbone="vgg19-random",
                             notes=["lpips unavailable: no AlexNet weights"])
    with open(path) as fh:
        got = list(csv.DictReader(fh))
    assert got[0] == {"method": "bicubic", "psnr_y": "25.123456", "lpips": ""}
    md = (tmp_path / "02_results.md").read_text()
    assert "| bicubic | 25.1235 | n/a |" in md
    assert "- lpips unavailable: no AlexNet weights" in md
    prov = json.loads((tmp_path / "02_results.provenance.json").read_text())
    assert prov["profile"] == "smoke" and prov["backbone"] == "vgg19-random"
    assert prov["files"] == ["02_results.csv", "02_results.md"]
    assert prov["srlib_version"]
    assert "git_commit" in prov


def test_empty_table_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        report.save_table([], "x", tmp_path, profile="smoke")


def test_report_prefixes_names_and_records_time(tmp_path):
    rep = report.Report(tmp_path, notebook="00", profile="standard")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = rep.figure(fig, "curve", extra={"crop_border": 4})
    plt.close(fig)
    assert png.name == "00_curve.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prov = json.loads((tmp_path / "00_curve.provenance.json").read_text())
    assert prov["notebook"] == "00" and prov["crop_border"] == 4
    assert prov["seconds"] >= 0
    assert rep.table([{"a": 1}], "00_t").name == "00_t.csv"  # prefix not doubled


def test_nonfinite_values_are_recorded_not_crashing(tmp_path):
    report.save_table([{"psnr": float("inf")}], "t", tmp_path, profile="smoke",
                      extra={"x": float("nan")})
    assert "| inf |" in (tmp_path / "t.md").read_text()
    assert json.loads((tmp_path / "t.provenance.json").read_text())["x"] == "nan"


def test_figures_dir_defaults_to_build_per_profile(monkeypatch):
    monkeypatch.delenv(report.COURSE_RUNNER_ENV, raising=False)
    for value in (None, "", "auto"):
        got = report.resolve_figures_dir(value, "smoke")
        assert got == report.REPO_ROOT / "build" / "figures" / "smoke" and got.is_dir()
    assert report.Report(None, notebook="00", profile="standard").figures_dir == \
        report.REPO_ROOT / "build" / "figures" / "standard"


def test_committed_figures_are_refused_outside_the_course_runner(monkeypatch, tmp_path):
    monkeypatch.delenv(report.COURSE_RUNNER_ENV, raising=False)
    committed = report.committed_figures_dir()
    with pytest.raises(ValueError, match="only `make course`"):
        report.resolve_figures_dir(committed, "standard")
    with pytest.raises(ValueError, match="make course"):
        report.Report(str(committed) + "/", notebook="00", profile="smoke")
    monkeypatch.setenv(report.COURSE_RUNNER_ENV, "1")
    assert report.resolve_figures_dir(committed, "standard") == committed.resolve()
    with pytest.raises(ValueError, match="standard profile"):
        report.resolve_figures_dir(committed, "smoke")
    assert report.resolve_figures_dir(tmp_path / "x", "smoke") == (tmp_path / "x").resolve()


def test_saved_table_renders_as_markdown(tmp_path):
    path = report.save_table([{"method": "bicubic", "psnr_y": 25.0}], "t", tmp_path,
                             profile="smoke", notes=["a note"])
    md = path._repr_markdown_()
    assert "| bicubic | 25.0000 |" in md and "- a note" in md
    assert path.suffix == ".csv" and path.read_text().startswith("method,psnr_y")
    assert report.SavedTable(tmp_path / "missing.csv")._repr_markdown_() is None


def test_git_commit_ignores_the_figures_a_run_writes(tmp_path):
    import subprocess

    from srlib.report import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.csv").write_text("1\n")
    (tmp_path / "src.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    clean = git_commit(tmp_path)
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "figures" / "a.csv").write_text("2\n")  # a course run rewrote a figure
    assert git_commit(tmp_path) == clean
    (tmp_path / "src.py").write_text("x = 2\n")  # a source change is dirty
    assert git_commit(tmp_path) == clean + "-dirty"
