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
