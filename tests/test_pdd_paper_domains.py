"""Notebook 06 at the paper profile: DF2K as the labelled source, a real camera as the target.

Everything runs on the fake data tree of :mod:`srlib.dry_run` (the manifests' layout, tiny images).
"""

import numpy as np
import pytest
import torch

from srlib import data_domains as dd
from srlib import dry_run
from srlib import paper_data as P
from srlib.errors import DatasetError
from srlib.recipes.pdd import PDDConfig, train_pdd
from srlib.recipes.psnr import build_generator
from srlib.recipes.realworld import RealWorldConfig, _SourceBatches


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    return dry_run.make_fake_tree(tmp_path_factory.mktemp("fake06"))


def test_paper_configs_name_the_papers_domains():
    spec, gen = (RealWorldConfig.for_profile("paper", r) for r in ("specialist", "generalist"))
    assert spec.source == gen.source == ("df2k",)
    assert RealWorldConfig.for_profile("standard", "specialist").source == dd.SOURCE_IMAGES
    assert PDDConfig.for_profile("paper", "ema").target == "realsr_canon"
    assert PDDConfig.for_profile("standard", "ema").target == dd.CAMERA == dd.default_target("smoke")
    with pytest.raises(DatasetError, match="unknown target domain 'realsr_sony'"):
        PDDConfig.for_profile("smoke", "ema", target="realsr_sony")
    with pytest.raises(ValueError, match="stands alone"):
        RealWorldConfig.for_profile("smoke", "specialist", source=("df2k", "coffee"))


def test_target_training_lr_is_the_cameras_train_split_lr_only(fake_root, monkeypatch):
    opened = []
    real_read = P.read_image
    monkeypatch.setattr(P, "read_image", lambda p: (opened.append(str(p)), real_read(p))[1])
    canon = dd.target_train_lr(4, "realsr_canon", root=fake_root)
    want = P.pair_paths("realsr", "canon_train", 4, fake_root)
    assert sorted(canon) == sorted(i for i, _, _ in want)
    assert opened and all(p.endswith("_LR4.png") for p in opened)  # no HR file is ever read
    for i, _, lp in want:
        assert np.array_equal(canon[i], real_read(lp))
    pana = dd.target_train_lr(4, "drealsr_panasonic", root=fake_root)
    assert list(pana) and all(k.startswith("panasonic") for k in pana)


def test_eval_pairs_of_a_real_target(fake_root):
    src = dd.eval_pairs("source", 4, target="realsr_nikon", root=fake_root)
    assert [n for n, _, _ in src] == [n for n, _, _ in P.load_pairs("div2k", "valid", 4, root=fake_root)]
    tgt = dd.eval_pairs("target", 4, target="realsr_nikon", root=fake_root, n=2)
    assert [n for n, _, _ in tgt] == [i for i, _, _ in P.pair_paths("realsr", "nikon_test", 4, fake_root)][:2]
    for _, lr, hr in tgt:
        assert hr.shape == (4 * lr.shape[0], 4 * lr.shape[1], 3)
    cropped = dd.eval_pairs("target", 4, 64, target="realsr_nikon", root=fake_root)
    assert all(hr.shape[:2] == (64, 64) and lr.shape[:2] == (16, 16) for _, lr, hr in cropped)
    # DRealSR test images are tiled (the fake LR are ~50 px: one tile each, the side kept whole)
    olympus = dd.eval_pairs("target", 4, target="drealsr_olympus", root=fake_root)
    assert olympus and all(n.startswith("olympus") and n.endswith("_r0c0") for n, _, _ in olympus)


def test_a_missing_target_names_the_download(tmp_path):
    with pytest.raises(DatasetError, match=r"python -m srlib.data download realsr"):
        dd.target_train_lr(4, "realsr_canon", root=tmp_path)
    with pytest.raises(DatasetError, match="Google Drive"):
        dd.eval_pairs("target", 4, target="drealsr_panasonic", root=tmp_path)


