"""Notebook 04: category-aware discriminator, semantic loss, categorical data, recipe, studies."""

import dataclasses

import numpy as np
import pytest
import torch

from srlib import data
from srlib.archs.category_disc import CategoryDiscriminator, MultiDiscriminator
from srlib.data_categories import (CATEGORIES, CategoryPatches, categories_for_profile,
                                   category_eval_pairs, category_images, split_sources)
from srlib.errors import DatasetError
from srlib.losses import literal_semantic_loss, semantic_loss
from srlib.recipes.semantic import (METHODS, SemanticConfig, build_discriminator, canonical,
                                    kappa_configs, semantic_step, train_semantic, warm_config)
from srlib.studies import semantic as st


# ----------------------------------------------------------------------------- discriminator
def test_category_disc_shapes():
    torch.manual_seed(0)
    D = CategoryDiscriminator(3, num_feat=4, num_stages=3).eval()  # eval: no power iteration
    x = torch.rand(5, 3, 32, 48)
    logits, feats = D(x, return_features=True)
    assert logits.shape == (5, 3)
    assert [tuple(f.shape) for f in feats] == [(5, 4, 16, 24), (5, 8, 8, 12), (5, 16, 4, 6)]
    assert D.feature_channels == [4, 8, 16]
    labels = torch.tensor([0, 2, 1, 1, 0])
    own = D(x, labels)
    assert own.shape == (5, 1)
    assert torch.allclose(own[:, 0], logits[torch.arange(5), labels])
    # settled spectral norms: every layer's weight has largest singular value ~1
    for m in D.modules():
        if hasattr(m, "weight_orig"):
            w = m.weight.reshape(m.weight.shape[0], -1)
            assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.05)


def test_category_disc_heads_share_trunk_and_pooling_is_linear():
    """The head of category k is row k of one linear map on the pooled last stage."""
    torch.manual_seed(1)
    D = CategoryDiscriminator(2, num_feat=4, num_stages=2, use_sn=False)
    x = torch.rand(3, 3, 16, 16)
    feats = D.features(x)
    pooled = feats[-1].mean(dim=(2, 3))
    expect = pooled @ D.heads.weight.T + D.heads.bias
    assert torch.allclose(D(x), expect, atol=1e-6)


def test_category_disc_bad_input():
    D = CategoryDiscriminator(3, num_feat=4, num_stages=3)
    with pytest.raises(ValueError, match="divisible"):
        D(torch.rand(1, 3, 20, 20))
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        D(torch.rand(2, 3, 16, 16), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="1-D tensor"):
        D(torch.rand(2, 3, 16, 16), torch.tensor([[0], [1]]))


def test_multi_disc_routes_each_image_to_its_own_network():
    torch.manual_seed(2)
    M = MultiDiscriminator(3, num_feat=4, num_stages=2).eval()
    x = torch.rand(4, 3, 16, 16)
    labels = torch.tensor([2, 0, 2, 1])
    logits, feats = M(x, labels, return_features=True)
    assert logits.shape == (4, 1)
    for i, k in enumerate(labels.tolist()):
        lk, fk = M.discs[k](x[i:i + 1], return_features=True)
        assert torch.allclose(logits[i], lk[0], atol=1e-6)
        assert all(torch.allclose(f[i], g[0], rtol=1e-4, atol=1e-5) for f, g in zip(feats, fk))
    assert M(x).shape == (4, 3)
    with pytest.raises(ValueError, match="labels"):
        M.features(x)


# ----------------------------------------------------------------------------- losses
def test_semantic_loss_zero_gradient_when_sr_equals_hr_and_only_through_sr():
    torch.manual_seed(3)
    D = CategoryDiscriminator(2, num_feat=4, num_stages=2)
    for p in D.parameters():
        p.requires_grad_(False)
    hr = torch.rand(2, 3, 16, 16, requires_grad=True)
    sr = hr.detach().clone().requires_grad_(True)
    loss = semantic_loss(D.features, sr, hr)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(sr.grad) == 0
    assert hr.grad is None  # the HR branch is a target: no gradient
    sr2 = (hr.detach() + 0.1 * torch.randn_like(hr)).requires_grad_(True)
    hr.grad = None
    loss2 = semantic_loss(D.features, sr2, hr)
    loss2.backward()
    assert loss2.item() > 0 and sr2.grad.abs().sum() > 0
    assert hr.grad is None


def test_semantic_loss_hand_computed():
    """mean |f(sr) - f(hr)| per layer, weighted: identity features on tiny tensors."""
    sr = torch.tensor([[[[1.0, 2.0]]]])
    hr = torch.tensor([[[[0.0, 4.0]]]])
    f = lambda x: [x, 2 * x]  # noqa: E731
    # layer 0: mean(|1|, |-2|) = 1.5; layer 1: mean(2, 4) = 3 -> 0.5 * 1.5 + 2 * 3 = 6.75
    assert semantic_loss(f, sr, hr, [0.5, 2.0]).item() == pytest.approx(6.75)


