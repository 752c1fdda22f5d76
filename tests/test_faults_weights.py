"""Weights faults: downloads cut off (announced length, chunked body), URLs that are not https,
malicious pickles, safetensors files, permissions and leftovers of killed downloads.

The servers are loopback ``http.server`` handlers that misbehave on purpose.
"""

import hashlib
import http.server
import os
import stat
import subprocess
import sys
import threading
import time

import pytest
import torch

from srlib import weights as W
from srlib.archs import RRDBNet
from srlib.errors import DownloadError, WeightsError

PAYLOAD = bytes(range(256)) * 40  # 10240 bytes


class _Faulty(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/short":  # announces 10240 bytes, sends half, closes
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif self.path.startswith("/chunked"):  # one chunk announced as 4096 bytes, 100 sent
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"1000\r\n" + PAYLOAD[:100])
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/full":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/to-remote-http":
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/x.pth")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)


@pytest.fixture
def faulty():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Faulty)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _nothing_left(folder):
    return [p.name for p in folder.iterdir()] if folder.exists() else []


def test_a_download_shorter_than_announced_is_never_kept(faulty, tmp_path):
    dest = tmp_path / "dl" / "f.pth"
    with pytest.raises(DownloadError, match=r"cut off: received 5,120 of the 10,240 bytes"):
        W.download(f"{faulty}/short", dest, None, progress=False, timeout=10)
    assert _nothing_left(tmp_path / "dl") == []
    # with the full body, an unverified download is kept (with its warning)
    with pytest.warns(UserWarning, match="unverified"):
        W.download(f"{faulty}/full", dest, None, progress=False, timeout=10)
    assert dest.read_bytes() == PAYLOAD


def test_fetch_never_caches_a_cut_off_file(faulty, tmp_path, monkeypatch):
    entry = W.OfficialFile(f"{faulty}/short", "short.pth", "rrdbnet", {}, None)
    monkeypatch.setitem(W.OFFICIAL, "short", entry)
    for _ in range(2):  # the second call must try again, not reuse a half file
        with pytest.raises(DownloadError, match="cut off"):
            W.fetch("short", tmp_path, progress=False)
    assert _nothing_left(tmp_path) == []


def test_a_chunked_download_cut_off_is_a_download_error(faulty, tmp_path):
    dest = tmp_path / "c.pth"
    with pytest.raises(DownloadError, match="interrupted") as info:
        W.download(f"{faulty}/chunked", dest, None, progress=False, timeout=10)
    assert len(str(info.value).splitlines()) == 1
    assert _nothing_left(tmp_path) == []


def test_a_chunked_download_cut_off_is_one_line_from_the_cli(faulty, tmp_path, monkeypatch, capsys):
    from srlib.cli import main

    entry = W.OfficialFile(f"{faulty}/chunked/x.pth", "x.pth", "rrdbnet", {}, None)
    monkeypatch.setitem(W.OFFICIAL, "cut", entry)
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "cache"))
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    code = main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--model", "cut"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    errors = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("srlib: error:")]
    assert len(errors) == 1 and "interrupted" in errors[0]
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:application/octet-stream;base64,AAAA",
                                 "ftp://example.invalid/x.pth", "http://example.invalid/x.pth",
                                 "example.invalid/x.pth", "https:///x.pth"])
def test_only_https_urls_are_downloaded(url, tmp_path):
    with pytest.raises(DownloadError, match="refusing to download"):
        W.download(url, tmp_path / "x.pth", None, progress=False, timeout=2)
    assert _nothing_left(tmp_path) == []


def test_redirects_are_held_to_the_same_rule(faulty, tmp_path):
    with pytest.raises(DownloadError, match="refusing to download http://example.invalid"):
        W.download(f"{faulty}/to-remote-http", tmp_path / "x.pth", None, progress=False, timeout=5)
    with pytest.raises(DownloadError):
        W.download(f"{faulty}/to-file", tmp_path / "y.pth", None, progress=False, timeout=5)
    assert _nothing_left(tmp_path) == []


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_a_malicious_pickle_is_named_as_objects_srlib_refuses_to_run(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"params": {"w": torch.zeros(1)}, "payload": _RunsCode()}, path)
    with pytest.raises(WeightsError) as info:
        W.read_state_dict(path)
    msg = str(info.value)
    assert "refuses to run" in msg and "system" in msg
    assert "corrupt" not in msg and "Re-running" not in msg and "weights_only=False" not in msg


def test_safetensors_files_load_like_checkpoints(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "m.safetensors"))
    loaded = W.read_state_dict(tmp_path / "m.safetensors")
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    other = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    assert W.load_weights(other, tmp_path / "m.safetensors").ok
    (tmp_path / "m2.bin").write_bytes((tmp_path / "m.safetensors").read_bytes())  # found by content
    assert set(W.read_state_dict(tmp_path / "m2.bin")) == set(state)
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="safetensors file .* damaged or truncated"):
        W.read_state_dict(tmp_path / "cut.safetensors")
    (tmp_path / "fake.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="does not start like a safetensors file"):
        W.read_state_dict(tmp_path / "fake.safetensors")


def test_downloads_follow_the_umask(faulty, tmp_path):
    old = os.umask(0o022)
    try:
        out = W.download(f"{faulty}/full", tmp_path / "new" / "f.pth", hashlib.sha256(PAYLOAD).hexdigest(),
                         progress=False, timeout=10)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o755


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_downloads_leftover_is_removed_by_the_next_download(faulty, tmp_path):
    from srlib.atomic import _host_tag

    dest = tmp_path / "f.pth"
    dead = tmp_path / f".f.pth.{_host_tag()}-{_dead_pid()}.0123abcd.part"
    legacy = tmp_path / ".f.pth.k3j_x9q2.part"  # tempfile.mkstemp's name, from older srlib
    fresh_legacy = tmp_path / ".f.pth.zzzzzzzz.part"
    live = tmp_path / f".f.pth.{_host_tag()}-{os.getppid()}.0123abcd.part"  # a running writer
    other = tmp_path / f".g.pth.{_host_tag()}-{_dead_pid()}.0123abcd.part"  # another target
    for p in (dead, legacy, fresh_legacy, live, other):
        p.write_bytes(b"x" * 100)
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(legacy, (day_ago, day_ago))
    W.download(f"{faulty}/full", dest, hashlib.sha256(PAYLOAD).hexdigest()[:8], progress=False, timeout=10)
    assert dest.read_bytes() == PAYLOAD
    assert not dead.exists() and not legacy.exists()
    assert fresh_legacy.exists() and live.exists() and other.exists()
