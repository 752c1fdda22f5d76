"""Checkpoint reading (every layout), strict-load messages, architecture guessing, verified
downloads from a loopback server, fetch caching and archive path-traversal refusal."""

import functools
import hashlib
import http.server
import io
import stat
import tarfile
import threading
import zipfile
from collections import OrderedDict

import pytest
import torch

from srlib import weights as W
from srlib.archs import EDSR, MSRResNet, RRDBNet, UNetDiscriminatorSN, VGGStyleDiscriminator
from srlib.errors import DownloadError, WeightsError

torch.set_num_threads(1)


def tiny(**kw):
    torch.manual_seed(kw.pop("seed", 0))
    args = dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=2, num_grow_ch=4)
    args.update(kw)
    return RRDBNet(**args)


def same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def to_esrgan_names(sd, dot_zero=False):
    """BasicSR names -> original ESRGAN repository names (the inverse of the conversion)."""
    ren = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}
    out = OrderedDict()
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "body":
            k = f"RRDB_trunk.{parts[1]}.{parts[2].upper()}.{parts[3]}.{'0.' if dot_zero else ''}{parts[4]}"
        elif parts[0] in ren:
            k = f"{ren[parts[0]]}.{parts[1]}"
        out[k] = v
    return out


def to_old_arch_names(sd, num_block):
    ren = {"conv_first": "model.0", "conv_body": f"model.1.sub.{num_block}", "conv_up1": "model.3",
           "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    out = OrderedDict()
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "body":
            k = f"model.1.sub.{parts[1]}.{parts[2].upper()}.{parts[3]}.0.{parts[4]}"
        else:
            k = f"{ren[parts[0]]}.{parts[1]}"
        out[k] = v
    return out


# ---- every checkpoint layout ---------------------------------------------------------------
@pytest.mark.parametrize("layout", ["params_ema", "params", "bare", "module", "esrgan", "esrgan_dot0",
                                    "old_arch", "ema_over_params"])
def test_every_layout_loads(tmp_path, layout):
    src = tiny(seed=1)
    sd = src.state_dict()
    other = tiny(seed=2).state_dict()
    obj = {
        "params_ema": {"params_ema": sd},
        "params": {"params": sd},
        "bare": sd,
        "module": OrderedDict((f"module.{k}", v) for k, v in sd.items()),
        "esrgan": to_esrgan_names(sd),
        "esrgan_dot0": to_esrgan_names(sd, dot_zero=True),
        "old_arch": to_old_arch_names(sd, num_block=2),
        "ema_over_params": {"params": other, "params_ema": sd},  # the EMA weights win
    }[layout]
    path = tmp_path / "w.pth"
    torch.save(obj, path)
    dst = tiny(seed=3)
    assert not same(src, dst)
    rep = W.load_weights(dst, path)
    assert rep.ok and rep.loaded == len(sd)
    assert same(src, dst)
    x = torch.rand(1, 3, 4, 4)
    assert torch.equal(src(x), dst(x))


def test_esrgan_naming_detection():
    sd = tiny().state_dict()
    assert W.esrgan_naming(sd) is None
    assert W.esrgan_naming(to_esrgan_names(sd)) == "esrgan"
    assert W.esrgan_naming(to_old_arch_names(sd, 2)) == "esrgan_old_arch"
    conv = W.convert_esrgan_keys(to_old_arch_names(sd, 2))
    assert list(conv) == list(sd)  # the trunk conv (model.1.sub.2) became conv_body


def test_load_from_state_dict_and_discriminator_with_spectral_norm(tmp_path):
    d1, d2 = UNetDiscriminatorSN(3, num_feat=4), UNetDiscriminatorSN(3, num_feat=4)
    d1(torch.rand(1, 3, 8, 8))  # one power iteration changes weight_u
    torch.save({"params": d1.state_dict()}, tmp_path / "netD.pth")
    W.load_weights(d2, tmp_path / "netD.pth")
    assert same(d1, d2)
    W.load_weights(tiny(), {"params_ema": tiny().state_dict()})


# ---- strict mismatch messages --------------------------------------------------------------
def test_strict_mismatch_lists_keys_and_the_fitting_architecture(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"params_ema": tiny(num_feat=8, num_block=2).state_dict()}, path)
    with pytest.raises(WeightsError) as e:
        W.load_weights(tiny(num_feat=8, num_block=3), path)
    msg = str(e.value)
    first = msg.splitlines()[0]
    assert "30 missing" in first and "RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=2" in first
    assert "body.2.rdb1.conv1.weight" in msg and "(25 more)" in msg

    with pytest.raises(WeightsError) as e:
        W.load_weights(tiny(num_feat=16), path)
    assert "of a different shape" in str(e.value) and "file [8, 3, 3, 3] vs model [16, 3, 3, 3]" in str(e.value)

    with pytest.raises(WeightsError) as e:
        W.load_weights(EDSR(3, 3, num_feat=8, num_block=2), path)
    msg = str(e.value)
    assert "do not fit EDSR" in msg and "unexpected" in msg and "looks like RRDBNet(" in msg


