import io as _io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from srlib import io as sio
from srlib.errors import ImageReadError


def _png16(arr: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): filter 0, one IDAT chunk."""
    h, w, c = arr.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _noise(h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- bad input

def _assert_read_error(path, *words, chained=False):
    with pytest.raises(ImageReadError) as info:
        sio.read_image(path)
    msg = str(info.value)
    assert str(path) in msg
    for word in words:
        assert word in msg.lower()
    assert isinstance(info.value, ValueError)
    if chained:
        assert info.value.__cause__ is not None
    return info.value


def test_missing_file(tmp_path):
    _assert_read_error(tmp_path / "nope.png", "does not exist", "check the path")


def test_directory(tmp_path):
    _assert_read_error(tmp_path, "not a regular file")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    _assert_read_error(p, "empty", "0 bytes")


def test_text_file(tmp_path):
    p = tmp_path / "page.jpg"
    p.write_text("<html>404 not found</html>\n")
    _assert_read_error(p, "not an image", chained=True)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    buf = _io.BytesIO()
    Image.fromarray(_noise(96, 96)).save(buf, format=fmt)
    data = buf.getvalue()
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(data[: len(data) // 2])
    _assert_read_error(p, "truncated", chained=True)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_bomb_declared_size_refused_before_decoding(tmp_path):
    # a tiny PNG that claims 30000 x 30000 pixels: Pillow's DecompressionBombError, mapped
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    p = tmp_path / "bomb.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                  + chunk(b"IEND", b""))
    assert p.stat().st_size < 200
    _assert_read_error(p, "too many pixels", chained=True)


def test_bomb_our_limit(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    Image.fromarray(_noise(40, 30)).save(p)
    monkeypatch.setattr(sio, "MAX_PIXELS", 40 * 30 - 1)
    err = _assert_read_error(p, "1,200 pixels", "max_pixels")
    assert "40 x 30" in str(err) or "30 x 40" in str(err)
    monkeypatch.setattr(sio, "MAX_PIXELS", 40 * 30)
    assert sio.read_image(p).shape == (40, 30, 3)


def test_pillow_bomb_warning_becomes_error(tmp_path, monkeypatch):
    p = tmp_path / "warn.png"
    Image.fromarray(_noise(40, 30)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1200 px: warning zone (< 2x limit)
    _assert_read_error(p, "too many pixels", chained=True)


# ----------------------------------------------------------------------------- conversions

def test_rgb_png_roundtrip_exact(tmp_path):
    img = _noise(17, 23)
    p = sio.write_image(tmp_path / "a" / "b" / "x.png", img)
    out = sio.read_image(p)
    assert out.dtype == np.uint8 and out.shape == (17, 23, 3)
    np.testing.assert_array_equal(out, img)


def test_gray_and_1bit(tmp_path):
    gray = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = sio.read_image(tmp_path / "g.png")
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    Image.fromarray(np.array([[True, False, True]])).convert("1").save(tmp_path / "b.png")
    im = Image.open(tmp_path / "b.png")
    assert im.mode == "1"
    np.testing.assert_array_equal(sio.read_image(tmp_path / "b.png")[0, :, 0], [255, 0, 255])


# 128/257 = 0.498 -> 0 and 129/257 = 0.502 -> 1; 1000/257 = 3.89 -> 4 (truncation would give 3)
VALUES16 = [0, 257, 65535, 1000, 128, 129, 257 * 77, 65000]
EXPECT8 = [0, 1, 255, 4, 0, 1, 77, 253]


def test_16bit_gray_png_rounds(tmp_path):
    p = tmp_path / "g16.png"
    Image.fromarray(np.array([VALUES16], dtype=np.uint16)).save(p)
    assert Image.open(p).mode == "I;16"
    out = sio.read_image(p)
    np.testing.assert_array_equal(out[0, :, 0], EXPECT8)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_16bit_rgb_png_rounds_not_truncates(tmp_path):
    arr = np.array(VALUES16 + VALUES16[::-1] + VALUES16[2:] + VALUES16[:2],
                   dtype=np.uint16).reshape(1, 8, 3)
    p = tmp_path / "rgb16.png"
    p.write_bytes(_png16(arr))
    np.testing.assert_array_equal(sio.read_image(p), np.rint(arr / 257.0).astype(np.uint8))
    flat = sio.read_image(p).reshape(-1)
    assert flat[5] == 1 and flat[3] == 4  # 129 -> 1 and 1000 -> 4, where Pillow alone gives 0 and 3


def test_16bit_rgba_png_composites_in_16_bit(tmp_path):
    arr = np.array([[[65535, 0, 1000, 0], [1000, 2000, 3000, 65535], [0, 0, 0, 32768]]],
                   dtype=np.uint16)
    p = tmp_path / "rgba16.png"
    p.write_bytes(_png16(arr))
    out = sio.read_image(p)
    a = 32768 / 65535
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], [4, 8, 12])  # 1000/257=3.89, 2000/257=7.78, 11.67
    np.testing.assert_array_equal(out[0, 2], [round(255 * (1 - a))] * 3)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_16bit_tiff(tmp_path, compression):
    tifffile = pytest.importorskip("tifffile")
    rgb = np.array(VALUES16[:6], dtype=np.uint16).reshape(1, 2, 3)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb, photometric="rgb", compression=compression)
    np.testing.assert_array_equal(sio.read_image(tmp_path / "rgb16.tif"),
                                  np.array(EXPECT8[:6], dtype=np.uint8).reshape(1, 2, 3))
    Image.fromarray(np.array([VALUES16], dtype=np.uint16)).save(tmp_path / "g16.tif")
    np.testing.assert_array_equal(sio.read_image(tmp_path / "g16.tif")[0, :, 1], EXPECT8)


def test_palette_with_and_without_transparency(tmp_path):
    idx = np.array([[0, 1, 2]], dtype=np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([10, 20, 30, 200, 100, 0, 0, 0, 0] + [0] * (256 * 3 - 9))
    im.save(tmp_path / "p.png")
    out = sio.read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out[0], [[10, 20, 30], [200, 100, 0], [0, 0, 0]])
    im.save(tmp_path / "pt.png", transparency=2)
    assert Image.open(tmp_path / "pt.png").mode == "P"
    out = sio.read_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(out[0], [[10, 20, 30], [200, 100, 0], [255, 255, 255]])


def test_rgba_and_la_composited_over_white(tmp_path):
    rgba = np.array([[[0, 0, 0, 0], [10, 20, 30, 255], [0, 0, 0, 128], [200, 100, 50, 51]]],
                    dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = sio.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], [10, 20, 30])
    np.testing.assert_array_equal(out[0, 2], [127, 127, 127])  # 255 * (1 - 128/255) = 127
    # 0.2 * c + 0.8 * 255: 40 + 204, 20 + 204, 10 + 204
    np.testing.assert_array_equal(out[0, 3], [244, 224, 214])
    la = np.array([[[0, 0], [90, 255]]], dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(sio.read_image(tmp_path / "la.png")[0], [[255] * 3, [90] * 3])


def test_cmyk(tmp_path):
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [0, 255, 255, 0]]],
                    dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.tif")
    out = sio.read_image(tmp_path / "c.tif")
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [0, 255, 255], [0, 0, 0], [255, 0, 0]])


def test_exif_orientation_6_rotates_clockwise(tmp_path):
    img = np.zeros((16, 32, 3), dtype=np.uint8)
    img[:, :16] = (255, 0, 0)   # left half red
    img[:, 16:] = (0, 0, 255)   # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = sio.read_image(tmp_path / "r.jpg").astype(int)
    assert out.shape == (32, 16, 3)
    # 90 degrees clockwise: the left edge becomes the top edge
    assert np.abs(out[4, 8] - [255, 0, 0]).max() < 12
    assert np.abs(out[28, 8] - [0, 0, 255]).max() < 12
    Image.fromarray(img).save(tmp_path / "plain.jpg", quality=95)
    assert sio.read_image(tmp_path / "plain.jpg").shape == (16, 32, 3)


# ----------------------------------------------------------------------------- writing, tensors

def test_write_float_rounds_and_clips_and_is_atomic(tmp_path):
    img = np.array([[[0.0, 0.5, 1.0], [-0.2, 1.3, 0.2]]], dtype=np.float32)
    p = sio.write_image(tmp_path / "sub" / "f.png", img)
    np.testing.assert_array_equal(sio.read_image(p), [[[0, 128, 255], [0, 255, 51]]])
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.png"]  # no temporary file left
    with pytest.raises(ValueError, match="lossless"):
        sio.write_image(tmp_path / "f.jpg", img)
    with pytest.raises(ValueError, match="H x W x 3"):
        sio.write_image(tmp_path / "g.png", np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        sio.write_image(tmp_path / "n.png", np.full((2, 2, 3), np.nan, np.float32))
    assert not (tmp_path / "n.png").exists()


def test_to_tensor_and_back():
    img = _noise(5, 7)
    t = sio.to_tensor(img)
    assert t.dtype == torch.float32 and t.shape == (3, 5, 7)
    assert float(t[1, 2, 3]) == pytest.approx(img[2, 3, 1] / 255.0)
    np.testing.assert_array_equal(sio.to_image(t), img)
    batch = sio.to_tensor(np.stack([img, img[::-1]]))
    assert batch.shape == (2, 3, 5, 7)
    np.testing.assert_array_equal(sio.to_image(batch)[1], img[::-1])
    x = torch.tensor([-0.1, 0.5, 1.2, 0.2]).reshape(1, 1, 4).expand(3, 1, 4)
    np.testing.assert_array_equal(sio.to_image(x)[0, :, 0], [0, 128, 255, 51])
    with pytest.raises(ValueError):
        sio.to_tensor(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        sio.to_image(torch.zeros(4, 4, 3))
