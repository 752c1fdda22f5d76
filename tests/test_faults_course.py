"""``python -m srlib.course --device``: a wrong or unavailable device is refused before any
notebook kernel starts (it used to fail inside every notebook, after its kernel started)."""

import pytest
import torch

from srlib import course


@pytest.fixture
def no_kernels(monkeypatch):
    def refuse(**kwargs):
        raise AssertionError("notebook kernels started before the device was checked")

    monkeypatch.setattr(course, "run_course", refuse)


def test_unknown_device_is_refused_before_kernels_start(no_kernels, capsys):
    assert course.main(["--profile", "smoke", "--device", "tpu9"]) == 2
    err = capsys.readouterr().err
    assert "device" in err and "tpu9" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_refused_before_kernels_start(no_kernels, capsys):
    assert course.main(["--profile", "smoke", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
