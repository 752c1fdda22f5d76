"""Peak host memory of :func:`srlib.infer.upscale` with and without tiles.

Each case runs in a fresh Python process and reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
(peak resident memory, which counts torch's own allocator, unlike ``tracemalloc``). A baseline
case loads torch and the model and makes the input, but does not upscale, so the difference is
what inference itself costs. On CPU the "device" memory is host memory, so this shows the
tile bound directly; the assembled output (H*4 x W*4 x 3 uint8) is part of every case.

Default: a 1024 x 1024 input, x4, MSRResNet at the standard profile's width and depth
(32 features, 4 blocks; ``--num-feat 64 --num-block 16`` for the full model, which needs
well over 10 GB untiled), untiled vs ``--tile 128`` with 16 pixels of overlap.

    python benchmarks/infer_memory.py [--size 1024] [--tile 128] [--num-feat 32] [--num-block 4]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(case: str, size: int, tile: int, num_feat: int, num_block: int) -> None:
    import numpy as np
    import torch

    torch.manual_seed(0)
    try:
        from srlib.archs import MSRResNet
        model = MSRResNet(3, 3, num_feat=num_feat, num_block=num_block, upscale=4)
    except ImportError:  # srlib.archs not installed: a stand-in of the same shape
        from torch import nn
        layers = [nn.Conv2d(3, num_feat, 3, padding=1)]
        layers += [nn.Conv2d(num_feat, num_feat, 3, padding=1) for _ in range(2 * num_block)]
        layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, padding=1), nn.PixelShuffle(2)] * 1
        layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, padding=1), nn.PixelShuffle(2)]
        model = nn.Sequential(*layers, nn.Conv2d(num_feat, num_feat, 3, padding=1),
                              nn.Conv2d(num_feat, 3, 3, padding=1))
    from srlib.infer import upscale

    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    start = time.perf_counter()
    shape = None
    if case != "baseline":
        out = upscale(model, image, scale=4, tile=tile if case == "tiled" else None, device="cpu")
        shape = list(out.shape)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"case": case, "peak_mb": peak_mb, "seconds": seconds, "out": shape}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--num-feat", type=int, default=32)
    ap.add_argument("--num-block", type=int, default=4)
    ap.add_argument("--cases", nargs="+", default=["baseline", "tiled", "untiled"])
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.size, args.tile, args.num_feat, args.num_block)
        return
    print(f"input {args.size}x{args.size} x4, MSRResNet {args.num_feat} feat x {args.num_block} blocks, "
          f"CPU fp32; peak RSS per fresh process")
    print(f"{'case':<10} {'tile':>6} {'peak MB':>9} {'over baseline MB':>17} {'seconds':>8}")
    base = None
    for case in args.cases:
        cmd = [sys.executable, __file__, "--child", case, "--size", str(args.size), "--tile", str(args.tile),
               "--num-feat", str(args.num_feat), "--num-block", str(args.num_block)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{case:<10} failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        base = r["peak_mb"] if case == "baseline" else base
        extra = f"{r['peak_mb'] - base:>17.0f}" if base is not None else f"{'':>17}"
        tile = str(args.tile) if case == "tiled" else "-"
        print(f"{case:<10} {tile:>6} {r['peak_mb']:>9.0f} {extra} {r['seconds']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
