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
