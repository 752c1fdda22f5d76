"""The paper profile's data sets: manifests, resumable verified downloads from a loopback server,
safe and atomic extraction (malicious archives included), loaders, the fake tree and the dry run."""

import errno
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlib import datasets as D
from srlib import dry_run
from srlib import paper_data as P
from srlib import resumable
from srlib.errors import DatasetError, DownloadError

REPO = Path(__file__).resolve().parents[1]
EXPECTED_SETS = {"div2k", "flickr2k", "set5", "set14", "b100", "urban100", "realsr", "drealsr", "faces"}


# ---------------------------------------------------------------------------------- helpers
def png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def pair_images(seed=0, lr_hw=(10, 9), scale=4):
    """HR constant on scale x scale blocks (HR = kron(LR, 1)), plus 2 extra rows/cols."""
    rng = np.random.default_rng(seed)
    lr = rng.integers(0, 256, (*lr_hw, 3), dtype=np.uint8)
    hr = np.kron(lr, np.ones((scale, scale, 1), dtype=np.uint8))
    hr = np.pad(hr, ((0, 2), (0, 3), (0, 0)), mode="edge")  # not a multiple of scale
    return lr, hr


def set_members(n=2, top="SetA"):
    out = {}
    for k in range(n):
        lr, hr = pair_images(k)
        out[f"{top}/HR/img{k}.png"] = png_bytes(hr)
        out[f"{top}/LR/img{k}x4.png"] = png_bytes(lr)
    return out


def make_zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(members: dict, extra=None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if extra:
            extra(tf)
    return buf.getvalue()


def manifest_for(tmp_path, url, data: bytes | None, *, fmt="zip", sha=True, size=True, count=2,
                 filename=None, extract_to=""):
    filename = filename or f"seta.{'zip' if fmt == 'zip' else 'tar.gz'}"
    entry = {
        "title": "test set", "homepage": "https://example.org", "citation": "none",
        "licence": "test licence line", "notebooks": ["05"],
        "files": [{"url": url, "filename": filename,
                   "size": len(data) if (size and data is not None) else None,
                   "sha256": hashlib.sha256(data).hexdigest() if (sha and data is not None) else None,
                   "sha256_from": "the test" if (sha and data is not None) else None,
                   "md5": None, "md5_from": None, "extract_to": extract_to, "provides": ["hr", "lr_x4"]}],
        "layout": {"hr": {"dir": "SetA/HR", "pattern": "{id}.png", "count": count},
                   "lr_x4": {"dir": "SetA/LR", "pattern": "{id}x4.png", "count": count}},
        "pairs": {"test": {"hr": "hr", "lr": {"4": "lr_x4"}}},
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"format": 1, "datasets": {"seta": entry}}))
    return path


class Server:
    """A loopback HTTP server with range support and scripted faults."""

    def __init__(self):
        self.files, self.requests = {}, []
        self.cut_after = {}      # path -> bytes sent before the connection drops (once)
        self.ignore_range = set()
        self.html = set()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.requests.append((self.path, self.headers.get("Range")))
                if self.path in srv.html:
                    body = b"<html>confirm</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = srv.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and self.path not in srv.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                cut = srv.cut_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def setup(tmp_path, server, monkeypatch):
    """A served zip of SetA, its manifest (also as $SRLIB_MANIFEST) and an empty data root."""
    data = make_zip(set_members())
    server.files["/seta.zip"] = data
    mpath = manifest_for(tmp_path, server.url("/seta.zip"), data)
    monkeypatch.setenv(D.MANIFEST_ENV, str(mpath))
    root = tmp_path / "root"
    return dict(data=data, manifest=mpath, root=root, manifests=D.load_manifests(mpath))


def quiet(*a, **k):
    pass


def nothing_complete(root: Path):
    """No marker, no extracted set, no staging leftovers: nothing that looks complete."""
    assert not list((root / ".srlib" / "complete").glob("*.json")) if (root / ".srlib" / "complete").exists() else True
    assert not (root / "SetA").exists()
    staging = root / ".srlib" / "staging"
    assert not staging.exists() or not any(staging.iterdir())


