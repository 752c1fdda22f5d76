"""Tests of srlib.train: the generic trainer, checkpoints and exact resume, the model cache."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from srlib.errors import DatasetError, TrainingDivergedError, WeightsError
from srlib.train import Trainer, cache_key, cached_train, load_checkpoint, shard_batch


# ------------------------------------------------------------------ tiny pieces
class TinyNet(nn.Module):
    """Conv -> dropout -> conv: dropout makes the result depend on the torch RNG."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.drop = nn.Dropout(0.3)
        self.b = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return self.b(self.drop(F.relu(self.a(x))))


def batch_fn(step):
    g = torch.Generator().manual_seed(1000 + step)
    return {"lr": torch.rand(2, 3, 6, 6, generator=g), "hr": torch.rand(2, 3, 6, 6, generator=g)}


def noisy_step(tr, batch, step):
    """Uses all three RNGs (torch via dropout and randn, numpy, python) so resume must restore them."""
    net = tr.models["G"]
    noise = torch.randn_like(batch["lr"]) * 0.01 + float(np.random.rand()) * 1e-3 + random.random() * 1e-3
    loss = F.l1_loss(net(batch["lr"] + noise), batch["hr"])
    tr.optimize(loss, "G")
    return {"l1": loss.item()}


def make_trainer(tmp_path, name="ck.pt", **kw):
    torch.manual_seed(0)
    net = TinyNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return Trainer({"G": net}, {"G": opt}, kw.pop("step_fn", noisy_step), schedulers={"G": sched},
                   ema={"G": 0.9}, progress=False, checkpoint_path=tmp_path / name, seed=3, **kw)


def assert_same_state(a: Trainer, b: Trainer):
    for ma, mb in ((a.raw_models["G"], b.raw_models["G"]), (a.ema["G"], b.ema["G"])):
        for (ka, ta), (kb, tb) in zip(ma.state_dict().items(), mb.state_dict().items()):
            assert ka == kb and torch.equal(ta, tb), ka
    sa, sb = a.optimizers["G"].state_dict()["state"], b.optimizers["G"].state_dict()["state"]
    for i in sa:
        for k in sa[i]:
            assert torch.equal(sa[i][k], sb[i][k])
    assert a.schedulers["G"].get_last_lr() == b.schedulers["G"].get_last_lr()
    assert a.history == b.history and a.step == b.step


# ----------------------------------------------------------------- resume
def test_resume_is_bit_exact(tmp_path):
    straight = make_trainer(tmp_path, "straight.pt")
    straight.fit(batch_fn, 6)

    first = make_trainer(tmp_path, "split.pt")
    first.fit(batch_fn, 3)
    del first
    second = make_trainer(tmp_path, "split.pt")
    assert second.step == 0
    second.fit(batch_fn, 6, resume=True)
    assert_same_state(straight, second)
    assert [row["step"] for row in second.history] == [1, 2, 3, 4, 5, 6]


def test_without_rng_restore_the_run_differs(tmp_path):
    """Sanity check that the exactness test can fail: a fresh seed gives other dropout masks."""
    straight = make_trainer(tmp_path, "a.pt")
    straight.fit(batch_fn, 4)
    other = make_trainer(tmp_path, "b.pt")
    other.fit(batch_fn, 2)
    state = load_checkpoint(tmp_path / "b.pt")
    third = make_trainer(tmp_path, "c.pt")
    state["rng"] = [make_trainer(tmp_path, "d.pt").state_dict()["rng"][0]]  # a freshly seeded RNG
    third.load_state_dict(state)
    third.fit(batch_fn, 4)
    w1, w2 = straight.raw_models["G"].a.weight, third.raw_models["G"].a.weight
    assert not torch.equal(w1, w2)


