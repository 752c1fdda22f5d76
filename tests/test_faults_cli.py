"""``python -m srlib upscale`` faults: large images, running out of memory, outputs that would
overwrite the input or an existing file, outputs that cannot be written, alpha, bad devices.

Memory limits are simulated: the generator's forward raises the error torch raises when an
allocation fails, for pieces larger than a set size. Everything runs in-process through
:func:`srlib.cli.main`.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlib import infer
from srlib.archs import RRDBNet
from srlib.cli import main

CPU_OOM = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 75000000000 bytes."


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults_cli")
    torch.manual_seed(0)
    torch.save(RRDBNet(3, 3, scale=1, num_feat=4, num_block=1, num_grow_ch=4).state_dict(), d / "x1.pth")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(d / "small.png")
    return d


@pytest.fixture
def call(capsys):
    def _call(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err
    return _call


def _one_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("srlib: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def memory_limit(monkeypatch):
    """RRDBNet runs only on pieces up to ``limit`` pixels a side, like a machine with little memory."""
    limit = {"side": 300}
    forward = RRDBNet.forward

    def limited(self, x):
        if max(x.shape[-2:]) > limit["side"]:
            raise RuntimeError(CPU_OOM)
        return forward(self, x)

    monkeypatch.setattr(RRDBNet, "forward", limited)
    return limit


def test_large_images_are_tiled_by_default(files, call, tmp_path, memory_limit):
    img = np.random.default_rng(1).integers(0, 256, (20, 700, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "wide.png")
    code, out, err = call("upscale", tmp_path / "wide.png", tmp_path / "o.png", "--weights", files / "x1.pth")
    assert code == 0, err
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (20, 700, 3)


def test_running_out_of_memory_is_one_line_naming_tile(files, call, tmp_path, memory_limit):
    img = np.random.default_rng(1).integers(0, 256, (20, 700, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "wide.png")
    code, _, err = call("upscale", tmp_path / "wide.png", tmp_path / "o.png", "--weights", files / "x1.pth",
                        "--tile", 0)
    line = _one_error(err)
    assert code == 1 and "out of memory" in line and "--tile" in line and "700x20" in line
    assert not (tmp_path / "o.png").exists()
    memory_limit["side"] = 100  # even the default tile is too large: the message says what to try
    code, _, err = call("upscale", tmp_path / "wide.png", tmp_path / "o.png", "--weights", files / "x1.pth")
    line = _one_error(err)
    assert code == 1 and "--tile 128" in line


def test_library_out_of_memory_error(memory_limit):
    model = RRDBNet(3, 3, scale=1, num_feat=4, num_block=1, num_grow_ch=4)
    img = np.zeros((20, 400, 3), np.uint8)
    with pytest.raises(infer.InferenceMemoryError, match="smaller tile"):
        infer.upscale(model, img, scale=1, pad_multiple=4)
    assert infer.upscale(model, img, scale=1, tile="auto", pad_multiple=4).shape == (20, 400, 3)

    class CudaOOM(torch.nn.Module):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with pytest.raises(infer.InferenceMemoryError, match="out of memory"):
        infer.upscale(CudaOOM(), img, scale=1)


def test_output_equal_to_input_is_refused_in_every_spelling(files, call, tmp_path, monkeypatch):
    src = tmp_path / "in.png"
    src.write_bytes((files / "small.png").read_bytes())
    before = src.read_bytes()
    (tmp_path / "sub").mkdir()
    os.symlink(src, tmp_path / "link.png")
    os.link(src, tmp_path / "hard.png")
    monkeypatch.chdir(tmp_path)
    for spelling in (src, Path("in.png"), Path("sub/../in.png"), tmp_path / "link.png", tmp_path / "hard.png"):
        code, _, err = call("upscale", src, spelling, "--weights", files / "x1.pth")
        assert code == 1 and "is the input image itself" in _one_error(err), spelling
        assert src.read_bytes() == before
    code, _, err = call("upscale", src, "in.png", "--weights", files / "x1.pth", "--overwrite")
    assert code == 0, err  # asked for explicitly


def test_existing_outputs_are_kept_unless_overwrite(files, call, tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"precious")
    code, _, err = call("upscale", files / "small.png", out, "--weights", files / "x1.pth")
    assert code == 1 and "exists already" in _one_error(err) and "--overwrite" in err
    assert out.read_bytes() == b"precious"
    code, _, err = call("upscale", files / "small.png", out, "--weights", files / "x1.pth", "--overwrite")
    assert code == 0, err
    assert np.asarray(Image.open(out)).shape == (12, 16, 3)


def test_output_path_and_format_are_checked_before_inference(files, call, tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("inference ran before the output was checked")

    monkeypatch.setattr(infer, "upscale", must_not_run)
    code, _, err = call("upscale", files / "small.png", tmp_path / "o.jpg", "--weights", files / "x1.pth")
    assert code == 1 and "lossless" in _one_error(err)
    (tmp_path / "afile").write_bytes(b"x")
    code, _, err = call("upscale", files / "small.png", tmp_path / "afile" / "o.png", "--weights", files / "x1.pth")
    assert code == 1 and "not a folder" in _one_error(err)
    (tmp_path / "adir.png").mkdir()
    code, _, err = call("upscale", files / "small.png", tmp_path / "adir.png", "--weights", files / "x1.pth")
    assert code == 1 and "adir.png" in _one_error(err) and "folder" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_unwritable_folder_is_refused_before_inference(files, call, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = call("upscale", files / "small.png", ro / "o.png", "--weights", files / "x1.pth")
        line = _one_error(err)
        assert code == 1 and "o.png" in line and ".tmp" not in line
    finally:
        ro.chmod(0o755)


def test_alpha_is_composited_over_white_and_said(files, call, tmp_path):
    rgba = np.zeros((12, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent: the model sees white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    code, _, err = call("upscale", tmp_path / "a.png", tmp_path / "o.png", "--weights", files / "x1.pth")
    assert code == 0, err
    assert "alpha channel" in err and "composited over white" in err
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (12, 16, 3)
    code, _, err = call("upscale", files / "small.png", tmp_path / "o2.png", "--weights", files / "x1.pth")
    assert code == 0 and "alpha" not in err


def test_help_says_what_happens_to_alpha_large_images_and_existing_outputs(capsys):
    with pytest.raises(SystemExit):
        main(["upscale", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "composited over white" in text and "--overwrite" in text and "auto" in text
    assert "whole image at once" in text


def test_device_is_checked_before_anything_is_loaded(files, call, tmp_path):
    code, _, err = call("upscale", files / "small.png", tmp_path / "o.png", "--weights", tmp_path / "none.pth",
                        "--device", "tpu9")
    assert code == 1 and "device" in _one_error(err) and "none.pth" not in err
    if not torch.cuda.is_available():
        code, _, err = call("upscale", files / "small.png", tmp_path / "o.png", "--weights",
                            tmp_path / "none.pth", "--device", "cuda")
        assert code == 1 and "CUDA is not available" in _one_error(err)


def test_readme_cli_section_says_what_happens():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## The library on its own"):]
    section = " ".join(section[:section.index("\n## ", 5)].split())
    for words in ("alpha", "composited over white", "--overwrite", "--tile 0", "256"):
        assert words in section, words


def test_palette_transparency_is_alpha_but_an_rgb_colour_key_is_not(tmp_path):
    from srlib import io

    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([255, 0, 0] * 256)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    assert io.has_alpha(tmp_path / "p.png")
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "rgb.png", transparency=(1, 2, 3))
    assert not io.has_alpha(tmp_path / "rgb.png")  # read_image keeps RGB colour keys as they are
    np.testing.assert_array_equal(io.read_image(tmp_path / "rgb.png")[0, 0], [1, 2, 3])
    assert not io.has_alpha(tmp_path / "missing.png")