def test_non_strict_load_reports_and_keeps_the_rest():
    src, dst = tiny(num_block=2, seed=1), tiny(num_block=3, seed=2)
    before = dst.body[2].rdb1.conv1.weight.clone()
    rep = W.load_weights(dst, src.state_dict(), strict=False)
    assert not rep.ok and len(rep.missing) == 30 and rep.loaded == len(src.state_dict())
    assert torch.equal(dst.conv_first.weight, src.conv_first.weight)
    assert torch.equal(dst.body[2].rdb1.conv1.weight, before)


# ---- unreadable files ----------------------------------------------------------------------
def test_bad_files_raise_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        W.read_state_dict(tmp_path / "nope.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        W.read_state_dict(tmp_path / "empty.pth")
    (tmp_path / "junk.pth").write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(WeightsError, match="corrupt"):
        W.read_state_dict(tmp_path / "junk.pth")
    torch.save(tiny().state_dict(), tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="corrupt|truncated"):
        W.read_state_dict(tmp_path / "cut.pth")
    with pytest.raises(WeightsError, match="directory"):
        W.read_state_dict(tmp_path)


def test_not_a_checkpoint_and_pickled_objects(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="not a model checkpoint"):
        W.read_state_dict(tmp_path / "list.pth")
    torch.save({"optimizer": {"lr": 1e-4}, "iter": 5}, tmp_path / "state.pth")
    with pytest.raises(WeightsError, match="not a weights file.*'optimizer'"):
        W.read_state_dict(tmp_path / "state.pth")
    torch.save({"params": tiny().state_dict(), "net": io.BytesIO(b"x")}, tmp_path / "obj.pth")
    with pytest.raises(WeightsError, match=r"pickled Python object \(_io.BytesIO\)"):
        W.read_state_dict(tmp_path / "obj.pth")
    (tmp_path / "junk2.pth").write_bytes(b"not a checkpoint" * 20)  # fails inside the safe unpickler
    with pytest.raises(WeightsError, match="corrupt.*Unsupported operand"):
        W.read_state_dict(tmp_path / "junk2.pth")


# ---- guessing the architecture -------------------------------------------------------------
@pytest.mark.parametrize("model, arch, kwargs", [
    (RRDBNet(3, 3, scale=2, num_feat=8, num_block=3, num_grow_ch=4), "rrdbnet",
     dict(num_in_ch=3, num_out_ch=3, scale=2, num_feat=8, num_block=3, num_grow_ch=4)),
    (RRDBNet(3, 3, scale=1, num_feat=8, num_block=1, num_grow_ch=4), "rrdbnet",
     dict(num_in_ch=3, num_out_ch=3, scale=1, num_feat=8, num_block=1, num_grow_ch=4)),
    (EDSR(3, 3, num_feat=8, num_block=3, upscale=4), "edsr",
     dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=3, upscale=4, res_scale=1)),
    (EDSR(3, 3, num_feat=8, num_block=1, upscale=3), "edsr",
     dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=3, res_scale=1)),
    (MSRResNet(num_feat=8, num_block=2, upscale=2), "msrresnet",
     dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=2)),
    (MSRResNet(num_feat=8, num_block=2, upscale=4), "msrresnet",
     dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=4)),
    (VGGStyleDiscriminator(3, 4, input_size=256), "vgg_discriminator",
     dict(num_in_ch=3, num_feat=4, input_size=256)),
    (UNetDiscriminatorSN(3, num_feat=4), "unet_discriminator_sn", dict(num_in_ch=3, num_feat=4)),
])
def test_guess_architecture(model, arch, kwargs):
    g = W.guess_architecture(model.state_dict())
    assert g["arch"] == arch and g["kwargs"] == kwargs
    assert W.guess_architecture({"foo.weight": torch.zeros(1)}) is None