def test_checkpoint_is_weights_only_and_periodic(tmp_path):
    tr = make_trainer(tmp_path, checkpoint_every=2)
    tr.fit(batch_fn, 3)
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert state["step"] == 3 and len(state["history"]) == 3
    assert tr.last_checkpoint == (str(tmp_path / "ck.pt"), 3)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_checkpoint_raises_weights_error(tmp_path):
    tr = make_trainer(tmp_path)
    tr.fit(batch_fn, 1)
    good = (tmp_path / "ck.pt").read_bytes()
    bad = tmp_path / "bad.pt"
    for content in (b"not a checkpoint at all", good[: len(good) // 2]):
        bad.write_bytes(content)
        with pytest.raises(WeightsError, match="corrupt"):
            make_trainer(tmp_path, "x.pt").resume(bad)
    torch.save({"weight": torch.zeros(2)}, bad)
    with pytest.raises(WeightsError, match="not a srlib training checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(WeightsError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_of_other_recipe_is_refused(tmp_path):
    make_trainer(tmp_path).fit(batch_fn, 1)
    net = TinyNet()
    other = Trainer({"H": net}, {"H": torch.optim.SGD(net.parameters(), lr=0.1)}, noisy_step,
                    progress=False)
    with pytest.raises(WeightsError, match="models"):
        other.resume(tmp_path / "ck.pt")


# --------------------------------------------------------------- update math
def one_weight(w0=1.0):
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(w0)
    return m


def square_step(scale):
    def step(tr, batch, i):
        loss = scale * (tr.models["G"].weight ** 2).sum()
        tr.optimize(loss, "G")
        return {"loss": loss}
    return step


def test_ema_matches_hand_computed_values():
    # w0 = 1, loss = w^2, SGD lr 0.1: w1 = 1 - 0.1 * 2 = 0.8, w2 = 0.8 - 0.16 = 0.64.
    # EMA decay 0.5: e1 = 0.5 * 1 + 0.5 * 0.8 = 0.9, e2 = 0.5 * 0.9 + 0.5 * 0.64 = 0.77.
    m = one_weight()
    tr = Trainer({"G": m}, {"G": torch.optim.SGD(m.parameters(), lr=0.1)}, square_step(1.0),
                 ema={"G": 0.5}, progress=False)
    tr.fit(lambda s: None, 1)
    assert tr.raw_models["G"].weight.item() == pytest.approx(0.8)
    assert tr.ema["G"].weight.item() == pytest.approx(0.9)
    tr.fit(lambda s: None, 2)
    assert tr.ema["G"].weight.item() == pytest.approx(0.77)
    assert not tr.ema["G"].training and not tr.ema["G"].weight.requires_grad


@pytest.mark.parametrize("clip, expected", [(None, 1.0 - 0.1 * 20.0), (1.0, 1.0 - 0.1 * 1.0)])
def test_grad_clip(clip, expected):
    # loss = 10 w^2 -> grad 20 at w = 1; clipped to norm 1 it is 1.
    m = one_weight()
    tr = Trainer({"G": m}, {"G": torch.optim.SGD(m.parameters(), lr=0.1)}, square_step(10.0),
                 grad_clip=clip, progress=False)
    tr.fit(lambda s: None, 1)
    assert m.weight.item() == pytest.approx(expected)


def test_scheduler_steps_after_optimizer():
    m = one_weight()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 2], gamma=0.1)
    tr = Trainer({"G": m}, {"G": opt}, square_step(1.0), schedulers={"G": sched}, progress=False)
    tr.fit(lambda s: None, 2)
    # step 1 at lr 0.1: w = 0.8; step 2 at lr 0.01: w = 0.8 - 0.01 * 1.6 = 0.784
    assert m.weight.item() == pytest.approx(0.784)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)


# ------------------------------------------------------------------ a GAN step
class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(F.leaky_relu(self.conv(x), 0.2).mean((2, 3)))


def snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


def same(model, snap):
    return all(torch.equal(p, s) for p, s in zip(model.parameters(), snap))


