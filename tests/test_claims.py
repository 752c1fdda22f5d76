"""The claims table: the status rule, each comparison on hand-computed tables, and the check policy."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from srlib import claims as C

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "figures"


def write_csv(folder: Path, name: str, text: str) -> Path:
    p = folder / f"{name}.csv"
    p.write_text(text.strip() + "\n")
    return p


# ---------------------------------------------------------------- the rule


@pytest.mark.parametrize("margin, band, status", [
    (0.5, 0.1, C.HELD), (-0.5, 0.1, C.NOT_HELD), (0.05, 0.1, C.NOT_RESOLVED), (-0.1, 0.1, C.NOT_RESOLVED),
    (0.01, None, C.HELD), (-0.01, None, C.NOT_HELD), (0.0, None, C.NOT_RESOLVED), (0.0, 0.0, C.NOT_RESOLVED),
])
def test_decide_rule(margin, band, status):
    assert C.decide(margin, band) == status


# ---------------------------------------------------------------- comparisons, hand computed


def test_diff_with_per_group_band(tmp_path):
    # a - b per category: +1.5, +2.5 -> std (ddof=1) sqrt(0.5), se = std / sqrt(2) = 0.5, band = 2 se = 1
    write_csv(tmp_path, "04_results", """
method,category,psnr_y
semantic,text,21.5
semantic,photos,24.5
semantic,overall,23
edsr,text,20
edsr,photos,22
edsr,overall,21
""")
    t = C.Diff("04_results", "psnr_y", {"method": "semantic", "category": "overall"},
               {"method": "edsr", "category": "overall"}, ">", noise=C.PerGroup("category"))
    ev = t.evaluate(C.Tables(tmp_path))
    assert ev.margin == pytest.approx(2.0)
    assert ev.band == pytest.approx(1.0)
    assert ev.status == C.HELD
    # a bound of 1.5 dB leaves a margin of 0.5 < 1: not resolved
    t2 = C.Diff("04_results", "psnr_y", {"method": "semantic", "category": "overall"},
                {"method": "edsr", "category": "overall"}, ">", 1.5, noise=C.PerGroup("category"))
    assert t2.evaluate(C.Tables(tmp_path)).status == C.NOT_RESOLVED
    # "<" with a bound: claim a - b < 3 -> margin 1
    t3 = C.Diff("04_results", "psnr_y", {"method": "semantic", "category": "overall"},
                {"method": "edsr", "category": "overall"}, "<", 3.0, noise=C.Exact())
    ev3 = t3.evaluate(C.Tables(tmp_path))
    assert ev3.margin == pytest.approx(1.0) and ev3.status == C.HELD


def test_paired_delta_reads_the_notebooks_own_difference(tmp_path):
    write_csv(tmp_path, "04_claims", """
baseline,metric,delta,se,n,status
vanilla EDSR (L1),psnr_y,0.30,0.1,12,held
vanilla EDSR (L1),niqe,0.15,0.1,12,not resolved
vanilla EDSR (L1),lpips,,,0,unavailable
""")
    tabs = C.Tables(tmp_path)
    ev = C.PairedDelta("04_claims", {"baseline": ("edsr", "vanilla EDSR (L1)"), "metric": "psnr_y"}, ">").evaluate(tabs)
    assert ev.status == C.HELD and ev.band == pytest.approx(0.2) and ev.margin == pytest.approx(0.3)
    ev = C.PairedDelta("04_claims", {"baseline": "vanilla EDSR (L1)", "metric": "niqe"}, "<").evaluate(tabs)
    assert ev.status == C.NOT_RESOLVED and ev.margin == pytest.approx(-0.15)
    claim = C.Claim("x", "04", "000", "t", C.PairedDelta("04_claims", {"baseline": "vanilla EDSR (L1)", "metric": "lpips"}))
    assert C.evaluate(claim, tabs).status == C.NOT_MEASURED


def test_diff_spread_columns_and_aliases(tmp_path):
    write_csv(tmp_path, "02_results", """
