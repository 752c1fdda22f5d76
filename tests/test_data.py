import hashlib
import itertools

import numpy as np
import pytest
import torch

from srlib import data
from srlib.degradations import imresize
from srlib.errors import DatasetError


def _digests(images):
    return {hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.shape).encode()).hexdigest()
            for a in images.values()}


def _coord_image(h=40, w=44):
    """Every pixel unique: R = row, G = column, B = (row + 3 column) % 256."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([y, x, (y + 3 * x) % 256], axis=2).astype(np.uint8)


def _locate(patch_u8, img, crop):
    """(top, left, (hflip, vflip, rot90)) such that patch == augment(img crop)."""
    top, left = int(patch_u8[..., 0].min()), int(patch_u8[..., 1].min())
    crop_arr = img[top:top + crop, left:left + crop]
    for flags in itertools.product([False, True], repeat=3):
        if np.array_equal(data._augment(crop_arr, *flags), patch_u8):
            return top, left, flags
    raise AssertionError("patch is not a flipped/rotated crop of the image")


def _u8(t):
    return np.rint(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- data sets

def test_unknown_name_or_split_lists_valid_ones():
    with pytest.raises(DatasetError, match="photos, text, textures"):
        data.load_images("faces", "train")
    with pytest.raises(DatasetError, match="train, test"):
        data.load_images("photos", "val")
    with pytest.raises(DatasetError, match="only 3"):
        data.load_images("photos", "test", n=4)


def test_photos_split_counts_disjoint_and_bundled():
    train, test = data.load_images("photos", "train"), data.load_images("photos", "test")
    assert len(train) >= 8 and len(test) >= 3
    assert not set(train) & set(test)
    assert not _digests(train) & _digests(test)
    assert {"motorcycle_left", "motorcycle_right"} <= set(train)  # stereo pair kept together
    assert set(data.PHOTO_SPLITS["train"]) | set(data.PHOTO_SPLITS["test"]) == set(data.PHOTO_SOURCES)
    for img in [*train.values(), *test.values()]:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert min(img.shape[:2]) >= 256
        assert img.std() > 10  # a real picture, not a blank
    import skimage.data
    np.testing.assert_array_equal(train["coffee"], skimage.data.coffee())
    np.testing.assert_array_equal(test["chelsea"], skimage.data.chelsea())


def test_missing_bundled_file_or_package():
    with pytest.raises(DatasetError, match="reinstall"):
        data._package_file("skimage", "data/no_such_image.png")
    with pytest.raises(DatasetError, match="not installed"):
        data._package_file("no_such_package_for_srlib", "x.png")


def test_returned_images_are_copies():
    a = data.load_images("photos", "test", n=1)["astronaut"]
    a[:] = 0
    assert data.load_images("photos", "test", n=1)["astronaut"].max() > 0


def test_text_deterministic_split_disjoint_and_varied():
    train = data.load_images("text", "train", n=8)
    data._text_set.cache_clear()
    again = data.load_images("text", "train", n=8)
    assert list(train) == list(again)
    for k in train:
        np.testing.assert_array_equal(train[k], again[k])
        assert train[k].shape == (data.TEXT_SIZE, data.TEXT_SIZE, 3) and train[k].dtype == np.uint8
    test = data.load_images("text", "test", n=8)
    assert not _digests(train) & _digests(test)
    assert len(_digests(train)) == 8
    other_seed = data.load_images("text", "train", n=8, seed=1)
    assert not _digests(train) & _digests(other_seed)
    assert not set(data.TEXT_WORDS["train"]) & set(data.TEXT_WORDS["test"])
    for img in train.values():  # background plus a real amount of text pixels
        flat = img.reshape(-1, 3)
        bg = flat[0]
        assert 0.01 < np.mean(np.any(flat != bg, axis=1)) < 0.7
    backgrounds = {tuple(img[0, 0]) for img in train.values()}
    assert len(backgrounds) == 8


def test_text_fonts_are_matplotlib_bundled(monkeypatch):
    import os

    import matplotlib
    from matplotlib import font_manager
    paths = {data._font_path(*spec) for spec in data.TEXT_FONTS}
    assert len(paths) == len(data.TEXT_FONTS)
    assert all(p.startswith(matplotlib.get_data_path()) for p in paths)
    # a system font with the same name shadowing the bundled one is not used
    monkeypatch.setattr(font_manager, "findfont", lambda *a, **k: "/usr/share/fonts/DejaVuSerif-BI.ttf")
    path = data._font_path.__wrapped__("DejaVu Serif", "bold", "italic")
    assert os.path.basename(path) == "DejaVuSerif-BoldItalic.ttf"


def test_render_text_is_pure_and_fast_enough():
    import time
    data.render_text(3, "test", 0)  # warm the font cache
    t = time.perf_counter()
    a = data.render_text(3, "test", 5)
    elapsed = time.perf_counter() - t
    np.testing.assert_array_equal(a, data.render_text(3, "test", 5))
    assert elapsed < 0.5  # ~15 ms on an idle core; generous for a busy CI machine


def test_textures_are_gray_halves():
    train, test = data.load_images("textures", "train"), data.load_images("textures", "test")
    assert list(train) == list(test) == ["brick", "grass", "gravel"]
    assert not _digests(train) & _digests(test)
    import skimage.data
    for name in train:
        assert train[name].shape == test[name].shape == (512, 256, 3)
        np.testing.assert_array_equal(train[name][..., 0], train[name][..., 2])
        whole = np.concatenate([train[name], test[name]], axis=1)[..., 0]
        np.testing.assert_array_equal(whole, getattr(skimage.data, name)())


def test_dataset_info_rows():
    rows = data.dataset_info(n_text=2)
    assert [(r["name"], r["split"]) for r in rows] == [
        (n, s) for n in ("photos", "text", "textures") for s in ("train", "test")]
    counts = {(r["name"], r["split"]): r["count"] for r in rows}
    assert counts[("photos", "train")] == 9 and counts[("text", "test")] == 2
    assert rows[4]["sizes"] == "512x256" and rows[2]["sizes"] == "192x192"


# ----------------------------------------------------------------------------- paired patches

def test_paired_shapes_range_and_purity():
    imgs = {"a": _coord_image(), "b": _coord_image(48, 36)}
    ds = data.PairedPatches(imgs, 4, 16, seed=7)
    lr, hr = ds.sample_batch(3, 5)
    assert lr.shape == (5, 3, 4, 4) and hr.shape == (5, 3, 16, 16)
    assert lr.dtype == hr.dtype == torch.float32
    assert 0 <= float(lr.min()) and float(lr.max()) <= 1 and 0 <= float(hr.min()) and float(hr.max()) <= 1
    lr2, hr2 = data.PairedPatches(imgs, 4, 16, seed=7).sample_batch(3, 5)  # fresh object, same batch
    assert torch.equal(lr, lr2) and torch.equal(hr, hr2)
    assert torch.equal(ds.sample_batch(3, 2)[1], hr[:2])  # sample b does not depend on B
    assert not torch.equal(ds.sample_batch(4, 5)[1], hr)
    assert not torch.equal(data.PairedPatches(imgs, 4, 16, seed=8).sample_batch(3, 5)[1], hr)


def test_paired_default_is_bicubic_of_the_hr_patch_and_crops_on_the_grid():
    img = _coord_image(40, 44)
    ds = data.PairedPatches([img], 4, 16, augment=False, seed=1)
    lr, hr = ds.sample_batch(0, 12)
    tops = set()
    for b in range(12):
        hr_np = hr[b].numpy().transpose(1, 2, 0)
        expect = np.clip(imresize(hr_np, 1 / 4), 0, 1)
        np.testing.assert_array_equal(lr[b].numpy().transpose(1, 2, 0), expect)
        top, left, flags = _locate(_u8(hr[b]), img, 16)
        assert top % 4 == 0 and left % 4 == 0 and flags == (False, False, False)
        tops.add((top, left))
    assert len(tops) > 3  # the crop position really varies


def test_augmentation_applies_the_same_transform_to_lr_and_hr():
    img = _coord_image(24, 24)

    def subsample(hr, rng):  # not flip-equivariant: LR made before augmenting would differ
        return hr[::2, ::2]

    ds = data.PairedPatches({"c": img}, 2, 8, degrade=subsample, seed=0)
    lr, hr = ds.sample_batch(0, 64)
    seen = set()
    for b in range(64):
        np.testing.assert_array_equal(lr[b].numpy(), hr[b].numpy()[:, ::2, ::2])
        seen.add(_locate(_u8(hr[b]), img, 8)[2])
    assert len(seen) == 8  # all flips x rotations occur
    # and with the default bicubic degrade, LR is the bicubic of the augmented HR
    lr, hr = data.PairedPatches({"c": img}, 2, 8, seed=5).sample_batch(1, 8)
    for b in range(8):
        np.testing.assert_array_equal(lr[b].numpy().transpose(1, 2, 0),
                                      np.clip(imresize(hr[b].numpy().transpose(1, 2, 0), 0.5), 0, 1))


def test_random_degrade_is_reproducible():
    def noisy(hr, rng):
        return hr[::2, ::2] + rng.normal(0, 0.1, (hr.shape[0] // 2, hr.shape[1] // 2, 3))

    ds = data.PairedPatches([_coord_image()], 2, 8, degrade=noisy, seed=3)
    a, b = ds.sample_batch(9, 4)[0], ds.sample_batch(9, 4)[0]
    assert torch.equal(a, b) and float(a.min()) >= 0
    assert not torch.equal(ds.sample_batch(10, 4)[0], a)


def test_paired_bad_inputs():
    with pytest.raises(DatasetError, match=r"'tiny' is 10x30, smaller than the 16x16 patch"):
        data.PairedPatches({"ok": _coord_image(), "tiny": np.zeros((10, 30, 3), np.uint8)}, 4, 16)
    with pytest.raises(DatasetError, match="not a multiple of scale 4"):
        data.PairedPatches([_coord_image()], 4, 18)
    with pytest.raises(DatasetError, match="H x W x 3 uint8"):
        data.PairedPatches([np.zeros((32, 32), np.uint8)], 4, 16)
    with pytest.raises(DatasetError, match="expected"):
        data.PairedPatches([_coord_image()], 4, 16, degrade=lambda hr, rng: hr).sample_batch(0, 1)
    with pytest.raises(DatasetError, match=">= 0"):
        data.PairedPatches([_coord_image()], 4, 16).sample_batch(-1, 1)


def test_paired_is_a_torch_dataset():
    ds = data.PairedPatches([_coord_image()], 4, 16, seed=2, epoch_size=10)
    assert len(ds) == 10
    lr, hr = ds[3]
    assert lr.shape == (3, 4, 4) and hr.shape == (3, 16, 16)
    assert torch.equal(ds[3][1], hr) and not torch.equal(ds[4][1], hr)
    with pytest.raises(IndexError):
        ds[10]
    lr_b, hr_b = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert lr_b.shape == (4, 3, 4, 4) and torch.equal(hr_b[3], hr)


def test_paired_on_real_photos_smoke_profile():
    from srlib.profiles import get_profile
    p = get_profile("smoke")
    ds = data.PairedPatches(data.load_images("photos", "train"), p.scale, p.hr_patch)
    lr, hr = ds.sample_batch(0, p.batch_size)
    assert lr.shape == (p.batch_size, 3, p.lr_patch, p.lr_patch)
    assert hr.shape == (p.batch_size, 3, p.hr_patch, p.hr_patch)


# ----------------------------------------------------------------------------- unpaired patches

def test_unpaired_crops_lr_images_or_degrades_hr_ones():
    img = _coord_image(30, 30)
    ds = data.UnpairedPatches([img], 8, seed=4)
    batch = ds.sample_batch(2, 6)
    assert batch.shape == (6, 3, 8, 8) and batch.dtype == torch.float32
    for b in range(6):
        _locate(_u8(batch[b]), img, 8)
    assert torch.equal(batch, data.UnpairedPatches([img], 8, seed=4).sample_batch(2, 6))
    down = data.UnpairedPatches([img], 6, degrade=lambda hr, rng: hr[::3, ::3], scale=3, seed=4,
                                augment=False)
    batch = down.sample_batch(0, 4)
    assert batch.shape == (4, 3, 6, 6)
    for b in range(4):  # every pixel comes from the scale grid of a crop aligned to the grid
        assert np.all(_u8(batch[b])[..., :2].min(axis=(0, 1)) % 3 == 0)
    assert down[0].shape == (3, 6, 6)
    with pytest.raises(DatasetError, match="smaller than the 18x18 patch"):
        data.UnpairedPatches([np.zeros((17, 40, 3), np.uint8)], 6, degrade=lambda h, r: h[::3, ::3],
                             scale=3)


# ----------------------------------------------------------------------------- evaluation pairs

def test_eval_pairs_modcrop_bicubic_and_rounding():
    img = np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    [(name, lr, hr)] = list(data.eval_pairs({"x": img}, 4))
    assert name == "x" and hr.shape == (36, 48, 3) and lr.shape == (9, 12, 3)
    assert lr.dtype == hr.dtype == np.uint8
    np.testing.assert_array_equal(hr, img[:36, :48])
    expect = np.floor(np.clip(imresize(hr.astype(np.float32) / 255, 0.25), 0, 1).astype(np.float64)
                      * 255 + 0.5)
    np.testing.assert_array_equal(lr, expect.astype(np.uint8))


def test_eval_pairs_max_side_centre_crop():
    img = _coord_image(37, 50)
    [(_, lr, hr)] = list(data.eval_pairs([img], 4, max_side=22))
    assert hr.shape == (20, 20, 3) and lr.shape == (5, 5, 3)
    np.testing.assert_array_equal(hr, img[8:28, 14:34])  # mod-cropped 36x48, centred 20x20
    [(_, _, small)] = list(data.eval_pairs([_coord_image(12, 16)], 4, max_side=100))
    assert small.shape == (12, 16, 3)


def test_eval_pairs_too_small_and_custom_degrade():
    with pytest.raises(DatasetError, match="'image\\[1\\]' is 3x10, smaller than the scale factor 4"):
        data.eval_pairs([_coord_image(), np.zeros((3, 10, 3), np.uint8)], 4)
    pairs = list(data.eval_pairs([_coord_image(8, 8)], 2, degrade=lambda hr, rng: hr[::2, ::2] + 2.0))
    assert np.all(pairs[0][1] == 255)  # clamped before rounding
