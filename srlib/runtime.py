"""Run-time choices every notebook makes the same way: which device, which seed."""

from __future__ import annotations

import random

import numpy as np


def pick_device(name: str = "auto"):
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` as given.

    Asking for CUDA on a machine without it is an error that says so, not a silent fallback.
    """
    import torch

    key = str(name or "auto").strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here; "
                         "use device='auto' or 'cpu'")
    try:
        return torch.device(key)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'") from exc


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a notebook run is repeatable."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- precision
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions natively (oneDNN with AVX512-BF16 or AMX).

    Without native support bf16 autocast still works but is emulated and slower than fp32,
    so ``precision="auto"`` stays in fp32 there. ``SRLIB_CPU_BF16=0/1`` overrides the probe.
    """
    import os

    import torch

    forced = os.environ.get("SRLIB_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class PrecisionPolicy:
    """How a forward pass runs: autocast dtype and memory layout, chosen once per device.

    - CPU, ``"auto"``: channels_last models and batches, and bf16 autocast where the CPU has
      native bf16 (:func:`cpu_supports_bf16`), else fp32 (measured in
      ``benchmarks/train_step.py``: about 2-3x faster per training step on an AVX512-BF16 CPU).
    - CPU, ``"fp32"``: plain contiguous fp32, the reference. ``"bf16"``: bf16 autocast even
      where it is emulated. ``"fp16"`` is refused on CPU.
    - CUDA, ``"auto"``: AMP with bf16 where the GPU supports it, else fp16 (with a GradScaler
      in the trainer); ``"fp32"`` / ``"bf16"`` / ``"fp16"`` as asked.

    Only the forward pass changes: master weights, optimizer state, losses and metrics stay
    fp32 (srlib's losses cast their inputs to fp32; autocast keeps parameters in fp32).
    """

    def __init__(self, precision: str = "auto", device="cpu"):
        import torch

        key = str(precision if precision is not None else "auto").strip().lower()
        aliases = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
        key = aliases.get(key, key)
        if key not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        dev = device if isinstance(device, torch.device) else torch.device(str(device))
        self.requested, self.device_type = key, dev.type
        dtype = None
        if dev.type == "cuda":
            if key == "auto":
                dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            elif key != "fp32":
                dtype = torch.bfloat16 if key == "bf16" else torch.float16
            self.channels_last = False
        else:
            if key == "fp16":
                raise ValueError("precision 'fp16' needs CUDA; on CPU use 'auto', 'bf16' or 'fp32'")
            if key == "bf16" or (key == "auto" and cpu_supports_bf16()):
                dtype = torch.bfloat16
            self.channels_last = key != "fp32"
        self.dtype = dtype

    @property
    def name(self) -> str:
        """What actually runs, e.g. ``"cpu bf16 autocast, channels_last"`` (for provenance)."""
        dt = {None: "fp32"}.get(self.dtype, str(self.dtype).replace("torch.", "").replace("bfloat16", "bf16")
                                .replace("float16", "fp16"))
        parts = [f"{self.device_type} {dt}" + (" autocast" if self.dtype is not None else "")]
        if self.channels_last:
            parts.append("channels_last")
        return ", ".join(parts) + f" (precision={self.requested!r})"

    def autocast(self):
        """The autocast context of the forward pass (a no-op context for fp32)."""
        import contextlib

        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def model(self, module):
        """Put a module in this policy's memory layout (in place; returns it)."""
        import torch

        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        return module

    def batch(self, batch):
        """4-D float tensors of a (nested) batch in this policy's memory layout."""
        import torch

        if not self.channels_last:
            return batch
        if isinstance(batch, torch.Tensor):
            if batch.dim() == 4 and batch.is_floating_point():
                return batch.contiguous(memory_format=torch.channels_last)
            return batch
        if isinstance(batch, dict):
            return type(batch)({k: self.batch(v) for k, v in batch.items()})
        if isinstance(batch, (list, tuple)):
            items = [self.batch(v) for v in batch]
            return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
        return batch

    def __repr__(self) -> str:
        return f"PrecisionPolicy({self.name})"


def precision_policy(precision: str = "auto", device="cpu") -> PrecisionPolicy:
    """The :class:`PrecisionPolicy` for ``precision`` on ``device``."""
    return PrecisionPolicy(precision, device)


def autocast(device="cpu", precision: str = "auto"):
    """Autocast context for evaluation/inference code: ``with autocast(dev, cfg.precision): ...``."""
    return PrecisionPolicy(precision, device).autocast()
