"""The shipped course checkpoints of notebooks 02 and 03 (see :mod:`srlib.checkpoints`).

Four models, each the standard profile's recipe with a longer schedule (the notebook's own
schedule fits its 10-minute budget; these fit the checkpoint build's):

- ``srresnet_l1``: MSRResNet 32x4 with L1, the SRResNet of notebook 02 and the pixel-loss model
  that notebook 03 reuses;
- ``srgan``: SRGAN fine-tuned from ``srresnet_l1`` (VGG22 content loss + 1e-3 adversarial);
- ``rrdb_psnr``: the small PSNR-oriented RRDBNet;
- ``esrgan``: ESRGAN fine-tuned from ``rrdb_psnr`` (conv3_4 perceptual, L1 1e-2, RaGAN 5e-3).

The GAN models start from the shipped PSNR model (:func:`srlib.checkpoints.obtain`), so the
build trains each model once and a notebook that loads ``srgan`` never needs ``srresnet_l1``'s
training run.
"""

from __future__ import annotations

from ..checkpoints import CourseModel, obtain, register
from .esrgan import ESRGANConfig, train_esrgan
from .psnr import PSNRConfig, train_psnr
from .srgan import SRGANConfig, train_srgan

#: Steps of the shipped models (the notebook's own standard schedule in brackets):
#: SRResNet 1500 (350), RRDBNet 700 (600), SRGAN 350 (100), ESRGAN 120 (80). Sized so that the
#: whole build fits about an hour on 2 cores shared with other work; the GAN schedules are the
#: ones to lengthen first on a faster machine.
LONG_STEPS = {"srresnet_l1": 1500, "rrdb_psnr": 700, "srgan": 350, "esrgan": 120}


def _psnr_config(name: str, arch: str, profile: str) -> PSNRConfig:
    if profile != "standard":
        return PSNRConfig.for_profile(profile, arch=arch, pixel_loss="l1")
    steps = LONG_STEPS[name]
    return PSNRConfig.for_profile("standard", arch=arch, pixel_loss="l1", steps=steps, period=steps)


def srresnet_config(profile: str) -> PSNRConfig:
    return _psnr_config("srresnet_l1", "msrresnet", profile)


def rrdb_config(profile: str) -> PSNRConfig:
    return _psnr_config("rrdb_psnr", "rrdbnet", profile)


def srgan_config(profile: str) -> SRGANConfig:
    if profile != "standard":
        return SRGANConfig.for_profile(profile)
    steps = LONG_STEPS["srgan"]
    return SRGANConfig.for_profile("standard", psnr=srresnet_config("standard"), steps=steps,
                                   milestones=(int(steps * 0.7),))


def esrgan_config(profile: str) -> ESRGANConfig:
    if profile != "standard":
        return ESRGANConfig.for_profile(profile)
    steps = LONG_STEPS["esrgan"]
    return ESRGANConfig.for_profile("standard", psnr=rrdb_config("standard"), steps=steps,
                                    milestones=tuple(int(steps * f) for f in (0.125, 0.25, 0.5, 0.75)))


def _psnr_arch(cfg: PSNRConfig) -> tuple[str, dict]:
    if cfg.arch == "msrresnet":
        return "MSRResNet", {"num_in_ch": 3, "num_out_ch": 3, "num_feat": cfg.num_feat,
                             "num_block": cfg.num_block, "upscale": cfg.scale}
    return "RRDBNet", {"num_in_ch": 3, "num_out_ch": 3, "scale": cfg.scale, "num_feat": cfg.num_feat,
                       "num_block": cfg.num_block, "num_grow_ch": cfg.num_grow_ch}


def _train_psnr(cfg, *, device, cache_dir=None, progress=True, checkpoints_dir=None):
    return train_psnr(cfg, device=device, cache_dir=cache_dir, progress=progress)


def _gan_trainer(init_name: str, train_fn):
    def train(cfg, *, device, cache_dir=None, progress=True, checkpoints_dir=None):
        init = obtain(init_name, cfg.psnr, device=device, progress=progress, cache_dir=cache_dir,
                      directory=checkpoints_dir)
        return train_fn(cfg, device=device, cache_dir=cache_dir, progress=progress, init=init)
    return train


register(CourseModel("srresnet_l1", ("02", "03"), "SRResNet (MSRResNet 32x4), L1",
                     srresnet_config, _train_psnr, _psnr_arch))
register(CourseModel("srgan", ("02",), "SRGAN from srresnet_l1: VGG22 content + 1e-3 GAN",
                     srgan_config, _gan_trainer("srresnet_l1", train_srgan), lambda c: _psnr_arch(c.psnr)))
register(CourseModel("rrdb_psnr", ("02",), "RRDBNet (PSNR-oriented), L1",
                     rrdb_config, _train_psnr, _psnr_arch))
register(CourseModel("esrgan", ("02",), "ESRGAN from rrdb_psnr: conv3_4 percep + L1 1e-2 + RaGAN 5e-3",
                     esrgan_config, _gan_trainer("rrdb_psnr", train_esrgan), lambda c: _psnr_arch(c.psnr)))
