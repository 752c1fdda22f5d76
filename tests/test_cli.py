"""``python -m srlib``: upscale and info end to end, and the one-line errors.

A few cases run the real ``python -m srlib`` in a subprocess (exit status, stderr, no
traceback); the rest call :func:`srlib.cli.main` in-process, the same code path without
paying for a fresh ``import torch`` per case on a 2-core CI machine.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from srlib.archs import EDSR, RRDBNet, count_params
from srlib.cli import main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args):
    """The real command line, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "srlib", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=300)


@pytest.fixture
def call(capsys):
    """The same command in-process (``main(argv)``), with its exit status and output."""
    def _call(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Result(code, out, err)
    return _call


def assert_one_line_error(res, *needles):
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("srlib: error: ")
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    torch.save({"params_ema": model.state_dict()}, d / "tiny.pth")
    torch.save(RRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4).state_dict(), d / "tiny_x2.pth")
    img = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(img).save(d / "in.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 5)
    (d / "junk.pth").write_bytes(b"not a checkpoint" * 20)
    return d, model, img


# ---- real subprocesses ---------------------------------------------------------------------
def test_upscale_subprocess_runs_exactly_the_model(files):
    d, model, img = files
    res = run("upscale", d / "in.png", d / "out.png", "--arch", "rrdbnet", "--weights", d / "tiny.pth",
              "--scale", 4, "--num-feat", 8, "--num-block", 1, "--num-grow-ch", 4)
    assert res.returncode == 0, res.stderr
    out = np.asarray(Image.open(d / "out.png"))
    assert out.shape == (40, 48, 3) and out.dtype == np.uint8
    with torch.no_grad():
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        ref = (model.eval()(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(out.astype(float) - ref).max() <= 1


def test_error_subprocess_is_one_line_without_traceback(files):
    d, _, _ = files
    res = run("upscale", d / "in.png", d / "o.png", "--weights", d / "junk.pth")
    assert_one_line_error(res, "junk.pth", "corrupt")
    assert not (d / "o.png").exists()


# ---- in-process ----------------------------------------------------------------------------
def test_info_json(files, call):
    d, model, _ = files
    res = call("info", d / "tiny.pth", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["params_key"] == "params_ema" and info["top_level_keys"] == ["params_ema"]
    assert info["architecture"] == "rrdbnet" and info["scale"] == 4
    assert info["kwargs"] == dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    assert info["num_tensors"] == len(model.state_dict())
    assert info["num_params"] == count_params(model)


def test_upscale_reads_the_architecture_from_the_file_and_tiles(files, call):
    d, _, _ = files
    res = call("upscale", d / "in.png", d / "out2.png", "--weights", d / "tiny_x2.pth", "--tile", 8)
    assert res.returncode == 0, res.stderr
    assert np.asarray(Image.open(d / "out2.png")).shape == (20, 24, 3)
    assert "x2" in res.stdout


def test_edsr_checkpoint_upscales(files, call, tmp_path):
    d, _, _ = files
    torch.save({"params": EDSR(3, 3, num_feat=8, num_block=1, upscale=2).state_dict()}, tmp_path / "e.pth")
    res = call("upscale", d / "in.png", tmp_path / "e.png", "--weights", tmp_path / "e.pth")
    assert res.returncode == 0, res.stderr
    assert np.asarray(Image.open(tmp_path / "e.png")).shape == (20, 24, 3)


def test_info_text(files, call, tmp_path):
    d, _, _ = files
    res = call("info", d / "tiny_x2.pth")
    assert res.returncode == 0
    assert "a bare state dict" in res.stdout and "RRDBNet(" in res.stdout and "x2" in res.stdout
    sd = {f"module.{k}": v for k, v in EDSR(3, 3, num_feat=8, num_block=1).state_dict().items()}
    torch.save(sd, tmp_path / "ddp.pth")
    res = call("info", tmp_path / "ddp.pth")
    assert "module. prefix stripped" in res.stdout and "EDSR(" in res.stdout


def test_bad_inputs_exit_with_one_line(files, call):
    d, _, _ = files
    w = ["--weights", d / "tiny.pth"]
    assert_one_line_error(call("upscale", d / "missing.png", d / "o.png", *w), "missing.png")
    assert_one_line_error(call("upscale", d / "broken.png", d / "o.png", *w), "broken.png")
    assert_one_line_error(call("upscale", d / "in.png", d / "o.png", "--weights", d / "nope.pth"), "not found")
    # the file is an 8-channel RRDBNet: 16 channels, x2 or an EDSR are refused with what fits
    assert_one_line_error(call("upscale", d / "in.png", d / "o.png", *w, "--num-feat", 16),
                          "do not fit RRDBNet", "num_feat=8")
    assert_one_line_error(call("upscale", d / "in.png", d / "o.png", *w, "--scale", 2),
                          "do not fit RRDBNet", "scale=4")
    assert_one_line_error(call("upscale", d / "in.png", d / "o.png", *w, "--arch", "edsr"),
                          "do not fit EDSR", "looks like RRDBNet(")
    assert_one_line_error(call("upscale", d / "in.png", d / "o.png", *w, "--scale", 3), "scale 4, 2 or 1")
    assert_one_line_error(call("info", d / "junk.pth"), "corrupt")
    assert not (d / "o.png").exists()


def test_unknown_architecture_needs_arch(files, call, tmp_path):
    d, _, _ = files
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "odd.pth")
    assert_one_line_error(call("upscale", d / "in.png", tmp_path / "o.png", "--weights", tmp_path / "odd.pth"),
                          "--arch")
    res = call("info", tmp_path / "odd.pth")
    assert res.returncode == 0 and "not recognised" in res.stdout


def test_usage_errors_exit_2(call):
    with pytest.raises(SystemExit) as e:
        main(["upscale", "a.png"])
    assert e.value.code == 2