# ---------------------------------------------------------------------------------- manifests
def test_repository_manifest_lists_every_paper_data_set():
    man = D.load_manifests()
    assert set(man) == EXPECTED_SETS
    div2k = man["div2k"]
    assert {"train_hr", "valid_hr", "train_lr_x2", "train_lr_x4", "valid_lr_x2", "valid_lr_x4"} <= set(div2k.layout)
    assert {"canon_test", "nikon_test", "canon_train", "nikon_train"} <= set(man["realsr"].pairs)
    for ds in man.values():
        assert ds.licence.strip() and ds.homepage.startswith("https://") and ds.citation
        assert ds.files or ds.manual
        for fe in ds.files:
            assert fe.url.startswith("https://"), fe.url
            resumable.check_url(fe.url)
            assert set(fe.provides) <= set(ds.layout)
            # a checksum always says where it comes from; none is typed in without a source
            assert (fe.sha256 is None) == (fe.sha256_from is None)
            assert (fe.md5 is None) == (fe.md5_from is None)
    # DIV2K sizes and hashes as recorded (TFDS url_checksums/div2k.txt)
    train = div2k.files_for(["train_hr"])[0]
    assert train.size == 3530603713 and train.sha256.startswith("9d0b9c46")
    rows = {r["name"]: r for r in D.status_rows(root="/nonexistent", manifests=man)}
    assert rows["drealsr"]["download"] == "manual" and rows["div2k"]["checksum"] == "sha256"
    assert all(r["state"] == "not installed" for r in rows.values())


def test_manifest_errors_are_clear(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"datasets": {"x": {"title": "t", "homepage": "h", "citation": "c",
                                                  "licence": "l", "files": [], "layout": {}}}}))
    with pytest.raises(DatasetError, match="neither files nor manual"):
        D.load_manifests(bad)
    with pytest.raises(DatasetError, match="unknown data set 'nope'; known data sets: div2k"):
        D.get("nope")
    with pytest.raises(DatasetError, match="has no part 'x'"):
        D.get("div2k").files_for(["x"])


def test_only_https_or_loopback_http():
    resumable.check_url("https://example.org/a.zip")
    resumable.check_url("http://127.0.0.1:8000/a.zip")
    for url in ("http://example.org/a.zip", "file:///etc/passwd", "data:,x", "ftp://h/a"):
        with pytest.raises(DownloadError, match="refusing to download"):
            resumable.fetch(url, "/nonexistent/never-written.part", progress=False)


# ---------------------------------------------------------------------------------- downloads
def test_download_verifies_extracts_and_marks_complete(setup):
    root = D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    marker = D.read_marker(root, "seta.zip")
    assert marker["sha256"] == hashlib.sha256(setup["data"]).hexdigest() and marker["verified"]
    assert marker["images"] == {"hr": 2, "lr_x4": 2} and marker["fake"] is False
    assert not (root / ".downloads" / "seta.zip").exists()  # archive removed after extraction
    pairs = P.load_pairs("seta", "test", 4, root=root)
    assert [p[0] for p in pairs] == ["img0", "img1"]
    lr, hr = pair_images(0)
    assert np.array_equal(pairs[0][1], lr) and np.array_equal(pairs[0][2], hr[:40, :36])


def test_second_download_is_skipped(setup, server):
    D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    count = len(server.requests)
    lines = []
    D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=lines.append)
    assert len(server.requests) == count and "already installed" in lines[0]


def test_cut_off_transfer_resumes_with_a_range_request(setup, server):
    half = len(setup["data"]) // 2
    server.cut_after["/seta.zip"] = half
    with pytest.raises(DownloadError, match="cut off.*run the command again to resume"):
        D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    part = setup["root"] / ".downloads" / "seta.zip.part"
    assert part.stat().st_size == half
    nothing_complete(setup["root"])
    with pytest.raises(DatasetError, match="python -m srlib.data download seta"):
        P.load_pairs("seta", "test", 4, root=setup["root"])
    D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    assert server.requests[-1] == ("/seta.zip", f"bytes={half}-")
    assert D.read_marker(setup["root"], "seta.zip")["sha256"] == hashlib.sha256(setup["data"]).hexdigest()


def test_server_without_range_support_restarts_from_zero(setup, server):
    server.ignore_range.add("/seta.zip")
    part = setup["root"] / ".downloads" / "seta.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 100)  # stale bytes that must not end up in the file
    lines = []
    D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=lines.append)
    assert any("does not resume" in line for line in lines)
    assert D.read_marker(setup["root"], "seta.zip")


def test_checksum_mismatch_deletes_the_download(tmp_path, server):
    data = make_zip(set_members())
    server.files["/seta.zip"] = data
    mpath = manifest_for(tmp_path, server.url("/seta.zip"), data)
    raw = json.loads(mpath.read_text())
    raw["datasets"]["seta"]["files"][0]["sha256"] = "0" * 64
    mpath.write_text(json.dumps(raw))
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="checksum mismatch for seta.zip.*deleted"):
        D.download("seta", root, progress=False, manifests=D.load_manifests(mpath), log=quiet)
    assert not list((root / ".downloads").iterdir())
    nothing_complete(root)