def test_literal_semantic_loss_is_the_discriminator_bce():
    x, y = torch.tensor([[0.3], [-1.2]]), torch.tensor([[2.0], [0.1]])
    expect = (np.mean([np.log1p(np.exp(0.3)), np.log1p(np.exp(-1.2))])
              + np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-0.1))]))
    assert literal_semantic_loss(x, y).item() == pytest.approx(expect, rel=1e-6)


# ----------------------------------------------------------------------------- data
def test_category_splits_do_not_overlap():
    src = split_sources(CATEGORIES, n_text=4)
    for cat in CATEGORIES:
        assert src[cat]["train"] and src[cat]["test"]
        assert not (src[cat]["train"] & src[cat]["test"]), cat
    # and the pixels: no test image of photos/textures equals (or is inside) a train image
    for cat in ("photos", "textures"):
        train = category_images(cat, "train")
        test = category_images(cat, "test")
        assert not set(train) & set(test) or cat == "textures"
        for name, img in test.items():
            for tname, timg in train.items():
                assert img.shape != timg.shape or not np.array_equal(img, timg), (name, tname)
    t_train = category_images("text", "train", n_text=3)
    t_test = category_images("text", "test", n_text=3)
    for a in t_train.values():
        for b in t_test.values():
            assert not np.array_equal(a, b)


def test_category_patches_balanced_and_pure():
    imgs = {c: category_images(c, "train", n_text=2) for c in CATEGORIES}
    cp = CategoryPatches(imgs, 4, 32, seed=5)
    lr, hr, labels = cp.sample_batch(7, 6)
    assert lr.shape == (6, 3, 8, 8) and hr.shape == (6, 3, 32, 32)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2]
    lr2, hr2, _ = cp.sample_batch(7, 6)
    assert torch.equal(hr, hr2) and torch.equal(lr, lr2)
    assert not torch.equal(hr, cp.sample_batch(8, 6)[1])


def test_faces_need_the_paper_data():
    assert "faces" not in categories_for_profile("standard")
    assert "faces" in categories_for_profile("paper")
    with pytest.raises(DatasetError, match="none found"):
        category_images("faces", "train", faces_dir="/nonexistent")
    with pytest.raises(DatasetError, match="unknown categories"):
        category_images("cats", "train")


