"""Training recipes of notebook 02 (and of notebook 03, which reuses the PSNR recipe).

One file per family, each a frozen config dataclass with ``for_profile(profile)`` (smoke /
standard / paper values side by side), a step function for :class:`srlib.train.Trainer`, and a
``train_*`` function that trains through :func:`srlib.train.cached_train`, so a model is trained
once per config and loaded from the cache afterwards:

- :mod:`.psnr`: SRResNet (MSRResNet) or RRDBNet with an L1 / MSE / Charbonnier pixel loss;
- :mod:`.srgan`: SRGAN (Ledig et al. 2017): VGG content loss + 1e-3 adversarial loss;
- :mod:`.esrgan`: ESRGAN (Wang et al. 2018): RRDBNet, relativistic average GAN, perceptual loss
  before activation, L1 1e-2, GAN 5e-3;
- :mod:`.interpolate`: network interpolation between a PSNR and a GAN generator (ESRGAN Eq. 5);
- :mod:`.realworld`: notebook 06's bicubic specialist and Real-ESRGAN-data generalist;
- :mod:`.pdd`: PDD (Zhang et al. 2024): naive distillation, PDD static and PDD EMA;
- :mod:`.semantic`: notebook 04's semantic SR by self-distillation (Park 2024) and its baselines.
"""

from .csd import CSDConfig, csd_step, train_csd
from .esrgan import ESRGANConfig, esrgan_step, train_esrgan
from .interpolate import interpolate_networks, interpolate_state_dicts
from .pdd import PDDConfig, pdd_step, train_pdd
from .psnr import (PIXEL_LOSSES, PSNRConfig, Trained, build_generator, make_batch_fn, psnr_step,
                   train_psnr)
from .realworld import RealWorldConfig, train_realworld
from .semantic import SemanticConfig, semantic_step, train_semantic
from .srgan import SRGANConfig, build_discriminator, srgan_step, train_srgan

__all__ = [
    "PSNRConfig", "PIXEL_LOSSES", "Trained", "build_generator", "make_batch_fn", "psnr_step",
    "train_psnr",
    "SRGANConfig", "build_discriminator", "srgan_step", "train_srgan",
    "ESRGANConfig", "esrgan_step", "train_esrgan",
    "interpolate_networks", "interpolate_state_dicts",
    "CSDConfig", "csd_step", "train_csd",
    "RealWorldConfig", "train_realworld", "PDDConfig", "pdd_step", "train_pdd",
    "SemanticConfig", "semantic_step", "train_semantic",
]