# ---- downloads from a loopback server ------------------------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_full_hash_and_prefix(server, tmp_path):
    root, base = server
    payload = bytes(range(256)) * 300
    (root / "f.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    out = W.download(f"{base}/f.bin", tmp_path / "dl" / "f.bin", digest, progress=False)
    assert out.read_bytes() == payload
    out2 = W.download(f"{base}/f.bin", tmp_path / "dl" / "g.bin", digest[:8], progress=False)
    assert out2.read_bytes() == payload
    with pytest.warns(UserWarning, match="unverified"):
        W.download(f"{base}/f.bin", tmp_path / "dl" / "h.bin", None, progress=False)


def test_download_bad_hash_leaves_nothing(server, tmp_path):
    root, base = server
    (root / "f.bin").write_bytes(b"payload" * 100)
    dest = tmp_path / "dl" / "f.bin"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        W.download(f"{base}/f.bin", dest, "0" * 64, progress=False)
    assert not dest.exists() and list((tmp_path / "dl").iterdir()) == []
    dest.write_bytes(b"old good file")  # a failed download never clobbers an existing file
    with pytest.raises(DownloadError):
        W.download(f"{base}/f.bin", dest, "deadbeef", progress=False)
    assert dest.read_bytes() == b"old good file"
    with pytest.raises(DownloadError, match="HTTP 404"):
        W.download(f"{base}/missing.bin", tmp_path / "dl" / "m.bin", None, progress=False)
    with pytest.raises(ValueError, match="hex"):
        W.download(f"{base}/f.bin", dest, "xyz", progress=False)


def test_download_unreachable_host(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError, match="failed"):
        W.download(f"http://127.0.0.1:{port}/x", tmp_path / "x", None, progress=False, timeout=2)
    assert list(tmp_path.iterdir()) == []


def test_fetch_downloads_once_then_uses_cache(server, tmp_path, monkeypatch):
    root, base = server
    src = tiny()
    torch.save({"params_ema": src.state_dict()}, root / "tiny-rrdb.pth")
    digest = hashlib.sha256((root / "tiny-rrdb.pth").read_bytes()).hexdigest()
    entry = W.OfficialFile(f"{base}/tiny-rrdb.pth", "tiny-rrdb.pth", "rrdbnet",
                           dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=2, num_grow_ch=4),
                           digest[:8], True)
    monkeypatch.setitem(W.OFFICIAL, "tiny", entry)
    cache = tmp_path / "cache"
    path = W.fetch("tiny", cache, progress=False)
    assert path == cache / "tiny-rrdb.pth" and path.is_file()
    (root / "tiny-rrdb.pth").unlink()  # the server no longer has it: a cached fetch must not ask
    assert W.fetch("tiny", cache, progress=False) == path
    assert same(W.build_official("tiny", cache), src)
    path.write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="does not match its published sha256"):
        W.fetch("tiny", cache)
    with pytest.raises(WeightsError, match="unknown official weights"):
        W.fetch("no-such-model", cache)


