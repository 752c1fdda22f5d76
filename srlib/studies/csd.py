"""Measurements of notebook 05 (CSD): cost of models and of the negatives, and pictures.

- :func:`count_flops`: floating-point operations of one forward pass, counted by running a copy on
  the meta device under :class:`torch.utils.flop_counter.FlopCounterMode` (a convolution of ``Cin -> Cout``
  channels, ``k x k`` kernel, on ``H x W`` outputs counts ``2 * Cin * Cout * k * k * H * W``:
  one multiply and one add per weight and output pixel; biases, ReLUs and the pixel shuffle
  are not counted, as in the papers' FLOP tables).
- :func:`cpu_ms`: wall time of one batch-1 forward on the CPU, median of repeated runs.
- :func:`peak_memory`: the peak extra memory a function needs (CUDA: the allocator's peak;
  Linux CPU: the peak resident set size, reset through ``/proc/self/clear_refs``).
- :func:`negatives_cost`: time and peak memory of one CSD training step for each number of
  negatives ``K``; :func:`fit_line` fits ``cost = a + b K`` (the paper reports a cost that
  grows linearly with ``K``).
- :func:`plot_slices`: which weights the channel-split student uses, layer by layer.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

CLEAR_REFS = "/proc/self/clear_refs"
STATUS = "/proc/self/status"


# ------------------------------------------------------------------------------ model cost
def count_flops(model: nn.Module, lr_size: int | tuple[int, int] = 128, **forward_kwargs) -> int:
    """FLOPs of ``model(x, **forward_kwargs)`` for one ``3 x H x W`` LR image (batch 1).

    Counted on a copy of the model on the meta device: FLOPs depend on shapes only, so nothing
    is computed (a paper-size EDSR at 128 x 128 would take tens of seconds on a CPU)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    h, w = (lr_size, lr_size) if isinstance(lr_size, int) else lr_size
    p = next(model.parameters())
    meta = model if p.device.type == "meta" else copy.deepcopy(model).to("meta")
    x = torch.zeros(1, 3, h, w, device="meta", dtype=p.dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(x, **forward_kwargs)
    return int(counter.get_total_flops())


@torch.no_grad()
def cpu_ms(model: nn.Module, lr_size: int | tuple[int, int] = 128, *, repeats: int = 5,
           warmup: int = 1) -> dict:
    """Median wall time (ms) of one fp32 forward of a batch-1 LR image on the CPU.

    Returns ``{"cpu_ms", "runs_ms", "threads", "lr_size"}``. The model is moved to the CPU for
    the measurement and back afterwards. Times depend on the machine and on what else runs on
    it: report them with the thread count, and compare models measured in the same session.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0 (got {repeats}, {warmup})")
    h, w = (lr_size, lr_size) if isinstance(lr_size, int) else lr_size
    device = next(model.parameters()).device
    was_training = model.training
    model = model.cpu().eval()
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    try:
        for _ in range(warmup):
            model(x)
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            runs.append((time.perf_counter() - t0) * 1e3)
    finally:
        model.to(device).train(was_training)
    return {"cpu_ms": statistics.median(runs), "runs_ms": runs, "threads": torch.get_num_threads(),
            "lr_size": (h, w)}


# ---------------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int:
    with open(STATUS) as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{STATUS} has no {field} line")


def peak_memory_method(device: torch.device | str = "cpu") -> str | None:
    """How :func:`peak_memory` measures on ``device``, or ``None`` when it cannot here."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return "cuda max_memory_allocated"
    try:
        with open(CLEAR_REFS, "w") as fh:
            fh.write("5")
        _status_kb("VmHWM")
    except OSError:
        return None
    return "peak RSS (VmHWM after clear_refs)"


def _release_free_heap() -> None:
    """Give memory that the C allocator holds but no object uses back to the OS (glibc).

    Without it, memory freed by an earlier step stays resident, the next step reuses it, and its
    peak never rises above the resident size measured before it: a step would look free."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> tuple[object, int | None]:
    """Run ``fn()`` and return ``(result, peak extra bytes)`` above the memory in use before it.

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset, minus what was allocated before.
    CPU (Linux): the process's peak resident set size (``VmHWM``), reset to the current size
    through ``/proc/self/clear_refs`` before the call, minus the resident size before (after
    returning the allocator's free memory to the OS, so reused memory counts). This
    counts every allocation of the process (PyTorch's, NumPy's, the interpreter's) at page
    granularity: run the function once beforehand so one-time allocations are not counted.
    Where neither works (not Linux, no permission) the bytes are ``None``.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        before = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        out = fn()
        torch.cuda.synchronize(dev)
        return out, int(torch.cuda.max_memory_allocated(dev) - before)
    if peak_memory_method(dev) is None:
        return fn(), None
    gc.collect()
    _release_free_heap()
    with open(CLEAR_REFS, "w") as fh:
        fh.write("5")
    before = _status_kb("VmRSS")
    out = fn()
    peak = _status_kb("VmHWM")
    return out, max(0, peak - before) * 1024


# ------------------------------------------------------------------------- negatives cost
def negatives_cost(cfg, ks: Sequence[int], *, steps: int = 3, device="cpu", images=None,
                   progress: bool = False) -> list[dict]:
    """Time and peak memory of one CSD training step (paper Eq. 4) for each ``K`` in ``ks``.

    For each K: a fresh trainer of ``cfg`` with ``neg_num=K`` (the contrastive term on), one
    warm-up step, then ``steps`` timed steps (median) and the peak extra memory of one more
    step (:func:`peak_memory`). Returns rows ``{"K", "step_s", "step_runs_s", "peak_mb",
    "memory_method"}``. ``cfg`` must be a joint CSD config (``method="joint"``, ``lambda_cl > 0``).
    """
    from ..recipes.csd import build_trainer, replace, resolve_config
    from ..recipes.psnr import make_batch_fn

    if cfg.method != "joint" or cfg.lambda_cl <= 0:
        raise ValueError("negatives_cost measures the CSD step: give a config with method='joint' "
                         f"and lambda_cl > 0 (got method={cfg.method!r}, lambda_cl={cfg.lambda_cl})")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    dev = torch.device(device)
    rows = []
    for k in ks:
        c = resolve_config(replace(cfg, neg_num=int(k), steps=max(cfg.steps, steps + 2)))
        trainer = build_trainer(c, dev, progress=progress, log_every=1)
        batch_fn = make_batch_fn(c, images)
        trainer.fit(batch_fn, 1)  # warm-up: allocator, oneDNN kernels, lazy init
        runs = []
        for i in range(steps):
            t0 = time.perf_counter()
            trainer.fit(batch_fn, 2 + i)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            runs.append(time.perf_counter() - t0)
        _, peak = peak_memory(lambda: trainer.fit(batch_fn, 2 + steps), dev)
        rows.append({"K": int(k), "step_s": statistics.median(runs), "step_runs_s": runs,
                     "peak_mb": None if peak is None else peak / 2**20,
                     "memory_method": peak_memory_method(dev)})
        del trainer
        gc.collect()
    return rows


def fit_line(x: Sequence[float], y: Sequence[float]) -> dict:
    """Least-squares ``y = intercept + slope * x`` with ``r2`` (coefficient of determination)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < 2 or np.ptp(x) == 0:
        raise ValueError(f"fit_line needs at least two distinct x values and as many y values "
                         f"(got x={x.tolist()}, y={y.tolist()})")
    slope, intercept = np.polyfit(x, y, 1)
    pred = intercept + slope * x
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


# --------------------------------------------------------------------------- the results
def results_table(models, images, scale: int, *, device="cpu", timing_size: int = 128,
                  repeats: int = 5, progress: bool = True) -> tuple[list[dict], dict]:
    """Quality and cost of every model on whole test images: notebook 05's results table.

    ``models``: label -> ``(network or None for bicubic, width label)``; the networks are
    standalone (use :meth:`EDSR.extract` for a student). ``images``: name -> full-size HR.
    Returns ``(rows, outputs)``: rows ``model, width, params, flops, cpu_ms, psnr_y, ssim_y, niqe,
    hf_ratio, niqe_patches`` (means over the images; FLOPs and CPU time of one forward of a
    batch-1 ``timing_size`` x ``timing_size`` LR image, CPU time measured once per architecture,
    since it does not depend on the weights), with a final row for the HR ground truth's own
    NIQE; ``outputs``: label -> list of SR images (uint8), in the order of ``images``.
    """
    from .. import metrics
    from ..archs.arch_util import count_params
    from ..data import eval_pairs
    from ..niqe import load_niqe_model
    from ..niqe_eval import HR_LABEL, hf_ratio, niqe_with_count
    from ..recipes.evaluate import super_resolve

    pairs = list(eval_pairs(dict(images), scale, max_side=None))
    nm = load_niqe_model()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(models), desc="evaluating models on full-size test images", leave=False)
    rows, outputs, timed = [], {}, {}
    for label, (net, width) in models.items():
        outs = super_resolve(net, pairs, scale, device=device, tile=None)
        outputs[label] = outs
        res = metrics.evaluate_many([(o, hr) for o, (_, _, hr) in zip(outs, pairs)], crop_border=scale,
                                    metrics=("psnr", "ssim"))
        nq = [niqe_with_count(o, scale, nm) for o in outs]
        row = {"model": label, "width": width, "params": None, "flops": None, "cpu_ms": None,
               "psnr_y": res["psnr_y"], "ssim_y": res["ssim_y"],
               "niqe": float(np.mean([q for q, _ in nq])),
               "hf_ratio": float(np.mean([hf_ratio(o, hr, scale) for o, (_, _, hr) in zip(outs, pairs)])),
               "niqe_patches": "/".join(str(n) for _, n in nq)}
        if net is not None:
            arch = (type(net).__name__, getattr(net, "num_feat", None), len(getattr(net, "body", [])))
            row["params"] = count_params(net)
            row["flops"] = count_flops(net, timing_size)
            if arch not in timed:
                timed[arch] = cpu_ms(net, timing_size, repeats=repeats)["cpu_ms"]
            row["cpu_ms"] = timed[arch]
        rows.append(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    nq = [niqe_with_count(hr, scale, nm) for _, _, hr in pairs]
    rows.append({"model": HR_LABEL, "width": None, "params": None, "flops": None, "cpu_ms": None,
                 "psnr_y": None, "ssim_y": None, "niqe": float(np.mean([q for q, _ in nq])),
                 "hf_ratio": 1.0, "niqe_patches": "/".join(str(n) for _, n in nq)})
    return rows, outputs


# -------------------------------------------------------------------------------- pictures
def plot_slices(net, width: float, *, title: str | None = None):
    """Weight magnitudes of four layers of an EDSR with the student's slice outlined.

    Each panel is one convolution's ``|W|`` summed over the 3x3 kernel, output channels down,
    input channels across; the red rectangle is what the student of ``width`` uses (the leading
    rows and columns, all three image channels at the ends). Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    c = net.width_channels(width)
    up = net.upsample[0]
    r2 = net.upsample[1].upscale_factor ** 2
    panels = [
        ("conv_first (3 -> C)", net.conv_first.weight, (c, 3)),
        ("body[0].conv1 (C -> C)", net.body[0].conv1.weight if len(net.body) else net.conv_after_body.weight, (c, c)),
        (f"upsample conv (C -> {r2}C)", up.weight, (r2 * c, c)),
        ("conv_last (C -> 3)", net.conv_last.weight, (3, c)),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2), gridspec_kw={"width_ratios": [0.6, 1.6, 1.2, 1.6]})
    for ax, (name, w, (rows, cols)) in zip(axes, panels):
        mag = w.detach().float().abs().sum(dim=(2, 3)).cpu().numpy()
        ax.imshow(mag, cmap="viridis", aspect="auto", interpolation="nearest")
        ax.add_patch(Rectangle((-0.5, -0.5), cols, rows, fill=False, edgecolor="red", linewidth=2.2))
        ax.set_title(f"{name}\n{mag.shape[0]} x {mag.shape[1]}; student: {rows} x {cols}", fontsize=9)
        ax.set_xlabel("input channel")
        ax.set_ylabel("output channel")
    fig.suptitle(title or f"channel splitting: the width-{width:g} student uses the leading slice "
                          f"(red) of every weight; C = {net.num_feat}, student C = {c}", fontsize=10)
    fig.tight_layout()
    return fig


def env_threads() -> str:
    """``OMP_NUM_THREADS`` and torch's thread count, for the provenance of timings."""
    return f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads={torch.get_num_threads()}"