method,niqe,niqe_std
SRGAN,9.0,0.3
SRResNet,10.0,0.4
RRDBNet (PSNR),9.9,0.1
""")
    tabs = C.Tables(tmp_path)
    t = C.Diff("02_results", "niqe", {"method": "SRGAN"}, {"method": "SRResNet"}, "<", noise=C.SpreadColumns())
    ev = t.evaluate(tabs)
    assert ev.margin == pytest.approx(1.0) and ev.band == pytest.approx(0.5) and ev.status == C.HELD
    t2 = C.Diff("02_results", "niqe", {"method": ("RRDB (PSNR)", "RRDBNet (PSNR)")}, {"method": "SRResNet"}, "<",
                noise=C.SpreadColumns())
    ev2 = t2.evaluate(tabs)   # margin 0.1 within band hypot(0.1, 0.4)
    assert ev2.status == C.NOT_RESOLVED and ev2.band == pytest.approx(math.hypot(0.1, 0.4))


def test_per_seed_column_band(tmp_path):
    write_csv(tmp_path, "01_losses_modes", """
setting,modes_covered_mean,modes_covered_per_seed
a,6.0,6 7 5
b,4.0,4 4 4
""")
    t = C.Diff("01_losses_modes", "modes_covered_mean", {"setting": "a"}, {"setting": "b"}, ">",
               noise=C.PerSeedColumn("modes_covered_per_seed"))
    ev = t.evaluate(C.Tables(tmp_path))
    assert ev.band == pytest.approx(2 / math.sqrt(3))   # diffs 2, 3, 1 -> std 1, 2 se = 2 / sqrt(3)
    assert ev.margin == pytest.approx(2.0) and ev.status == C.HELD


def test_trend_slope_and_standard_error(tmp_path):
    # y = 1, 3, 2, 5 at x = 0..3: Sxx = 5, Sxy = 5.5 -> slope 1.1; fitted 1.1, 2.2, 3.3, 4.4 ->
    # residual SS = 0.01 + 0.64 + 1.69 + 0.36 = 2.7 -> se = sqrt(2.7 / (4 - 2) / 5); band = 2 se
    write_csv(tmp_path, "05_negatives", "k,step_ms\n0,1\n1,3\n2,2\n3,5")
    ev = C.Trend("05_negatives", ("K", "k"), "step_ms", ">").evaluate(C.Tables(tmp_path))
    assert ev.margin == pytest.approx(1.1)
    assert ev.band == pytest.approx(2 * math.sqrt(2.7 / 2 / 5))
    assert ev.status == C.HELD
    ev_fall = C.Trend("05_negatives", "k", "step_ms", "<").evaluate(C.Tables(tmp_path))
    assert ev_fall.status == C.NOT_HELD


def test_ratio_and_all_of(tmp_path):
    write_csv(tmp_path, "05_results", "model,params,psnr_y\nteacher,1600,30\ncsd,100,29.9")
    tabs = C.Tables(tmp_path)
    assert C.Ratio("05_results", "params", {"model": "teacher"}, {"model": "csd"}, 16.0, 0.1).evaluate(tabs).status == C.HELD
    assert C.Ratio("05_results", "params", {"model": "teacher"}, {"model": "csd"}, 20.0, 0.1).evaluate(tabs).status == C.NOT_HELD
    both = C.AllOf((C.Diff("05_results", "psnr_y", {"model": "teacher"}, {"model": "csd"}, ">", noise=C.Exact()),
                    C.Diff("05_results", "psnr_y", {"model": "teacher"}, {"model": "csd"}, "<", noise=C.Exact())))
    assert both.evaluate(tabs).status == C.NOT_HELD


def test_paired_rows_and_first_of(tmp_path):
    # per-image NIQE: SRGAN - SRResNet = -1, -2, -3 -> mean -2, std 1, band 2 / sqrt(3)
    write_csv(tmp_path, "02_niqe_per_image", """