def test_unverified_file_records_its_hash_at_first_download(tmp_path, server):
    data = make_zip(set_members())
    server.files["/seta.zip"] = data
    mpath = manifest_for(tmp_path, server.url("/seta.zip"), data, sha=False, size=False)
    man, root = D.load_manifests(mpath), tmp_path / "root"
    assert not man["seta"].files[0].verified
    lines = []
    D.download("seta", root, progress=False, manifests=man, log=lines.append)
    assert any("unverified" in line for line in lines)
    recorded = json.loads((root / ".srlib" / "hashes.json").read_text())
    assert recorded == {"seta.zip": hashlib.sha256(data).hexdigest()}
    # the server's file changes: a new download must not be accepted silently
    D.marker_path(root, "seta.zip").unlink()
    server.files["/seta.zip"] = make_zip(set_members(3))
    with pytest.raises(DownloadError, match="differs from the copy downloaded before"):
        D.download("seta", root, progress=False, manifests=man, log=quiet)
    assert not D.read_marker(root, "seta.zip")


def test_size_announced_by_server_must_match_the_manifest(tmp_path, server):
    data = make_zip(set_members())
    server.files["/seta.zip"] = data + b"extra"
    mpath = manifest_for(tmp_path, server.url("/seta.zip"), data)
    with pytest.raises(DownloadError, match="offers .* bytes, the manifest says"):
        D.download("seta", tmp_path / "root", progress=False, manifests=D.load_manifests(mpath), log=quiet)


