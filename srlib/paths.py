"""Where srlib keeps files outside the repository: one cache root, two folders under it.

::

    <root>/models/    models trained by srlib.train.cached_train (notebooks and tests fill it)
    <root>/weights/   official pretrained files fetched by srlib.weights.fetch

``<root>`` is ``$SRLIB_CACHE`` when that variable is set (``~`` is expanded), else
``~/.cache/srlib``. Both folders follow the same root, so setting ``SRLIB_CACHE`` moves the whole
cache and ``make clean-cache`` (which removes these two folders) empties it. The ImageNet VGG19 and
AlexNet files are not here: torchvision and lpips read them from torch hub's own cache
(``torch.hub.get_dir()/checkpoints``), where a user puts them by hand.

The folders are computed at call time, never at import, so a test or a notebook can set
``SRLIB_CACHE`` after importing srlib.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SRLIB_CACHE"
MODELS_SUBDIR = "models"
WEIGHTS_SUBDIR = "weights"


def cache_root() -> Path:
    """``$SRLIB_CACHE`` (with ``~`` expanded) when set and not empty, else ``~/.cache/srlib``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "srlib"


def models_dir() -> Path:
    """``<cache root>/models``: where :func:`srlib.train.cached_train` keeps trained models."""
    return cache_root() / MODELS_SUBDIR


def weights_dir() -> Path:
    """``<cache root>/weights``: where :func:`srlib.weights.fetch` keeps official files."""
    return cache_root() / WEIGHTS_SUBDIR


__all__ = ["CACHE_ENV", "cache_root", "models_dir", "weights_dir"]
