"""Speed of srlib's MATLAB-compatible ``imresize`` beside torch's antialiased bicubic interpolate.

Prints the median wall time (ms) over several runs for a 512x512 RGB float32 image, shrinking
by 4 and enlarging by 4, for: the torch path (tensor in), the numpy path (H x W x C array in),
and ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)``, plus the ratios.
The two resizes are not numerically identical (torch's kernel support and border handling
differ from MATLAB's); this only compares cost. Run: ``python benchmarks/imresize.py [--runs N]``.
"""

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from srlib.degradations import imresize


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up (weight tables, allocator)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    img = rng.random((args.size, args.size, 3), dtype=np.float32)
    dev = torch.device(args.device)
    t = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous().to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}, "
          f"image {args.size}x{args.size}x3 float32, median of {args.runs} runs")
    print(f"{'scale':>6} {'imresize torch':>15} {'imresize numpy':>15} {'interpolate':>12} "
          f"{'torch/interp':>13} {'numpy/interp':>13}")
    for scale in (0.25, 4.0):
        size = (int(args.size * scale), int(args.size * scale))

        def ours_torch():
            imresize(t, scale)
            sync()

        def theirs():
            F.interpolate(t, size=size, mode="bicubic", antialias=True, align_corners=False)
            sync()

        a = median_ms(ours_torch, args.runs)
        b = median_ms(lambda: imresize(img, scale), args.runs)
        c = median_ms(theirs, args.runs)
        print(f"{scale:>6} {a:>12.2f} ms {b:>12.2f} ms {c:>9.2f} ms {a / c:>12.2f}x {b / c:>12.2f}x")


if __name__ == "__main__":
    main()