def test_gan_step_updates_only_the_network_being_optimized(tmp_path):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))
    D = TinyD()
    opts = {"G": torch.optim.Adam(G.parameters(), 1e-2), "D": torch.optim.Adam(D.parameters(), 1e-2)}
    seen = []

    def gan_step(tr, batch, step):
        g, d = tr.models["G"], tr.models["D"]
        fake = g(batch["lr"])
        g_before = snapshot(g)
        real_logit, fake_logit = d(batch["hr"]), d(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                  + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
        tr.optimize(d_loss, "D")
        d_after_d_step = snapshot(d)
        seen.append(("G unchanged by D step", same(g, g_before)))
        with tr.frozen("D"):
            logit = d(fake)
            g_loss = F.l1_loss(fake, batch["hr"]) + 1e-3 * F.binary_cross_entropy_with_logits(
                logit, torch.ones_like(logit))
            tr.optimize(g_loss, "G")
        seen.append(("D unchanged by G step", same(d, d_after_d_step)))
        seen.append(("no grad accumulated in frozen D", all(p.grad is None or not p.grad.abs().sum()
                                                           for p in d.parameters())
                     or same(d, d_after_d_step)))
        seen.append(("D trainable again", all(p.requires_grad for p in d.parameters())))
        seen.append(("G changed by G step", not same(g, g_before)))
        return {"d": d_loss, "g": g_loss}

    def gan_batch(step):
        gen = torch.Generator().manual_seed(step)
        return {"lr": torch.rand(2, 3, 4, 4, generator=gen), "hr": torch.rand(2, 3, 8, 8, generator=gen)}

    d0 = snapshot(D)
    tr = Trainer({"G": G, "D": D}, opts, gan_step, progress=False)
    tr.fit(gan_batch, 2)
    assert seen and all(ok for _, ok in seen), [what for what, ok in seen if not ok]
    assert not same(D, d0)
    frame = tr.history_frame()
    assert frame["step"] == [1, 2] and set(frame) == {"step", "d", "g"}


def test_frozen_blocks_gradients_into_the_frozen_net():
    m = one_weight()
    tr = Trainer({"G": m}, {"G": torch.optim.SGD(m.parameters(), lr=0.1)}, square_step(1.0), progress=False)
    x = torch.ones(1, 1, requires_grad=True)
    with tr.frozen("G"):
        tr.models["G"](x).sum().backward()
    assert m.weight.grad is None and x.grad is not None and m.weight.requires_grad


# ----------------------------------------------------------------- divergence
def test_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def step_fn(tr, batch, step):
        loss = F.l1_loss(tr.models["G"](batch["lr"]), batch["hr"])
        if step == 3:
            loss = loss * float("nan")
        tr.optimize(loss, "G")
        return {"pixel": loss.item()}

    tr = make_trainer(tmp_path, step_fn=step_fn, checkpoint_every=2)
    with pytest.raises(TrainingDivergedError, match=r"step 3.*ck\.pt \(step 2\) is kept") as info:
        tr.fit(batch_fn, 10)
    assert "optimize(..., 'G')" in str(info.value)
    assert load_checkpoint(tmp_path / "ck.pt")["step"] == 2
    assert tr.step == 3  # steps 0, 1, 2 done; step 3 stopped before changing a weight


def test_nan_weights_are_never_checkpointed(tmp_path):
    def step_fn(tr, batch, step):
        loss = F.l1_loss(tr.models["G"](batch["lr"]), batch["hr"])
        tr.optimize(loss, "G")
        if step == 2:  # finite loss, broken weights (e.g. an inf gradient that slipped through)
            with torch.no_grad():
                tr.raw_models["G"].b.bias.fill_(float("inf"))
        return {"pixel": loss.item()}

    tr = make_trainer(tmp_path, step_fn=step_fn, checkpoint_every=1)
    with pytest.raises(TrainingDivergedError, match=r"'b\.bias'.*step 2.*\(step 2\) is kept"):
        tr.fit(batch_fn, 5)
    state = load_checkpoint(tmp_path / "ck.pt")
    assert state["step"] == 2 and torch.isfinite(state["models"]["G"]["b.bias"]).all()


def test_nan_in_reported_loss_is_named(tmp_path):
    def step_fn(tr, batch, step):
        return {"pixel": 0.5, "gan": float("inf") if step == 1 else 0.1}

    m = one_weight()
    tr = Trainer({"G": m}, {}, step_fn, progress=False)
    with pytest.raises(TrainingDivergedError, match=r"loss 'gan' is inf at step 1.*No checkpoint"):
        tr.fit(lambda s: None, 3)


# ----------------------------------------------------------------- arguments
def test_bad_arguments_are_explained():
    m = one_weight()
    with pytest.raises(KeyError, match="no model of the same name"):
        Trainer({"G": m}, {"D": torch.optim.SGD(m.parameters(), lr=0.1)}, square_step(1.0))
    with pytest.raises(ValueError, match="decay"):
        Trainer({"G": m}, {}, square_step(1.0), ema={"G": 1.5})
    with pytest.raises(TypeError, match="nn.Module"):
        Trainer({"G": "generator"}, {}, square_step(1.0))
    tr = Trainer({"G": m}, {}, lambda tr, b, s: [1.0], progress=False)
    with pytest.raises(TypeError, match="dict"):
        tr.fit(lambda s: None, 1)


def test_shard_batch_takes_strided_rows():
    batch = {"lr": torch.arange(6).view(6, 1), "meta": [np.arange(6)], "k": 3}
    part = shard_batch(batch, 1, 3)
    assert part["lr"].flatten().tolist() == [1, 4]
    assert part["meta"][0].tolist() == [1, 4] and part["k"] == 3
    with pytest.raises(DatasetError, match="multiple of the world size"):
        shard_batch(torch.zeros(5, 2), 0, 2)


# ---------------------------------------------------------------------- cache
@dataclasses.dataclass
class RecipeConfig:
    profile: str = "smoke"
    steps: int = 2
    lr: float = 1e-3
    milestones: tuple = (1, 2)


def test_cached_train_trains_once_and_keys_on_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "cache"))
    calls = []

    def build_and_train(cfg):
        calls.append(cfg)
        m = one_weight()
        tr = Trainer({"G": m}, {"G": torch.optim.SGD(m.parameters(), lr=0.1)}, square_step(1.0),
                     ema={"G": 0.5}, progress=False)
        tr.fit(lambda s: None, cfg.steps)
        return tr

    cfg = RecipeConfig()
    first = cached_train(cfg, build_and_train)
    second = cached_train(RecipeConfig(), build_and_train)
    assert len(calls) == 1 and not first.hit and second.hit
    assert second["G"]["weight"].item() == pytest.approx(0.64)
    assert second["G_ema"]["weight"].item() == pytest.approx(0.77)
    assert second.history == first.history and second.history_frame()["step"] == [1, 2]
    entry = tmp_path / "cache" / "models" / first.key  # <SRLIB_CACHE>/models/<key>
    saved = json.loads((entry / "config.json").read_text())
    assert saved["config"]["steps"] == 2 and saved["type"] == "RecipeConfig"

    assert cache_key(dataclasses.replace(cfg, lr=2e-3)) != cache_key(cfg)
    assert cache_key(dataclasses.replace(cfg, milestones=(1, 3))) != cache_key(cfg)
    third = cached_train(dataclasses.replace(cfg, steps=1), build_and_train)
    assert len(calls) == 2 and third["G"]["weight"].item() == pytest.approx(0.8)
    assert sorted(p.name for p in (tmp_path / "cache" / "models").iterdir()) == sorted([first.key, third.key])