method,image,niqe
SRGAN,a,9
SRGAN,b,8
SRGAN,c,7
SRResNet,a,10
SRResNet,b,10
SRResNet,c,10
HR (ground truth),a,5
""")
    write_csv(tmp_path, "02_results", "method,niqe\nSRGAN,8\nSRResNet,7")
    tabs = C.Tables(tmp_path)
    paired = C.Paired("02_niqe_per_image", "niqe", {"method": "SRGAN"}, {"method": "SRResNet"}, "<")
    ev = paired.evaluate(tabs)
    assert ev.margin == pytest.approx(2.0) and ev.band == pytest.approx(2 / math.sqrt(3)) and ev.status == C.HELD
    summary = C.Diff("02_results", "niqe", {"method": "SRGAN"}, {"method": "SRResNet"}, "<")
    first = C.FirstOf((paired, summary))
    assert first.evaluate(tabs).status == C.HELD           # the per-image table wins when it exists
    (tmp_path / "02_niqe_per_image.csv").unlink()
    tabs = C.Tables(tmp_path)
    ev = first.evaluate(tabs)
    assert ev.status == C.NOT_HELD and "02_niqe_per_image not written" in ev.why
    assert first.missing(tabs) == []
    (tmp_path / "02_results.csv").unlink()
    claim = C.Claim("x", "02", "001", "t", first)
    r = C.evaluate(claim, C.Tables(tmp_path))
    assert r.status == C.TABLE_MISSING and "02_niqe_per_image.csv" in r.why


def test_missing_column_row_and_empty_value_are_reported(tmp_path):
    write_csv(tmp_path, "02_results", "method,psnr_y,lpips\nSRGAN,24,\nSRResNet,25,")
    claim = C.Claim("x", "02", "001", "text", C.Diff("02_results", "hf_ratio", {"method": "SRGAN"},
                                                     {"method": "SRResNet"}))
    r = C.evaluate(claim, C.Tables(tmp_path))
    assert r.status == C.ERROR and "hf_ratio" in r.why and "psnr_y" in r.why
    claim = C.Claim("x", "02", "001", "text", C.Diff("02_results", "psnr_y", {"method": "ESRGAN"},
                                                     {"method": "SRResNet"}))
    r = C.evaluate(claim, C.Tables(tmp_path))
    assert r.status == C.ERROR and "0 rows" in r.why and "SRGAN" in r.why
    claim = C.Claim("x", "02", "001", "text", C.Diff("02_results", "lpips", {"method": "SRGAN"},
                                                     {"method": "SRResNet"}))
    assert C.evaluate(claim, C.Tables(tmp_path)).status == C.NOT_MEASURED
    claim = C.Claim("x", "06", "002", "text", C.Diff("06_results", "psnr_y", {"m": 1}, {"m": 2}))
    r = C.evaluate(claim, C.Tables(tmp_path))
    assert r.status == C.TABLE_MISSING and r.why.startswith("table missing: run notebook 06")


# ---------------------------------------------------------------- the declared claims


def test_declarations_are_consistent():
    by_id = C.claims_by_id()  # raises on duplicates
    assert {c.seed for c in C.CLAIMS} == set(C.SEEDS)
    for c in C.CLAIMS:
        for t in c.test.tables():
            assert t.startswith(c.notebook + "_"), f"{c.id} reads {t}, not a table of notebook {c.notebook}"
    # what the issue asks the table to cover
    for cid in ["04-proposed-vs-edsr-psnr", "04-proposed-vs-multiclass-niqe", "04-proposed-vs-vgg-lpips",
                "05-student-16x-smaller", "05-csd-beats-student-alone", "05-negatives-help",
                "06-specialist-wins-source", "06-generalist-wins-target", "06-ema-improves-psnr",
                "06-naive-loses-perception", "06-l1-intra-favours-fidelity", "02-srresnet-beats-bicubic",
                "02-esrgan-better-niqe", "02-srgan-sharper", "02-interpolation-tradeoff", "00-psnr-prefers-blur"]:
        assert cid in by_id


def test_notebook_04_status_agrees_with_its_own_table():
    """Notebook 04 decides its comparisons with the same rule (2 standard errors): when its table is
    committed, our status for every comparison must equal the status it wrote."""
    if not (FIGURES / "04_claims.csv").is_file():
        pytest.skip("figures/04_claims.csv is not committed yet")
    tabs = C.Tables(FIGURES)
    t = tabs["04_claims"]
    for c in C.CLAIMS:
        if isinstance(c.test, C.PairedDelta) and c.test.table == "04_claims":
            row = t.row(c.test.where)
            ours = C.evaluate(c, tabs).status
            theirs = {"unavailable": C.NOT_MEASURED}.get(row["status"], row["status"])
            assert ours == theirs, f"{c.id}: {ours} here, {theirs} in 04_claims.csv"


def test_build_is_deterministic_and_md_renders_json(tmp_path):
    figs = tmp_path / "figures"
    shutil.copytree(FIGURES, figs, ignore=shutil.ignore_patterns("*.png", "claims.*"))
    C.build(figs)
    first = (figs / "claims.json").read_text()
    C.build(figs)
    assert (figs / "claims.json").read_text() == first
    data = json.loads(first)
    assert (figs / "claims.md").read_text() == C.render_markdown(data)
    ids = [r["id"] for r in data["claims"]]
    assert ids == [c.id for c in C.CLAIMS]
    prov = json.loads((figs / "claims.provenance.json").read_text())
    import hashlib
    assert prov["inputs"]["02_results.csv"] == hashlib.sha256((figs / "02_results.csv").read_bytes()).hexdigest()
    assert "created" not in prov, "the record must be deterministic"


def _tmp_figures(tmp_path, *, drop=()) -> Path:
    figs = tmp_path / "figures"
    shutil.copytree(FIGURES, figs, ignore=shutil.ignore_patterns("*.png", "claims.*"))
    for name in drop:
        for p in figs.glob(name):
            p.unlink()
    # the test tables: a summary 02_results that decides the claims of notebook 02 (no per-image table)
    for p in figs.glob("02_niqe_per_image.*"):
        p.unlink()
    write_csv(figs, "02_results", """
