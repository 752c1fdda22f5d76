"""Atomic writes under faults: writers killed with SIGKILL leave temp files that the next write
removes; written files and folders follow the umask; errors name the output, not the temp file.

Covers every writer: images (srlib.io), tables and figures (srlib.report), checkpoints
(srlib.train.atomic_torch_save) and the model cache (srlib.train.cached_train).
"""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from srlib import atomic, io
from srlib.train import atomic_torch_save

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _killed_writer(target: Path, folder_mode: bool = False) -> Path:
    """Start a process that begins an atomic write of ``target`` (a temp file / folder with data in
    it), SIGKILL it mid-write, and return the leftover it could not clean."""
    code = (
        "import sys, time; from pathlib import Path; from srlib import atomic\n"
        "t = Path(sys.argv[1])\n"
        "if sys.argv[2] == 'dir':\n"
        "    d = atomic.make_temp_dir(t); (d / 'models.pt').write_bytes(b'x' * 4096)\n"
        "    print('ready', flush=True); time.sleep(60)\n"
        "with atomic.atomic_open(t) as fh:\n"
        "    fh.write(b'x' * 65536); fh.flush(); print('ready', flush=True); time.sleep(60)\n"
    )
    before = set(_hidden(target.parent))
    proc = subprocess.Popen([sys.executable, "-c", code, str(target), "dir" if folder_mode else "file"],
                            stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = sorted(set(_hidden(target.parent)) - before)
    assert len(left) == 1, left
    return target.parent / left[0]


def test_checkpoint_leftover_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    ckpt = tmp_path / "last.pth"
    leftover = _killed_writer(ckpt)
    assert leftover.stat().st_size == 65536 and not ckpt.exists()
    atomic_torch_save({"w": torch.ones(2)}, ckpt)
    assert not leftover.exists() and _hidden(tmp_path) == []
    assert torch.equal(torch.load(ckpt, weights_only=True)["w"], torch.ones(2))


def test_image_table_and_figure_writers_clean_their_leftovers(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    leftover = _killed_writer(tmp_path / "out.png")
    io.write_image(tmp_path / "out.png", img)
    assert not leftover.exists()

    from srlib.report import save_table

    leftover = _killed_writer(tmp_path / "t.csv")
    save_table([{"a": 1}], "t", tmp_path, profile="smoke")
    assert not leftover.exists()
    assert _hidden(tmp_path) == []


def test_model_cache_removes_temp_folders_of_killed_runs(tmp_path):
    from srlib.train import cached_train

    cache = tmp_path / "cache"
    cache.mkdir()
    leftover = _killed_writer(cache / ("0" * 64), folder_mode=True)  # another key's entry, killed
    assert leftover.is_dir()
    cached_train({"name": "faults"}, lambda cfg: {"G": torch.nn.Linear(2, 2)}, cache_dir=cache)
    assert not leftover.exists() and _hidden(cache) == []


def test_a_live_writers_temp_file_is_never_removed(tmp_path):
    live = atomic.temp_path(tmp_path / "x.png")  # this process: alive
    live.write_bytes(b"being written")
    io.write_image(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    assert live.exists()


def test_files_and_folders_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        io.write_image(tmp_path / "a" / "img.png", np.zeros((2, 2, 3), np.uint8))
        atomic_torch_save({"w": torch.zeros(1)}, tmp_path / "ck" / "c.pth")
        from srlib.report import save_table
        from srlib.train import cached_train

        csv = save_table([{"a": 1}], "t", tmp_path / "fig", profile="smoke")
        run = cached_train({"name": "umask"}, lambda cfg: {"G": torch.nn.Linear(2, 2)}, cache_dir=tmp_path / "cache")
        os.umask(0o077)  # a private umask is followed too
        io.write_image(tmp_path / "private.png", np.zeros((2, 2, 3), np.uint8))
    finally:
        os.umask(old)
    for f in (tmp_path / "a" / "img.png", tmp_path / "ck" / "c.pth", Path(csv), run.path / "models.pt"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    assert stat.S_IMODE(run.path.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "private.png").stat().st_mode) == 0o600


def test_errors_name_the_output_not_the_temp_file(tmp_path):
    (tmp_path / "taken.png").mkdir()  # a folder where the image should go
    with pytest.raises(OSError) as info:
        io.write_image(tmp_path / "taken.png", np.zeros((2, 2, 3), np.uint8))
    assert "taken.png" in str(info.value) and ".tmp" not in str(info.value)
    (tmp_path / "taken.pth").mkdir()
    with pytest.raises(OSError) as info:
        atomic_torch_save({"w": torch.zeros(1)}, tmp_path / "taken.pth")
    assert "taken.pth" in str(info.value) and ".tmp" not in str(info.value)
    assert _hidden(tmp_path) == []
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OSError) as info:
        io.write_image(tmp_path / "file" / "o.png", np.zeros((2, 2, 3), np.uint8))
    assert "file" in str(info.value) and ".tmp" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_folder_error_names_the_output(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as info:
            io.write_image(ro / "o.png", np.zeros((2, 2, 3), np.uint8))
        assert str(ro / "o.png") in str(info.value) and ".tmp" not in str(info.value)
    finally:
        ro.chmod(0o755)


def test_writing_an_empty_image_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        io.write_image(tmp_path / "e.png", np.zeros((0, 0, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_stale_age_applies_to_other_hosts(tmp_path):
    other_host = tmp_path / ".x.png.deadbeef-12345.0123abcd.tmp"
    other_host.write_bytes(b"x")
    assert atomic.clean_stale(tmp_path / "x.png") == []  # fresh: may be a live writer elsewhere
    old = time.time() - atomic.STALE_SECONDS - 60
    os.utime(other_host, (old, old))
    assert atomic.clean_stale(tmp_path / "x.png") == [other_host]