def test_tile_pairs_by_hand():
    lr = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    hr = np.repeat(np.repeat(lr, 2, 0), 2, 1)
    tiles = dd.tile_pairs([("x", lr, hr)], 2, 2)
    assert [n for n, _, _ in tiles] == ["x_r0c0", "x_r0c1", "x_r0c2", "x_r1c0", "x_r1c1", "x_r1c2"]
    name, tl, th = tiles[4]  # row 1, column 1: LR rows 2-3, columns 2-3
    assert np.array_equal(tl, lr[2:4, 2:4]) and np.array_equal(th, hr[4:8, 4:8])
    # a side shorter than the tile is kept whole
    [(_, whole, _)] = dd.tile_pairs([("y", lr[:3, :3], hr[:6, :6])], 2, 512)
    assert whole.shape == (3, 3, 3)


def test_centre_crop_pair_by_hand():
    lr = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    hr = np.repeat(np.repeat(lr, 4, 0), 4, 1)
    _, cl, ch = dd.centre_crop_pair(("x", lr, hr), 4, 17)  # 17 -> 16 HR px -> 4 LR px
    assert np.array_equal(cl, lr[1:5, 2:6]) and np.array_equal(ch, hr[4:20, 8:24])
    assert dd.centre_crop_pair(("x", lr, hr), 4, None)[1] is lr


def test_hr_batch_is_the_crop_sample_batch_degrades(fake_root):
    fp = P.paper_hr_patches("df2k", 4, 64, seed=5, root=fake_root)
    hr_only = fp.sample_hr_batch(3, 4)
    _, hr = fp.sample_batch(3, 4)
    assert hr_only.shape == (4, 3, 64, 64) and torch.equal(hr_only, hr)
    with pytest.raises(DatasetError, match="HR-only sampler"):
        P.paper_patches("df2k", 4, 64, root=fake_root).sample_hr_batch(0, 1)


def test_source_batches_and_mixed_batches_read_df2k(fake_root, monkeypatch):
    monkeypatch.setenv("SRLIB_DATA", str(fake_root))
    spec = RealWorldConfig.for_profile("smoke", "specialist", source=("df2k",))
    gen = RealWorldConfig.for_profile("smoke", "generalist", source=("df2k",))
    b = _SourceBatches(spec, 12, 2, seed=0)(0)
    assert b["lr"].shape == (2, 3, 12, 12) and b["hr"].shape == (2, 3, 48, 48)
    g0, g0_again = _SourceBatches(gen, 12, 2, seed=0)(0), _SourceBatches(gen, 12, 2, seed=0)(0)
    assert g0["lr"].shape == (2, 3, 12, 12) and torch.equal(g0["lr"], g0_again["lr"])
    src = dd.source_patches(("df2k",), 4, 12, seed=1)
    mb = dd.MixedBatches(src, dd.target_train_lr(4, "realsr_canon"), scale=4, lr_patch=12, batch_size=2, seed=1)
    batch = mb(0)
    assert sorted(batch) == ["hr_s", "lr_s", "lr_t"] and batch["lr_t"].shape == (2, 3, 12, 12)
    assert torch.equal(batch["lr_s"], src.sample_batch(0, 2)[0])
    with pytest.raises(DatasetError, match="neither a labelled source photo"):
        dd.source_patches(("nonexistent",), 4, 12)


def test_pdd_trains_on_df2k_and_realsr(fake_root, monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_DATA", str(fake_root))
    g = RealWorldConfig.for_profile("smoke", "generalist", source=("df2k",), usm_hr=False)
    s = RealWorldConfig.for_profile("smoke", "specialist", source=("df2k",))
    cfg = PDDConfig.for_profile("smoke", "static", generalist=g, specialist=s, target="realsr_canon",
                                steps=2, d_init_steps=0, batch_size=1, lr_patch=8,
                                percep_layers={"conv1_2": 0.1}, inter_layers={"conv2_1": 1.0},
                                intra_layers={"conv1_2": 1.0}, disc_feat=4, vgg_weights="random",
                                precision="fp32")
    torch.manual_seed(0)
    G, S = build_generator(g.esrgan.psnr), build_generator(s.esrgan.psnr)
    out = train_pdd(cfg, generalist=G, specialist=S, device="cpu", cache_dir=tmp_path, progress=False)
    assert out.history[-1]["step"] == 2 and "l_inter" in out.history[-1]