def test_cache_key_is_canonical_and_versioned(monkeypatch):
    import hashlib

    import srlib
    import srlib.train.cache as cache

    key = cache_key({"b": 1, "a": [1, 2]})
    expected = hashlib.sha256(
        ('{"code":"%s","config":{"a":[1,2],"b":1},"srlib":"%s","type":"dict"}'
         % (cache.code_fingerprint(), srlib.__version__)).encode()).hexdigest()
    assert key == expected == cache_key({"a": (1, 2), "b": 1})
    monkeypatch.setattr(cache, "__version__", "9.9.9")
    assert cache_key({"b": 1, "a": [1, 2]}) != key


def test_cache_key_changes_when_srlib_code_changes(monkeypatch):
    import srlib.train.cache as cache

    key = cache_key({"a": 1})
    assert len(cache.code_fingerprint()) == 64
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "0" * 64)
    assert cache_key({"a": 1}) != key
    with pytest.raises(TypeError, match="dataclass"):
        cache_key(42)


def test_corrupt_cache_entry_is_reported(tmp_path):
    cfg = RecipeConfig()
    entry = tmp_path / cache_key(cfg)
    entry.mkdir()
    (entry / "models.pt").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="delete the folder"):
        cached_train(cfg, lambda c: {"G": one_weight()}, cache_dir=tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="AMP is only used on CUDA")
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_on_cuda_trains_and_resumes(tmp_path, amp):
    tr = make_trainer(tmp_path, device="cuda", amp=amp)
    assert tr.amp_dtype == (torch.float16 if amp == "fp16" else torch.bfloat16)
    assert tr.scaler.is_enabled() == (amp == "fp16")
    tr.fit(batch_fn, 3)
    state = load_checkpoint(tmp_path / "ck.pt")
    assert state["step"] == 3 and (bool(state["scaler"]) == (amp == "fp16"))
    again = make_trainer(tmp_path, device="cuda", amp=amp)
    again.fit(batch_fn, 4, resume=True)
    assert again.step == 4 and all(torch.isfinite(p).all() for p in again.raw_models["G"].parameters())


def test_fp32_precision_on_cpu_has_no_autocast_and_no_scaler(tmp_path):
    tr = make_trainer(tmp_path, precision="fp32", device="cpu")
    assert tr.amp_dtype is None and not tr.scaler.is_enabled() and not tr.policy.channels_last
    old_switch = make_trainer(tmp_path, amp=False, device="cpu")
    assert old_switch.policy.requested == "fp32"
