"""Milliseconds per training step on CPU for the course's generators at the smoke and standard sizes.

One step = forward, L1 loss, backward, Adam update, run through :class:`srlib.train.Trainer`
(so its overhead is included). Sizes come from :mod:`srlib.profiles`: ``num_feat`` /
``num_block`` for the width and depth, ``batch_size`` and ``lr_patch`` for the batch
(smoke: 4 x 16x16 LR, standard: 16 x 24x24 LR), x4 upscaling. The "small RRDBNet" uses
``num_block`` RRDBs and ``num_grow_ch = num_feat // 2``.

    python benchmarks/train_step.py [--steps 5] [--warmup 2] [--threads N] [--profiles smoke standard]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from srlib.profiles import get_profile
from srlib.train import Trainer


def build(arch: str, num_feat: int, num_block: int, scale: int) -> nn.Module:
    """The srlib generator, or a local stand-in of the same shape if srlib.archs is missing."""
    try:
        from srlib import archs
    except ImportError:
        archs = None
    if archs is not None:
        if arch == "MSRResNet":
            return archs.MSRResNet(3, 3, num_feat=num_feat, num_block=num_block, upscale=scale)
        if arch == "EDSR":
            return archs.EDSR(3, 3, num_feat=num_feat, num_block=num_block, upscale=scale)
        return archs.RRDBNet(3, 3, scale=scale, num_feat=num_feat, num_block=num_block,
                             num_grow_ch=max(num_feat // 2, 8))
    body = [nn.Conv2d(3, num_feat, 3, padding=1)]
    for _ in range(num_block):
        body += [nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.ReLU(), nn.Conv2d(num_feat, num_feat, 3, padding=1)]
    for _ in range(scale // 2):
        body += [nn.Conv2d(num_feat, 4 * num_feat, 3, padding=1), nn.PixelShuffle(2)]
    return nn.Sequential(*body, nn.Conv2d(num_feat, 3, 3, padding=1))


def ms_per_step(arch: str, profile_name: str, steps: int, warmup: int) -> tuple[float, int]:
    p = get_profile(profile_name)
    torch.manual_seed(0)
    model = build(arch, p.num_feat, p.num_block, p.scale)
    lr = torch.rand(p.batch_size, 3, p.lr_patch, p.lr_patch)
    hr = torch.rand(p.batch_size, 3, p.hr_patch, p.hr_patch)

    def step_fn(tr, batch, step):
        loss = F.l1_loss(tr.models["G"](batch[0]), batch[1])
        tr.optimize(loss, "G")
        return {"l1": loss.item()}

    trainer = Trainer({"G": model}, {"G": torch.optim.Adam(model.parameters(), 1e-4)}, step_fn,
                      device="cpu", progress=False)
    trainer.fit(lambda s: (lr, hr), warmup)
    start = time.perf_counter()
    trainer.fit(lambda s: (lr, hr), warmup + steps)
    elapsed = time.perf_counter() - start
    return 1000 * elapsed / steps, sum(q.numel() for q in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--profiles", nargs="+", default=["smoke", "standard"])
    ap.add_argument("--archs", nargs="+", default=["MSRResNet", "EDSR", "RRDBNet"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, x4, L1 + Adam")
    print(f"{'profile':<9} {'arch':<10} {'feat x blocks':>13} {'batch x LR':>11} {'params':>10} {'ms/step':>9}")
    for name in args.profiles:
        p = get_profile(name)
        for arch in args.archs:
            ms, n = ms_per_step(arch, name, args.steps, args.warmup)
            print(f"{name:<9} {arch:<10} {f'{p.num_feat} x {p.num_block}':>13} "
                  f"{f'{p.batch_size} x {p.lr_patch}^2':>11} {n:>10,} {ms:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
