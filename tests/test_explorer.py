"""Notebook 07's explorer: metrics on demand, memoised; the widget and the static view build."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from srlib import explorer


@pytest.fixture
def ex():
    rng = np.random.default_rng(0)
    hr = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    lr = hr[::4, ::4]
    models = explorer.ModelSet({"bicubic": None}, {"bicubic": "bicubic"})
    return explorer.Explorer(models, [("noise", lr, hr)], scale=4)


def test_measure_is_memoised_and_complete(ex):
    m = ex.measure("noise", "bicubic")
    assert set(m) == set(explorer.METRICS)
    assert m["psnr_y"] > 0 and 0 < m["hf_ratio"] < 1   # bicubic is smoother than random HR
    assert ex.measure("noise", "bicubic") is m
    rows = ex.table("noise")
    assert rows[0]["model"] == "bicubic" and rows[0]["source"] == "bicubic"


def test_widget_and_static_view_build(ex):
    fig = explorer.static_view(ex, "noise", metric="psnr_y")
    assert fig.axes
    w = explorer.widget(ex)
    dropdowns = w.children[0].children
    dropdowns[2].value = "ssim_y"   # re-renders without a frontend
    assert [d.description for d in dropdowns] == ["image", "model", "metric"]


def test_course_models_leave_out_what_is_not_there(tmp_path):
    ms = explorer.course_models("smoke", cache_dir=tmp_path)
    assert ms.models["bicubic"] is None
    assert all("not shipped or cached" in n or "unavailable" in n or "left out" in n for n in ms.notes)