def test_http_404_no_network_and_web_page_messages(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTP 404 .*not at this address any more"):
        resumable.fetch(server.url("/missing.zip"), tmp_path / "a.part", progress=False)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(DownloadError, match="cannot reach 127.0.0.1 .*Check the network connection"):
        resumable.fetch(f"http://127.0.0.1:{port}/a.zip", tmp_path / "b.part", progress=False, timeout=5)
    server.html.add("/drive.tar.gz")
    with pytest.raises(DownloadError, match="web page instead of the file.*save the\\s+file as"):
        resumable.fetch(server.url("/drive.tar.gz"), tmp_path / "drive.tar.gz.part", progress=False)
    assert not (tmp_path / "drive.tar.gz.part").exists() or (tmp_path / "drive.tar.gz.part").stat().st_size == 0


def test_disk_full_before_and_during_the_transfer(setup, monkeypatch):
    monkeypatch.setattr(resumable, "_free_bytes", lambda folder: 10)
    with pytest.raises(DownloadError, match="not enough disk space .*--root"):
        D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    monkeypatch.undo()
    monkeypatch.setenv(D.MANIFEST_ENV, str(setup["manifest"]))

    real_open = open

    class Full:
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def write(self, block):
            if self.n:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.n += 1
            return self.fh.write(block[:7])

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.fh.close()

    monkeypatch.setattr(resumable, "CHUNK", 64)
    monkeypatch.setattr(resumable, "open", lambda p, mode: Full(real_open(p, mode)), raising=False)
    with pytest.raises(DownloadError, match="disk full while writing .*kept.*resume"):
        D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    assert (setup["root"] / ".downloads" / "seta.zip.part").stat().st_size == 7
    nothing_complete(setup["root"])


def test_hand_placed_archive_is_verified_and_used(setup, server):
    (setup["root"] / ".downloads").mkdir(parents=True)
    (setup["root"] / ".downloads" / "seta.zip").write_bytes(setup["data"])
    D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    assert not server.requests and D.read_marker(setup["root"], "seta.zip")


# ---------------------------------------------------------------------------------- extraction
def _evil_tar(kind):
    good = set_members()

    def extra(tf):
        if kind == "absolute":
            info = tarfile.TarInfo("/tmp/srlib-evil.txt")
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        elif kind == "dotdot":
            info = tarfile.TarInfo("SetA/../../srlib-evil.txt")
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        elif kind in ("symlink", "hardlink"):
            info = tarfile.TarInfo("SetA/HR/link.png")
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = "../../../../etc/passwd" if kind == "symlink" else "/etc/passwd"
            tf.addfile(info)
        elif kind == "device":
            info = tarfile.TarInfo("SetA/HR/dev.png")
            info.type = tarfile.CHRTYPE
            info.devmajor, info.devminor = 1, 3
            tf.addfile(info)
    return make_tar(good, extra)


@pytest.mark.parametrize("kind,member", [
    ("absolute", "/tmp/srlib-evil.txt"), ("dotdot", "SetA/../../srlib-evil.txt"),
    ("symlink", "SetA/HR/link.png"), ("hardlink", "SetA/HR/link.png"), ("device", "SetA/HR/dev.png"),
    ("zip-dotdot", "../srlib-evil.txt"),
])
def test_malicious_archives_are_refused_naming_the_member(tmp_path, server, kind, member):
    if kind == "zip-dotdot":
        data = make_zip({**set_members(), "../srlib-evil.txt": b"evil"})
        fmt = "zip"
    else:
        data = _evil_tar(kind)
        fmt = "tar"
    path = f"/evil-{kind}.{'zip' if fmt == 'zip' else 'tar.gz'}"
    server.files[path] = data
    mpath = manifest_for(tmp_path, server.url(path), data, fmt=fmt)
    root = tmp_path / "deep" / "root"
    with pytest.raises(DownloadError, match="refusing to extract") as err:
        D.download("seta", root, progress=False, manifests=D.load_manifests(mpath), log=quiet)
    assert member in str(err.value)
    nothing_complete(root)
    assert not list((root / ".downloads").iterdir())  # a refused archive is not kept
    assert not (tmp_path / "srlib-evil.txt").exists() and not (tmp_path / "deep" / "srlib-evil.txt").exists()
    assert not Path("/tmp/srlib-evil.txt").exists()


def test_wrong_layout_is_caught_before_anything_is_moved_into_place(tmp_path, server):
    data = make_zip(set_members(2))
    server.files["/seta.zip"] = data
    mpath = manifest_for(tmp_path, server.url("/seta.zip"), data, count=3)
    root = tmp_path / "root"
    with pytest.raises(DatasetError, match="holds 2 images .*expected 3"):
        D.download("seta", root, progress=False, manifests=D.load_manifests(mpath), log=quiet)
    nothing_complete(root)


def test_interrupted_installation_never_looks_complete(setup, monkeypatch):
    real = D._merge_into

    def crash(src, dest):
        dest.mkdir(parents=True, exist_ok=True)
        first = sorted(src.iterdir())[0]
        os.replace(first, dest / first.name)
        raise KeyboardInterrupt  # killed half-way through the move

    monkeypatch.setattr(D, "_merge_into", crash)
    with pytest.raises(KeyboardInterrupt):
        D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    assert (setup["root"] / "SetA").exists() and not D.read_marker(setup["root"], "seta.zip")
    with pytest.raises(DatasetError, match="not marked complete .*download seta"):
        P.load_pairs("seta", "test", 4, root=setup["root"])
    monkeypatch.setattr(D, "_merge_into", real)
    D.download("seta", setup["root"], progress=False, manifests=setup["manifests"], log=quiet)
    assert len(P.load_pairs("seta", "test", 4, root=setup["root"])) == 2


# ---------------------------------------------------------------------------------- loaders
def test_missing_data_set_names_the_download_command(tmp_path):
    with pytest.raises(DatasetError, match=r"needs set5 .*python -m srlib.data download set5 --root .*250\.1 MB"):
        P.load_pairs("set5", "test", 4, root=tmp_path)
    with pytest.raises(DatasetError, match="Google Drive folders"):
        P.load_pairs("drealsr", "test", 4, root=tmp_path)
    with pytest.raises(DatasetError, match="no split 'valid'"):
        P.pair_paths("set5", "valid", 4, root=tmp_path)
    with pytest.raises(DatasetError, match="no x3 LR images"):
        P.pair_paths("set5", "test", 3, root=tmp_path)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    return dry_run.make_fake_tree(tmp_path_factory.mktemp("fake"))


def test_fake_tree_fills_every_layout_and_loads(fake_root):
    man = D.load_manifests()
    assert dry_run.is_fake(fake_root)
    for ds in man.values():
        assert D.installed_parts(ds, fake_root) == set(ds.layout), ds.name
        for split, spec in ds.pairs.items():
            for s in spec["lr"]:
                pairs = P.load_pairs(ds.name, split, int(s), root=fake_root)
                assert len(pairs) == (len(ds.sources) or 3)
                for _, lr, hr in pairs:
                    assert hr.shape == (lr.shape[0] * int(s), lr.shape[1] * int(s), 3)
                    # held-out splits are smaller (evaluated whole by full-size networks) but keep
                    # one 96-px NIQE patch after a 4-px border crop; training splits fit a 192-px patch
                    side = min(hr.shape[:2])
                    assert (96 + 8 <= side < 192) if dry_run.is_held_out(split) else side >= 192, (ds.name, split)
    test, train = P.load_faces("test", root=fake_root), P.load_faces("train", root=fake_root, scale=4)
    assert len(test) == 1 and len(train) == 9 and not set(test) & set(train)
    assert all(img.shape == (128, 128, 3) for img in train.values())
    assert len(P.load_lr_images("realsr", "canon_train", 4, root=fake_root)) == 3
    assert all(h % 4 == 0 for img in P.load_hr_images("div2k", "train", root=fake_root, scale=4).values()
               for h in img.shape[:2])


def test_unpaired_image_is_an_error_naming_the_file(fake_root, tmp_path):
    import shutil
    root = tmp_path / "copy"
    shutil.copytree(fake_root, root)
    victim = sorted((root / "benchmark" / "Set5" / "LR_bicubic" / "X4").iterdir())[0]
    victim.unlink()
    with pytest.raises(DatasetError, match=r"HR image '.*Set5/HR/.*\.png' has no x4 LR partner"):
        P.pair_paths("set5", "test", 4, root=root)


def test_hr_is_cropped_to_scale_times_lr_and_never_padded():
    lr, hr = pair_images(0, (10, 9))
    assert P.crop_to_lr(hr, lr, 4).shape == (40, 36, 3)
    with pytest.raises(DatasetError, match="smaller than 4 x its LR"):
        P.crop_to_lr(hr[:39], lr, 4)


def _pair_tree(tmp_path, n=3):
    items = []
    for k in range(n):
        lr, hr = pair_images(k, (20 + k, 18))
        (tmp_path / f"{k}.png").write_bytes(png_bytes(hr))
        (tmp_path / f"{k}x4.png").write_bytes(png_bytes(lr))
        items.append((str(k), tmp_path / f"{k}.png", tmp_path / f"{k}x4.png"))
    return items


def test_folder_patches_keep_lr_and_hr_aligned_and_are_pure(tmp_path):
    items = _pair_tree(tmp_path)
    fp = P.FolderPatches(items, 4, 32, seed=3, cache_dir=tmp_path / "cache")
    lr, hr = fp.sample_batch(5, 6)
    assert lr.shape == (6, 3, 8, 8) and hr.shape == (6, 3, 32, 32)
    # HR is LR repeated on 4x4 blocks: every crop/flip/transpose must keep that exactly
    blocks = hr.reshape(6, 3, 8, 4, 8, 4)
    assert (blocks == blocks[:, :, :, :1, :, :1]).all()
    assert np.array_equal(blocks[:, :, :, 0, :, 0].numpy(), lr.numpy())
    lr2, hr2 = P.FolderPatches(items, 4, 32, seed=3, cache_dir=tmp_path / "cache").sample_batch(5, 6)
    assert np.array_equal(lr2, lr) and np.array_equal(hr2, hr)
    lr3, _ = fp.sample_batch(5, 2)
    assert np.array_equal(lr3, lr[:2])
    assert not np.array_equal(fp.sample_batch(6, 6)[0], lr)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 6  # decoded once, memory-mapped after


def test_folder_patches_hr_only_degrades_on_the_fly(tmp_path):
    items = [(i, h, None) for i, h, _ in _pair_tree(tmp_path)]
    lr, hr = P.FolderPatches(items, 4, 32, cache_dir=tmp_path / "c").sample_batch(0, 2)
    assert lr.shape == (2, 3, 8, 8) and hr.shape == (2, 3, 32, 32)
    assert float(lr.min()) >= 0 and float(lr.max()) <= 1
    with pytest.raises(DatasetError, match="smaller than the 128x128 patch"):
        P.FolderPatches(items, 4, 128, cache_dir=tmp_path / "c").sample_batch(0, 1)


def test_training_patches_from_the_fake_tree(fake_root):
    fp = P.paper_patches("DF2K", 4, 192, root=fake_root)
    assert len(fp) == 6 and fp.paired and P.is_paper_set("df2k") and not P.is_paper_set("photos")
    lr, hr = fp.sample_batch(0, 2)
    assert lr.shape == (2, 3, 48, 48) and hr.shape == (2, 3, 192, 192)
    from srlib.data import bicubic
    hr_only = P.paper_patches("div2k", 4, 128, degrade=bicubic(4), root=fake_root)
    assert not hr_only.paired and len(hr_only) == 3
    with pytest.raises(DatasetError, match="unknown paper training set 'photos'"):
        P.paper_patches("photos", 4, 128, root=fake_root)


# ---------------------------------------------------------------------------------- manual sets
def test_manual_data_set_is_checked_in_place(fake_root, tmp_path):
    import shutil
    with pytest.raises(DatasetError, match="cannot be downloaded by a script.*check drealsr"):
        D.download("drealsr", tmp_path, log=quiet)
    shutil.copytree(fake_root / "DRealSR" / "x4" / "Test_x4", tmp_path / "DRealSR" / "x4" / "Test_x4")
    with pytest.raises(DatasetError, match="not marked complete.*check drealsr"):
        P.load_pairs("drealsr", "test", 4, root=tmp_path)
    # only the split that is present is checked and marked
    assert D.check("drealsr", tmp_path, log=quiet) == {"test_hr_x4": 5, "test_lr_x4": 5}
    assert len(P.load_pairs("drealsr", "test", 4, root=tmp_path)) == 5
    with pytest.raises(DatasetError, match="needs drealsr"):
        P.load_pairs("drealsr", "train", 4, root=tmp_path)
    (pan,) = P.load_pairs("drealsr", "test", 4, root=tmp_path, source="Panasonic")
    assert pan[0] == "panasonic_4"
    with pytest.raises(DatasetError, match="no image id starts with 'leica'; the ids start with: canon"):
        P.load_pairs("drealsr", "test", 4, root=tmp_path, source="leica")
    with pytest.raises(DatasetError, match="no part 'x'"):
        D.check("drealsr", tmp_path, parts=["x"], log=quiet)
    shutil.copytree(fake_root / "DRealSR" / "x4" / "Train_x4", tmp_path / "DRealSR" / "x4" / "Train_x4")
    assert D.check("drealsr", tmp_path, parts=["train_hr_x4", "train_lr_x4"], log=quiet) == {
        "train_hr_x4": 5, "train_lr_x4": 5}
    assert D.installed_parts(D.get("drealsr"), tmp_path) == set(D.get("drealsr").layout)
    assert len(P.load_lr_images("drealsr", "train", 4, root=tmp_path, source="olympus")) == 1


# ---------------------------------------------------------------------------------- dry run
def test_shrink_keeps_the_method_and_cuts_the_schedule():
    from srlib.recipes.esrgan import ESRGANConfig
    from srlib.recipes.psnr import PSNRConfig
    from srlib.recipes.srgan import SRGANConfig

    psnr = PSNRConfig.for_profile("paper", arch="rrdbnet")
    small = dry_run.shrink(psnr)  # no phase: one step
    assert (small.steps, small.batch_size, small.period) == (1, 2, 1)
    assert (small.num_feat, small.num_block, small.lr_patch) == (psnr.num_feat, psnr.num_block, psnr.lr_patch)
    gan = SRGANConfig.for_profile("paper")
    sg = dry_run.shrink(gan, steps=3)
    assert sg.steps == 3 and sg.psnr.steps == 3 and sg.milestones == () and sg.disc_feat == gan.disc_feat
    assert sg.content_layers == gan.content_layers and sg.gan_weight == gan.gan_weight
    es = dry_run.shrink(ESRGANConfig.for_profile("paper"))
    assert es.steps == 1 and es.psnr.steps == 1 and es.lr_patch == 32  # the 128x128 discriminator input stays
    assert dry_run.shrink(psnr, lr_patch=16).lr_patch == 16
    with pytest.raises(ValueError, match="do not fit the VGG-style discriminator"):
        dry_run.shrink(ESRGANConfig.for_profile("paper"), lr_patch=16)  # the recipe's own check
    with pytest.raises(TypeError):
        dry_run.shrink({"steps": 5})
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        steps: int = 1000
        warmup_steps: int = 500
        d_init_steps: int = 0
        n_text: int = 200
        num_feat: int = 256

    from srlib.recipes.csd import CSDConfig
    from srlib.recipes.pdd import PDDConfig
    from srlib.recipes.semantic import SemanticConfig

    csd = dry_run.shrink(CSDConfig.for_profile("paper", method="joint"))
    assert (csd.steps, csd.batch_size, csd.neg_num, csd.num_feat, csd.lambda_cl) == (1, 2, 2, 256, 200.0)  # K from the batch
    c = dry_run.shrink(Cfg(), steps=4)  # the used phase (warm-up) runs one step, inside steps
    assert (c.steps, c.warmup_steps, c.d_init_steps, c.n_text, c.num_feat) == (5, 1, 0, 8, 256)
    # PDD-EMA: D alone, warm-up and adapting each run once; static has no warm-up
    ema = dry_run.shrink(PDDConfig.for_profile("paper", "ema"))
    assert (ema.d_init_steps, ema.warmup_steps, ema.steps) == (1, 1, 3)
    static = dry_run.shrink(PDDConfig.for_profile("paper", "static"))
    assert (static.d_init_steps, static.warmup_steps, static.steps) == (1, 0, 2)
    # a semantic method's L1 start is a run of its own: one step of it, one of the method
    sem = dry_run.shrink(SemanticConfig(profile="paper", method="semantic", batch_size=6), batch_size=3)
    assert (sem.warmup_steps, sem.steps) == (1, 1)


def test_course_runner_passes_dry_run_and_the_fake_tree(tmp_path, monkeypatch):
    from srlib import course

    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    (nb_dir / "00_x.ipynb").write_text("{}")
    seen = {}

    def fake_run_one(nb, **kw):
        seen.update(kw)
        env = kw["extra_env"]
        seen["installed"] = D.installed_parts(D.get("div2k"), env[D.DATA_ENV])
        return course.Result(nb.stem, True, 0.0, 0.0, "")

    monkeypatch.setattr(course, "run_one", fake_run_one)
    monkeypatch.setattr(course, "install_kernel", lambda root: root)
    course.run_course(profile="paper", notebooks_dir=nb_dir, figures_dir=tmp_path / "fig",
                      out_dir=tmp_path / "out", dry_run=True, log=quiet)
    assert seen["extra_params"] == {"dry_run": True}
    assert seen["extra_env"][dry_run.DRY_RUN_ENV] == "1"
    assert Path(seen["extra_env"]["SRLIB_CACHE"]) == (tmp_path / "out" / "cache").resolve()
    assert seen["installed"] == set(D.get("div2k").layout)
    assert seen["timeout"] == course.DEFAULT_TIMEOUT["dry_run"]
    assert "(dry run)" in (tmp_path / "out" / "summary.md").read_text()
    with pytest.raises(SystemExit, match="dry run exercises the paper profile"):
        course.run_course(profile="smoke", notebooks_dir=nb_dir, figures_dir=tmp_path / "fig",
                          out_dir=tmp_path / "out", dry_run=True, log=quiet)


# ---------------------------------------------------------------------------------- command line
def test_cli_errors_are_one_line(setup, capsys, server):
    assert D.main(["download", "nope", "--root", str(setup["root"])]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown data set 'nope'") and "Traceback" not in err
    server.files.pop("/seta.zip")
    assert D.main(["download", "seta", "--root", str(setup["root"]), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and err.count("\n") == 1
    assert D.main(["list", "--root", str(setup["root"])]) == 0
    assert "licence: test licence line" in capsys.readouterr().out


def test_python_m_srlib_data_download(setup):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop(D.MANIFEST_ENV)
    proc = subprocess.run([sys.executable, "-m", "srlib.data", "--manifest", str(setup["manifest"]), "download",
                           "seta", "--root", str(setup["root"]), "--no-progress"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "seta: ready in" in proc.stdout and "licence: test licence line" in proc.stdout
    assert D.read_marker(setup["root"], "seta.zip")


@pytest.mark.notebook
def test_dry_run_end_to_end_through_papermill(tmp_path):
    """``python -m srlib.course --profile paper --dry-run``: a notebook sees dry_run=True, the fake
    tree through the paper loaders, and shrinks a paper config."""
    import nbformat

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"\nseed = 0\ndevice = "auto"\n'
                                       'figures_dir = "../build"\ndry_run = False')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import json, pathlib\n"
        "from srlib import paper_data, dry_run as dr\n"
        "from srlib.recipes.psnr import PSNRConfig\n"
        "cfg = PSNRConfig.for_profile(profile)\n"
        "cfg = dr.shrink(cfg) if dry_run else cfg\n"
        "pairs = paper_data.load_pairs('set5', 'test', 4)\n"
        "pathlib.Path(figures_dir, 'seen.json').write_text(json.dumps("
        "[profile, dry_run, dr.is_dry_run(), dr.is_fake(), len(pairs), cfg.steps, cfg.num_block]))")
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "00_dry.ipynb")
    figs, out = tmp_path / "figs", tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "srlib.course", "--profile", "paper", "--dry-run",
                           "--notebooks-dir", str(nbdir), "--figures-dir", str(figs), "--out-dir", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((figs / "seen.json").read_text()) == ["paper", True, True, True, 3, 1, 16]


@pytest.mark.skipif(not __import__("shutil").which("make"), reason="needs make")
def test_make_course_dry_run_variable():
    def dry(*args):
        return subprocess.run(["make", "-n", "course", *args], cwd=REPO, capture_output=True, text=True,
                              check=True, timeout=60).stdout

    out = dry("PROFILE=paper", "DRY_RUN=1")
    assert "--dry-run" in out and "--profile paper" in out and "build/notebooks/paper-dry-run" in out
    assert "build/figures/paper-dry-run" in out
    plain = dry("PROFILE=paper")
    assert "--dry-run" not in plain and "build/notebooks/paper " in plain.replace("\\\n", " ") + " "


# ------------------------------------------------------------------ the paper profile's data path
def test_paper_configs_train_on_the_papers_sets_and_smaller_profiles_stay_offline():
    from srlib.recipes import ESRGANConfig, PSNRConfig, SRGANConfig
    from srlib.recipes.csd import CSDConfig

    assert PSNRConfig.for_profile("paper").dataset == "div2k"  # BasicSR train_MSRResNet_x4.yml
    assert ESRGANConfig.for_profile("paper").psnr.dataset == "df2k"  # ESRGAN: DIV2K + Flickr2K
    assert SRGANConfig.for_profile("paper").psnr.dataset == "div2k"
    assert CSDConfig.for_profile("paper").dataset == "div2k"
    for prof in ("smoke", "standard"):
        assert PSNRConfig.for_profile(prof).dataset == "photos"
        assert CSDConfig.for_profile(prof).dataset == "photos"


def test_a_paper_config_batches_from_the_downloaded_folders(fake_root, monkeypatch):
    from srlib.recipes import PSNRConfig
    from srlib.recipes.psnr import make_batch_fn

    monkeypatch.setenv(D.DATA_ENV, str(fake_root))
    cfg = dry_run.shrink(PSNRConfig.for_profile("paper"))
    batch_fn = make_batch_fn(cfg)
    b = batch_fn(3)
    assert b["lr"].shape == (2, 3, 32, 32) and b["hr"].shape == (2, 3, 128, 128)
    assert torch.equal(batch_fn(3)["hr"], b["hr"]) and not torch.equal(batch_fn(4)["hr"], b["hr"])
    monkeypatch.setenv(D.DATA_ENV, str(fake_root.parent / "nothing-here"))
    with pytest.raises(DatasetError, match="download div2k"):
        make_batch_fn(cfg)


def test_test_images_are_embedded_below_paper_and_a_benchmark_at_it(fake_root, monkeypatch):
    from srlib import data, test_sets

    for prof in ("smoke", "standard"):
        assert list(test_sets.test_images(prof)) == list(data.load_images("photos", "test"))
    monkeypatch.setenv(D.DATA_ENV, str(fake_root))
    set5 = test_sets.test_images("paper")
    assert list(set5) == sorted(P.hr_paths("set5", "test"))
    assert len(test_sets.test_images("paper", benchmark="Set14", n=2)) == 2
    with pytest.raises(DatasetError, match="unknown benchmark"):
        test_sets.test_images("paper", benchmark="set6")
    monkeypatch.setenv(D.DATA_ENV, str(fake_root.parent / "nothing-here"))
    with pytest.raises(DatasetError, match="download set5"):
        test_sets.test_images("paper")


def test_dry_profile_shrinks_the_notebooks_knobs_not_the_recipes():
    from srlib.profiles import get_profile
    from srlib.recipes import ESRGANConfig

    dry = dry_run.dry_profile("paper")
    assert dry.name == "paper" and dry.dry_run and dry.pick(smoke=1, standard=2, paper=3) == 1
    assert dry.eval_max_side == get_profile("smoke").eval_max_side
    assert get_profile(dry) is get_profile("paper")  # recipes look the real profile up
    cfg = ESRGANConfig.for_profile(dry)
    assert cfg == ESRGANConfig.for_profile("paper") and cfg.psnr.num_block == 23
    with pytest.raises(ValueError, match="paper profile"):
        dry_run.dry_profile("standard")


def test_every_notebook_takes_the_dry_run_parameter():
    import json

    from srlib import course

    for nb in course.list_notebooks(course.DEFAULT_NOTEBOOKS):
        cells = json.loads(nb.read_text())["cells"]
        params = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
        assert any(line.startswith("dry_run = False") for line in params["source"]), nb.name