def test_official_registry_is_consistent():
    import re
    assert {"RRDB_ESRGAN_x4", "RRDB_PSNR_x4", "RealESRGAN_x4plus", "RealESRNet_x4plus",
            "RealESRGAN_x4plus_netD", "EDSR_Mx4", "EDSR_Lx4", "vgg19", "alexnet"} <= set(W.OFFICIAL)
    for name, e in W.OFFICIAL.items():
        assert e.url.startswith("https://"), name
        if e.sha256 is not None:
            assert re.fullmatch(r"[0-9a-f]{8,64}", e.sha256), name
            assert e.sha256_prefix == (len(e.sha256) < 64), name
        m = re.search(r"-([0-9a-f]{8})\.pth$", e.filename)
        if m:  # the hash the official file name carries agrees with the registered one
            assert e.sha256 and e.sha256.startswith(m[1]), name
    assert W.cache_path("vgg19").parent == W.cache_path("alexnet").parent
    assert W.cache_path("vgg19").parts[-2] == "checkpoints"


# ---- archives ------------------------------------------------------------------------------
def _tar(path, add):
    with tarfile.open(path, "w:gz") as tf:
        add(tf)


def _tar_file(tf, name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _tar_link(tf, name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tf.addfile(info)


def test_extract_good_archives(tmp_path):
    zp = tmp_path / "a.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("set/img1.png", b"1")
        zf.writestr("set/sub/img2.png", b"2")
    out = W.extract_archive(zp, tmp_path / "z")
    assert (out / "set" / "sub" / "img2.png").read_bytes() == b"2"
    tp = tmp_path / "a.tar.gz"
    _tar(tp, lambda tf: (_tar_file(tf, "set/a.txt", b"a"), _tar_link(tf, "set/b.txt", "a.txt")))
    out = W.extract_archive(tp, tmp_path / "t")
    assert (out / "set" / "a.txt").read_bytes() == b"a" and (out / "set" / "b.txt").is_symlink()


@pytest.mark.parametrize("evil", ["zip_dotdot", "zip_abs", "zip_symlink", "tar_dotdot", "tar_abs",
                                  "tar_symlink_abs", "tar_symlink_up", "tar_hardlink", "tar_device"])
def test_extract_refuses_path_traversal(tmp_path, evil):
    arc = tmp_path / ("a.zip" if evil.startswith("zip") else "a.tar.gz")
    if evil.startswith("zip"):
        with zipfile.ZipFile(arc, "w") as zf:
            zf.writestr("ok.txt", b"fine")
            if evil == "zip_dotdot":
                zf.writestr("../escape.txt", b"x")
            elif evil == "zip_abs":
                zf.writestr(zipfile.ZipInfo("/tmp/escape.txt"), b"x")
            else:
                info = zipfile.ZipInfo("link")
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, "../../etc/passwd")
    else:
        def add(tf):
            _tar_file(tf, "ok.txt")
            if evil == "tar_dotdot":
                _tar_file(tf, "sub/../../escape.txt")
            elif evil == "tar_abs":
                _tar_file(tf, "/tmp/escape.txt")
            elif evil == "tar_symlink_abs":
                _tar_link(tf, "link", "/etc/passwd")
            elif evil == "tar_symlink_up":
                _tar_link(tf, "sub/link", "../../outside")
            elif evil == "tar_hardlink":
                _tar_link(tf, "hl", "../outside", tarfile.LNKTYPE)
            else:
                info = tarfile.TarInfo("dev")
                info.type = tarfile.CHRTYPE
                tf.addfile(info)
        _tar(arc, add)
    dest = tmp_path / "out"
    with pytest.raises(DownloadError, match="refusing to extract"):
        W.extract_archive(arc, dest)
    assert list(dest.iterdir()) == []  # nothing at all was written
    assert not (tmp_path / "escape.txt").exists()


def test_extract_rejects_non_archive(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"not an archive")
    with pytest.raises(DownloadError, match="not a zip or tar"):
        W.extract_archive(tmp_path / "x.bin", tmp_path / "o")