method,psnr_y,ssim_y,lpips,niqe,hf_ratio
bicubic,25.2,0.70,,11.2,0.1
SRResNet,25.7,0.73,,12.0,0.3
SRGAN,24.9,0.72,,11.5,0.7
RRDBNet (PSNR),25.1,0.69,,10.3,0.3
ESRGAN,24.7,0.70,,10.0,0.8
""")
    return figs


def test_check_policy(tmp_path):
    figs = _tmp_figures(tmp_path)
    C.build(figs)
    rep = C.check(figs)
    assert rep.ok, rep.failures
    # a notebook without any committed table has its claims pending, not failing
    pending = "\n".join(rep.pending)
    for nb, claim in (("04", "04-proposed-vs-edsr-psnr"), ("05", "05-csd-beats-student-alone"),
                      ("06", "06-ema-improves-psnr")):
        if not list(figs.glob(f"{nb}_*.csv")):
            assert f"{claim}: table missing: run notebook {nb}" in pending
        else:
            assert claim not in pending

    # a status that changes with the tables fails, naming the claim
    (figs / "02_results.csv").write_text((figs / "02_results.csv").read_text().replace("SRGAN,24.9,0.72,,11.5",
                                                                                         "SRGAN,24.9,0.72,,12.5"))
    rep = C.check(figs)
    assert not rep.ok
    assert any(f.startswith("02-srgan-better-niqe: status 'not held'") and "'held' in claims.json" in f
               for f in rep.failures), rep.failures
    C.build(figs)
    assert C.check(figs).ok

    # a missing table of a notebook that has committed tables fails
    (figs / "02_interpolation.csv").unlink()
    rep = C.check(figs)
    assert any(f.startswith("02-interpolation-tradeoff: table missing: run notebook 02") for f in rep.failures)
    C.build(figs)
    assert not C.check(figs).ok, "rebuilding does not make a missing committed table acceptable"


def test_check_fails_once_a_notebook_commits_some_of_its_tables(tmp_path):
    figs = _tmp_figures(tmp_path)
    for f in figs.glob("05_*"):  # start from a tree where notebook 05 has no table at all
        f.unlink()
    C.build(figs)
    assert C.check(figs).ok
    write_csv(figs, "05_results", "model,width,params,cpu_ms,psnr_y\nteacher,1,1600,10,30\n"
              "student,0.25,100,2,29\ncsd,0.25,100,2,29.5")
    rep = C.check(figs)
    failed = "\n".join(rep.failures)
    # 05_results is new: its claims are not in claims.json yet; 05_negatives is now required
    assert "05-csd-beats-student-alone: status 'held'" in failed
    assert "05-negatives-help: table missing: run notebook 05" in failed
    assert "04-proposed-vs-edsr-psnr" not in failed


def test_check_detects_hand_edits_and_stale_entries(tmp_path):
    figs = _tmp_figures(tmp_path)
    C.build(figs)
    md = figs / "claims.md"
    md.write_text(md.read_text().replace("**not held**", "**held**", 1))
    rep = C.check(figs)
    assert any("claims.md is not the rendering" in f for f in rep.failures)
    C.build(figs)
    data = json.loads((figs / "claims.json").read_text())
    data["claims"].append(dict(data["claims"][0], id="99-gone"))
    (figs / "claims.json").write_text(json.dumps(data))
    rep = C.check(figs)
    assert any(f.startswith("99-gone: in claims.json but no longer declared") for f in rep.failures)
    (figs / "claims.json").unlink()
    assert "claims.json is missing" in C.check(figs).failures[0]


def test_committed_claims_match_the_committed_tables():
    """What CI runs: `python -m srlib.claims check` on the repository's figures/."""
    proc = subprocess.run([sys.executable, "-m", "srlib.claims", "check"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr

