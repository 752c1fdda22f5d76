"""The forward-pass precision policy (srlib.runtime.PrecisionPolicy) and its use in the trainer.

bf16 autocast is the fast path on CPUs with native bf16; it must not cost quality. The check
that matters, fp32 vs bf16 training reaching the same PSNR, runs on a tiny size here (bf16 is
emulated, so slow, on CPUs without native support) and at the standard size in
``benchmarks/train_step.py --quality``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from srlib.runtime import PRECISIONS, PrecisionPolicy, cpu_supports_bf16
from srlib.train import Trainer


def test_names_and_errors():
    assert PRECISIONS == ("auto", "fp32", "bf16", "fp16")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        PrecisionPolicy("fp8", "cpu")
    with pytest.raises(ValueError, match="needs CUDA"):
        PrecisionPolicy("fp16", "cpu")
    assert PrecisionPolicy("float32", "cpu").requested == "fp32"


def test_cpu_auto_follows_the_bf16_probe(monkeypatch):
    monkeypatch.setenv("SRLIB_CPU_BF16", "1")
    on = PrecisionPolicy("auto", "cpu")
    assert on.dtype is torch.bfloat16 and on.channels_last and "bf16 autocast" in on.name
    monkeypatch.setenv("SRLIB_CPU_BF16", "0")
    off = PrecisionPolicy("auto", "cpu")
    assert off.dtype is None and off.channels_last and off.name.startswith("cpu fp32, channels_last")
    ref = PrecisionPolicy("fp32", "cpu")
    assert ref.dtype is None and not ref.channels_last
    monkeypatch.delenv("SRLIB_CPU_BF16")
    assert isinstance(cpu_supports_bf16(), bool)


def test_batch_layout_only_touches_4d_float_tensors():
    pol = PrecisionPolicy("bf16", "cpu")
    batch = {"lr": torch.rand(2, 3, 5, 7), "idx": torch.arange(4), "pair": (torch.rand(1, 3, 4, 4), 3)}
    out = pol.batch(batch)
    assert out["lr"].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out["lr"], batch["lr"]) and out["idx"] is batch["idx"]
    assert out["pair"][0].is_contiguous(memory_format=torch.channels_last) and out["pair"][1] == 3


def test_channels_last_fp32_is_the_same_math():
    """channels_last changes only the memory layout: outputs equal fp32 to float rounding."""
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 3, 3, padding=1))
    x = torch.rand(2, 3, 12, 12)
    ref = conv(x)
    pol = PrecisionPolicy("auto", "cpu") if not cpu_supports_bf16() else None
    if pol is None:
        pytest.skip("auto is bf16 on this CPU; the fp32 channels_last path is tested elsewhere")
    out = pol.model(conv)(pol.batch(x))
    assert torch.allclose(out, ref, atol=1e-6)


def _fit(precision: str, steps: int) -> tuple[float, Trainer]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    g = torch.Generator().manual_seed(1)
    hr = F.avg_pool2d(torch.rand(8, 3, 32, 32, generator=g), 3, 1, 1)  # smooth targets
    lr = F.avg_pool2d(hr, 2)

    def step_fn(tr, batch, step):
        sr = tr.models["G"](batch["lr"])
        loss = F.l1_loss(sr.float(), batch["hr"])
        tr.optimize(loss, "G")
        return {"l1": loss.detach()}

    tr = Trainer({"G": net}, {"G": torch.optim.Adam(net.parameters(), 3e-3)}, step_fn,
                 device="cpu", progress=False, precision=precision)
    tr.fit(lambda s: {"lr": lr[(s % 2) * 4:(s % 2) * 4 + 4], "hr": hr[(s % 2) * 4:(s % 2) * 4 + 4]},
           steps)
    with torch.no_grad():
        mse = F.mse_loss(net(lr).float(), hr).item()
    return 10 * math.log10(1.0 / mse), tr


def test_bf16_training_reaches_the_fp32_psnr():
    """Same recipe, same seed and steps: bf16 forward passes land within 0.3 dB of fp32.

    A real difference (a loss computed in bf16, master weights in bf16) costs several dB
    here; the tolerance is the spread of fp32 runs over seeds at this size.
    """
    p32, t32 = _fit("fp32", 60)
    p16, t16 = _fit("bf16", 60)
    assert t16.amp_dtype is torch.bfloat16
    assert all(p.dtype == torch.float32 for p in t16.raw_models["G"].parameters())  # master weights
    assert p32 > 20  # it learned something
    assert abs(p32 - p16) < 0.3, (p32, p16)


def test_trainer_records_data_and_step_time():
    _, tr = _fit("fp32", 3)
    assert tr.timing["steps"] == 3 and tr.timing["data"] >= 0 and tr.timing["step"] > 0


def test_precision_reaches_recipe_configs_and_is_checked():
    from srlib.recipes import PSNRConfig

    cfg = PSNRConfig.for_profile("smoke")
    assert cfg.precision == "auto"
    with pytest.raises(ValueError, match="unknown precision"):
        PSNRConfig.for_profile("smoke", precision="int8")