def test_faces_come_from_the_data_root(tmp_path, monkeypatch):
    """Without a download the error names the command; with the (fake) LFW tree installed, the
    face category reads it, split by identity."""
    from srlib.dry_run import make_fake_tree

    monkeypatch.setenv("SRLIB_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="paper-profile.*download faces"):
        category_images("faces", "train")
    root = make_fake_tree(tmp_path / "fake")
    monkeypatch.setenv("SRLIB_DATA", str(root))
    train, test = category_images("faces", "train"), category_images("faces", "test")
    assert train and test and not set(train) & set(test)
    person = lambda k: k.rsplit("_", 1)[0]  # noqa: E731  (ids are <person>_<number>)
    assert not {person(k) for k in train} & {person(k) for k in test}


def test_eval_pairs_per_category():
    pairs = category_eval_pairs(CATEGORIES, 4, max_side=64, n_text=2)
    assert set(pairs) == set(CATEGORIES)
    assert len(pairs["text"]) == 2 and pairs["text"][0][2].shape == (data.TEXT_SIZE, data.TEXT_SIZE, 3)
    assert pairs["photos"][0][2].shape[:2] == (64, 64)


# ----------------------------------------------------------------------------- recipe
def tiny(method, **kw):
    values = dict(profile="smoke", method=method, num_feat=4, num_block=1, disc_feat=4, disc_stages=2,
                  feature_weights=(1.0, 1.0), warmup_steps=2, steps=2, batch_size=3, lr_patch=4,
                  n_text=2, percep_layers={"conv1_2": 1.0}, vgg_weights="random", precision="fp32")
    values.update(kw)
    return SemanticConfig(**values)


def small_images():
    return {c: {k: v[:64, :64] for k, v in list(category_images(c, "train", n_text=2).items())[:2]}
            for c in CATEGORIES}


@pytest.mark.parametrize("method", METHODS)
def test_recipe_trains_each_method(method, tmp_path):
    cfg = tiny(method)
    out = train_semantic(cfg, device="cpu", cache_dir=tmp_path, progress=False, images=small_images())
    assert out.model(torch.rand(1, 3, 4, 4)).shape == (1, 3, 16, 16)
    keys = set(out.history[-1])
    assert "l_g_pix" in keys
    if method == "edsr":
        assert "D" not in out.run.keys()
    else:
        assert "l_d" in keys and "D" in out.run.keys()
    if method == "semantic":
        assert "l_g_semantic" in keys
    if method == "vgg":
        assert "l_g_percep" in keys and "l_g_gan" in keys
    # the warm start is one shared cache entry for every method
    assert len([p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 2


def test_semantic_step_updates_g_then_d_and_d_is_frozen_in_g_step():
    from srlib.recipes.semantic import build_generator
    from srlib.train import Trainer

    cfg = tiny("semantic")
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    calls = []

    class T(Trainer):
        def optimize(self, loss, name):
            grads = {n: any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
                     for n, m in self.raw_models.items()}
            for m in self.raw_models.values():
                for p in m.parameters():
                    p.grad = None
            loss.backward(retain_graph=True)
            after = {n: any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
                     for n, m in self.raw_models.items()}
            calls.append((name, after))
            for m in self.raw_models.values():
                for p in m.parameters():
                    p.grad = None
            del grads

    tr = T({"G": G, "D": D}, {"G": torch.optim.SGD(G.parameters(), 0.1), "D": torch.optim.SGD(D.parameters(), 0.1)},
           lambda *a: None, device="cpu", progress=False, precision="fp32")
    batch = {"lr": torch.rand(3, 3, 4, 4), "hr": torch.rand(3, 3, 16, 16), "labels": torch.tensor([0, 1, 2])}
    out = semantic_step(tr, batch, 0, method="semantic", kappa=1.0, feature_weights=[1.0, 1.0])
    assert [c[0] for c in calls] == ["G", "D"]
    assert calls[0][1] == {"G": True, "D": False}  # D frozen in the G step
    assert calls[1][1] == {"G": False, "D": True}  # SR detached in the D step
    assert out["l_g_semantic"] > 0


def test_canonical_shares_runs_across_unused_fields():
    a = tiny("edsr", kappa=3.0, gan_weight=0.1)
    b = tiny("edsr", kappa=0.5)
    assert canonical(a) == canonical(b)
    s1, s2 = tiny("semantic", kappa=1.0), tiny("semantic", kappa=2.0)
    assert canonical(s1) != canonical(s2)
    assert canonical(tiny("semantic", percep_weight=5.0)) == canonical(s1)
    assert warm_config(s1) == warm_config(tiny("vgg")) and warm_config(s1).steps == s1.warmup_steps
    ks = kappa_configs(s1, [0, 1.0, 2.0])
    assert ks[0.0].method == "edsr" and ks[2.0].kappa == 2.0


def test_config_checks():
    with pytest.raises(ValueError, match="multiple"):
        tiny("semantic", batch_size=4)
    with pytest.raises(ValueError, match="one weight per stage"):
        tiny("semantic", feature_weights=(1.0,))
    with pytest.raises(ValueError, match="unknown method"):
        tiny("proposed")
    with pytest.raises(ValueError, match="divisible"):
        tiny("semantic", lr_patch=3, disc_stages=3, feature_weights=(1.0, 1.0, 1.0))
    for p in ("smoke", "standard", "paper"):
        for m in METHODS:
            SemanticConfig.for_profile(p, m)


# ----------------------------------------------------------------------------- studies
def test_score_images_on_identity_and_bicubic():
    pairs = category_eval_pairs(("photos",), 4, max_side=128, n_text=1)["photos"][:1]
    name, lr, hr = pairs[0]
    from srlib.recipes.evaluate import bicubic_upscale
    same = st.score_images([hr], pairs, 4)[0]
    bic = st.score_images([bicubic_upscale(lr, 4)], pairs, 4)[0]
    assert same["hf_ratio"] == pytest.approx(1.0) and same["ssim_y"] == pytest.approx(1.0)
    assert bic["hf_ratio"] < 0.7 and bic["psnr_y"] < 40
    assert same["niqe_patches"] == 1 and same["niqe"] is not None


def test_pca_2d_recovers_the_main_axis_and_ratio():
    rng = np.random.default_rng(1)
    t = rng.normal(size=200)
    x = np.stack([t, t, 0.01 * rng.normal(size=200)], 1)  # all variance along (1, 1, 0)
    coords, ratio = st.pca_2d(x)
    assert coords.shape == (200, 2)
    assert ratio[0] > 0.6
    assert abs(np.corrcoef(coords[:, 0], t)[0, 1]) > 0.99


def test_linear_probe_separable_and_chance():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], 40)
    x = rng.normal(size=(120, 5)) + 5 * np.eye(5)[y]
    assert st.linear_probe(x[::2], y[::2], x[1::2], y[1::2]) == 1.0
    noise = rng.normal(size=(120, 5))
    assert st.linear_probe(noise[::2], y[::2], noise[1::2], y[1::2]) < 0.7


def test_claims_status():
    per = []
    for i in range(6):
        per.append({"method": "semantic", "category": "c", "image": str(i), "psnr_y": 30 + i, "ssim_y": 0.9,
                    "niqe": 5.0 + 0.01 * i, "lpips": None, "hf_ratio": 1.0})
        per.append({"method": "edsr", "category": "c", "image": str(i), "psnr_y": 29 + i + 0.01 * (i % 2),
                    "ssim_y": 0.95, "niqe": 5.0, "lpips": None, "hf_ratio": 1.0})
    rows = {r["metric"]: r for r in st.claims(per, baselines=("edsr",))}
    assert rows["psnr_y"]["status"] == "held"        # +1 dB on every image, as the paper
    assert rows["ssim_y"]["status"] == "not held"    # lower on every image
    assert rows["lpips"]["status"] == "unavailable"
    assert rows["niqe"]["paper_metric"] == "pi"
    assert rows["niqe"]["status"] in ("not held", "not resolved")
