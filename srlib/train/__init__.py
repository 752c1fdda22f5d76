"""Training machinery shared by every recipe of the course.

- :class:`Trainer` (``trainer.py``): one loop for GAN, PDD and CSD steps: several models and
  optimizers, EMA, gradient clipping, NaN detection, tqdm progress with live losses, loss
  history, atomic checkpoints with exact resume, AMP on CUDA, DDP under ``torchrun``.
- :func:`cached_train` (``cache.py``): trained models cached by the recipe's config, so a
  notebook loads a prerequisite model instead of training it again.
- ``distributed.py``: how ``torchrun`` processes join and split each batch.

The recipes themselves (SRGAN, ESRGAN, CSD, PDD, ...) live with their notebooks' modules.
"""

from .cache import CachedRun, cache_key, cached_train, default_cache_dir  # noqa: F401
from .distributed import cleanup_distributed, distributed_env, shard_batch  # noqa: F401
from .trainer import Trainer, atomic_torch_save, load_checkpoint  # noqa: F401
