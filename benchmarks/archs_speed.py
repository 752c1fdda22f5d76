"""Parameters and forward time of the course's generators (CPU by default).

    python benchmarks/archs_speed.py [--size 32] [--reps 3] [--device cpu]

Prints one line per model: parameters, and the median time of a forward pass on a
1 x 3 x size x size input with gradients off. The CSD rows compare the 256 x 32 EDSR
teacher with its 0.25-width student running on the leading slice of the same weights.
"""

import argparse
import statistics
import time

import torch

from srlib.archs import EDSR, MSRResNet, RRDBNet, count_params


def bench(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    x = torch.rand(1, 3, args.size, args.size, device=dev)
    teacher = EDSR(3, 3, num_feat=256, num_block=32, res_scale=0.1).to(dev).eval()
    rows = [
        ("RRDBNet 64x23 x4", RRDBNet(3, 3).to(dev).eval(), {}),
        ("MSRResNet 64x16 x4", MSRResNet().to(dev).eval(), {}),
        ("EDSR 64x16 x4", EDSR(3, 3).to(dev).eval(), {}),
        ("EDSR 256x32 x4 (CSD teacher)", teacher, {}),
        ("EDSR 256x32 x4 width 0.25 (CSD student)", teacher, {"width": 0.25}),
    ]
    print(f"device {dev}, input 1x3x{args.size}x{args.size}, median of {args.reps}")
    with torch.no_grad():
        for name, model, kw in rows:
            n = model.num_params(kw["width"]) if kw else count_params(model)
            t = bench(lambda: model(x, **kw), args.reps)
            print(f"{name:42s} {n:>12,d} params  {t * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
