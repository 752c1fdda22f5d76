"""Milliseconds per training step of every recipe, fp32 against the auto precision policy.

Each step is the recipe's own step function (SRResNet L1, SRGAN, ESRGAN, and CSD / PDD when their
recipes are present) run through :class:`srlib.train.Trainer` at the standard profile's sizes, so
the trainer's overhead and the real losses (VGG perceptual, discriminators) are included. Columns:

- ``fp32``: ``precision="fp32"`` (contiguous fp32, the reference);
- ``auto``: ``precision="auto"`` (channels_last, plus bf16 autocast where the CPU has native
  bf16; see :class:`srlib.runtime.PrecisionPolicy`);
- ``bf16``: ``precision="bf16"`` forced, only with ``--bf16`` (emulated and very slow on CPUs
  without native bf16);
- ``data %``: the share of a step spent making the batch (patch sampling and degradation), the
  number that says whether the data path keeps up.

``--quality N`` also trains the standard SRResNet for N steps in fp32 and in auto and prints the
held-out PSNR-Y of both (the course's numbers come from the auto policy).

    python benchmarks/train_step.py [--steps 6] [--warmup 2] [--recipes srresnet srgan esrgan] [--quality 400]

Timings are only meaningful on an otherwise idle machine; the script prints the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return "unknown"
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in text.splitlines() if l.startswith("flags")), [])
    keep = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    return f"{model}; {' '.join(keep)}"


def _recipes():
    """name -> (build_trainer(precision) -> Trainer, batch_fn)."""
    from functools import partial

    from srlib.losses import PerceptualLoss
    from srlib.recipes import ESRGANConfig, PSNRConfig, SRGANConfig, build_discriminator, build_generator
    from srlib.recipes.esrgan import esrgan_step
    from srlib.recipes.psnr import make_batch_fn, psnr_step
    from srlib.recipes.srgan import _data_view, srgan_step
    from srlib.train import Trainer

    def psnr(arch):
        cfg = PSNRConfig.for_profile("standard", arch=arch)

        def trainer(precision):
            torch.manual_seed(0)
            G = build_generator(cfg)
            return Trainer({"G": G}, {"G": torch.optim.Adam(G.parameters(), 1e-4)},
                           partial(psnr_step, pixel_loss="l1"), device="cpu", progress=False,
                           precision=precision)
        return trainer, make_batch_fn(cfg)

    def gan(kind):
        cfg = (SRGANConfig if kind == "srgan" else ESRGANConfig).for_profile("standard", vgg_weights="random")

        def trainer(precision):
            torch.manual_seed(0)
            G, D = build_generator(cfg.psnr), build_discriminator(cfg)
            if kind == "srgan":
                loss = PerceptualLoss(dict(cfg.content_layers), weights="random", criterion="l2")
                step = partial(srgan_step, content=loss, content_weight=cfg.content_weight,
                               gan_weight=cfg.gan_weight)
            else:
                loss = PerceptualLoss(dict(cfg.percep_layers), weights="random", criterion="l1")
                step = partial(esrgan_step, percep=loss, pixel_weight=cfg.pixel_weight,
                               gan_weight=cfg.gan_weight)
            from srlib.runtime import PrecisionPolicy
            PrecisionPolicy(precision, "cpu").model(loss)
            return Trainer({"G": G, "D": D}, {"G": torch.optim.Adam(G.parameters(), 1e-4),
                                              "D": torch.optim.Adam(D.parameters(), 1e-4)},
                           step, device="cpu", progress=False, precision=precision)
        return trainer, make_batch_fn(_data_view(cfg))

    out = {"srresnet": lambda: psnr("msrresnet"), "rrdb": lambda: psnr("rrdbnet"),
           "srgan": lambda: gan("srgan"), "esrgan": lambda: gan("esrgan")}
    for module in ("csd", "pdd"):
        try:
            mod = __import__(f"srlib.recipes.{module}", fromlist=["benchmark_step"])
        except ImportError:
            continue
        if hasattr(mod, "benchmark_step"):  # (precision) -> (Trainer, batch_fn) at standard size
            out[module] = (lambda m: (lambda: (lambda p: m.benchmark_step(p)[0], m.benchmark_step("fp32")[1])))(mod)
    return out


def time_steps(trainer, batch_fn, steps: int, warmup: int) -> tuple[float, float]:
    """Median ms per step and the mean share of it spent in batch_fn."""
    trainer.fit(batch_fn, warmup)
    per_step, shares = [], []
    for _ in range(steps):
        t0 = trainer.timing["data"], trainer.timing["step"]
        start = time.perf_counter()
        trainer.fit(batch_fn, trainer.step + 1)
        per_step.append(time.perf_counter() - start)
        data = trainer.timing["data"] - t0[0]
        shares.append(data / max(per_step[-1], 1e-9))
    return 1000 * statistics.median(per_step), 100 * statistics.mean(shares)


def quality(steps: int) -> None:
    from srlib import data
    from srlib.recipes import PSNRConfig, train_psnr
    from srlib.recipes.evaluate import score, super_resolve

    pairs = list(data.eval_pairs(data.load_images("photos", "test"), 4, max_side=256))
    print(f"\nquality: standard SRResNet, {steps} steps, same seed; held-out PSNR-Y (x4, 4-px border, Y)")
    for precision in ("fp32", "auto"):
        cfg = PSNRConfig.for_profile("standard", steps=steps, period=steps, precision=precision)
        start = time.perf_counter()
        t = train_psnr(cfg, progress=False, cache_dir=f"/tmp/srlib-bench-{os.getpid()}")
        res = score(super_resolve(t.model, pairs, 4), pairs, 4, metric_names=("psnr", "ssim"))
        print(f"  {precision:5s} PSNR-Y {res['psnr_y']:.3f} dB  SSIM-Y {res['ssim_y']:.4f}  "
              f"({time.perf_counter() - start:.0f} s incl. evaluation)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--recipes", nargs="+", default=None)
    ap.add_argument("--bf16", action="store_true", help="also time forced bf16")
    ap.add_argument("--quality", type=int, default=0, metavar="STEPS")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from srlib.runtime import PrecisionPolicy, cpu_supports_bf16

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CPU: {cpu_flags()}")
    print(f"native bf16: {cpu_supports_bf16()}; auto = {PrecisionPolicy('auto', 'cpu').name}; "
          f"load average {os.getloadavg()[0]:.2f}")
    recipes = _recipes()
    names = args.recipes or list(recipes)
    cols = ["fp32", "auto"] + (["bf16"] if args.bf16 else [])
    print(f"\n{'recipe step (standard size)':<28}" + "".join(f"{c + ' ms':>10}" for c in cols)
          + f"{'speed-up':>10}{'data %':>8}")
    for name in names:
        make, batch_fn = recipes[name]()
        ms, share = {}, 0.0
        for c in cols:
            ms[c], s = time_steps(make(c), batch_fn, args.steps, args.warmup)
            share = s if c == "auto" else share
        print(f"{name:<28}" + "".join(f"{ms[c]:>10.0f}" for c in cols)
              + f"{ms['fp32'] / ms['auto']:>9.2f}x{share:>7.1f}%", flush=True)
    if args.quality:
        quality(args.quality)


if __name__ == "__main__":
    main()
