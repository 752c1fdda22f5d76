"""ESRGAN: RRDB generator, relativistic average discriminator, perceptual loss before activation.

Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks" (ECCV
Workshops). Starting from SRGAN, it changes three things:

1. the generator: Residual-in-Residual Dense Blocks without batch norm, residual scaling 0.2
   and a smaller initialisation (Sec. 3.1; :class:`srlib.archs.rrdbnet.RRDBNet`);
2. the discriminator is relativistic average (RaGAN, Jolicoeur-Martineau 2018; Sec. 3.2):
   ``D_Ra(x_r, x_f) = sigmoid(C(x_r) - E_xf[C(x_f)])`` (Eq. 1), with
   ``L_D = -E_xr[log D_Ra(x_r, x_f)] - E_xf[log(1 - D_Ra(x_f, x_r))]`` (Eq. 2) and the symmetric
   ``L_G^Ra = -E_xr[log(1 - D_Ra(x_r, x_f))] - E_xf[log D_Ra(x_f, x_r)]`` (Eq. 3), so the
   generator learns from both real and fake images;
3. the perceptual loss uses VGG19 features BEFORE the activation (``conv5_4``, Sec. 3.3):
   post-ReLU features are sparse and lose brightness information.

The generator loss (Eq. 4) is ``L_G = L_percep + lambda * L_G^Ra + eta * L_1`` with
``lambda = 5e-3`` and ``eta = 1e-2``. Training (Sec. 4.1 and BasicSR's ``train_ESRGAN_x4.yml``):
start from the PSNR-oriented RRDBNet; Adam (betas 0.9/0.99 in BasicSR) at lr 1e-4 for G and D,
halved at 50k, 100k, 200k and 300k of 400k iterations; batch 16, 128x128 HR patches; EMA of G
(decay 0.999) in BasicSR; the VGG-style discriminator with 64 base features. The losses are
computed as BasicSR's ``ESRGANModel`` does: each relativistic loss is the mean of its two BCE
terms (:func:`srlib.losses.relativistic_d_loss`), the perceptual criterion is L1.

At smoke/standard the perceptual tap is ``conv3_4`` (before ReLU), not ``conv5_4``: a CPU budget
choice, said in the notebook and its tables; the paper profile uses ``conv5_4``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from ..losses import PerceptualLoss, l1_loss, relativistic_d_loss, relativistic_g_loss
from ..profiles import Profile, get_profile
from ..train import Trainer
from .psnr import PSNRConfig, Trained
from .srgan import _check_gan_config, fit_gan


@dataclass(frozen=True)
class ESRGANConfig:
    """One ESRGAN fine-tuning run; ``psnr`` is the PSNR-oriented RRDBNet it starts from.

    Attributes:
        psnr: config of the RRDBNet PSNR model (trained first if needed, shared via the cache).
        percep_layers: VGG19 taps (``conv*`` = before activation) and their weights.
        percep_criterion: ``"l1"`` (BasicSR). percep_weight: 1.0.
        pixel_weight: eta = 1e-2 (Eq. 4). gan_weight: lambda = 5e-3 (Eq. 4).
        vgg_weights, disc_feat, steps, batch_size, lr_patch, lr_g, lr_d, betas, schedule,
        milestones, gamma, ema_decay, seed, precision: as in :class:`~srlib.recipes.srgan.SRGANConfig`.
    """

    psnr: PSNRConfig
    percep_layers: dict = field(default_factory=lambda: {"conv5_4": 1.0})
    percep_criterion: str = "l1"
    percep_weight: float = 1.0
    pixel_weight: float = 1e-2
    gan_weight: float = 5e-3
    vgg_weights: str = "auto"
    disc_feat: int = 64
    steps: int = 400_000
    batch_size: int = 16
    lr_patch: int = 32
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    schedule: str = "multistep"
    milestones: tuple[int, ...] = (50_000, 100_000, 200_000, 300_000)
    gamma: float = 0.5
    period: int = 0
    eta_min: float = 0.0
    ema_decay: float | None = 0.999
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self):
        _check_gan_config(self)
        if self.psnr.arch != "rrdbnet":
            raise ValueError(f"ESRGAN fine-tunes an RRDBNet; its psnr config has arch {self.psnr.arch!r}")

    @property
    def scale(self) -> int:
        return self.psnr.scale

    @classmethod
    def for_profile(cls, profile: str | Profile, *, psnr: PSNRConfig | None = None,
                    **overrides: Any) -> "ESRGANConfig":
        """ESRGAN at ``profile``.

        paper: BasicSR ``train_ESRGAN_x4.yml`` / ESRGAN Sec. 4.1 (RRDBNet 64x23, VGG
        discriminator 64, conv5_4, eta 1e-2, lambda 5e-3, lr 1e-4 halved at 50k/100k/200k/300k,
        400k iterations, EMA 0.999). standard: the small RRDBNet of the PSNR recipe, conv3_4, a
        32-wide discriminator, a short schedule with the same relative milestones (1/8, 1/4,
        1/2, 3/4 of the run) and no EMA (too few steps for a 0.999 average). smoke: a few steps.
        """
        p = get_profile(profile)
        if psnr is None:
            psnr = PSNRConfig.for_profile(p, arch="rrdbnet", pixel_loss="l1")
        steps = p.pick(smoke=4, standard=80, paper=400_000)
        values = dict(
            psnr=psnr,
            percep_layers=p.pick(smoke={"conv2_2": 1.0}, standard={"conv3_4": 1.0},
                                 paper={"conv5_4": 1.0}),
            disc_feat=p.pick(smoke=8, standard=32, paper=64),
            steps=steps,
            milestones=tuple(int(steps * f) for f in (0.125, 0.25, 0.5, 0.75)),
            batch_size=p.pick(smoke=2, standard=4, paper=16),
            lr_g=p.pick(smoke=1e-4, standard=2e-4, paper=1e-4),
            lr_d=p.pick(smoke=1e-4, standard=2e-4, paper=1e-4),
            lr_patch=32,  # HR 128: the size VGGStyleDiscriminator is built for
            ema_decay=p.pick(smoke=None, standard=None, paper=0.999),
            seed=psnr.seed,
        )
        values.update(overrides)
        return cls(**values)


def esrgan_step(trainer: Trainer, batch: dict, step: int, *, percep: nn.Module,
                pixel_weight: float, gan_weight: float) -> dict:
    """One ESRGAN iteration (BasicSR ``ESRGANModel.optimize_parameters``).

    G step, D frozen: ``L_percep + gan_weight * L_G^Ra + pixel_weight * L1`` (Eq. 4), with the
    real logits treated as constants. D step: ``L_D^Ra`` (Eq. 2) on the SR batch computed
    before the G update, detached, with the other side's mean a constant in each term (the
    default of :func:`srlib.losses.relativistic_d_loss`, as current BasicSR).
    """
    G, D = trainer.models["G"], trainer.models["D"]
    lr, hr = batch["lr"], batch["hr"]
    sr = G(lr)
    with trainer.frozen("D"):
        l_pix = pixel_weight * l1_loss(sr, hr)
        l_percep = percep.total(sr, hr)
        l_gan = gan_weight * relativistic_g_loss(D(hr).detach(), D(sr))
        trainer.optimize(l_pix + l_percep + l_gan, "G")
    real, fake = D(hr), D(sr.detach())
    l_d = relativistic_d_loss(real, fake)
    trainer.optimize(l_d, "D")
    return {"l_g_pix": l_pix.detach(), "l_g_percep": l_percep.detach(), "l_g_gan": l_gan.detach(),
            "l_d": l_d.detach(), "out_d_real": real.detach().mean(),
            "out_d_fake": fake.detach().mean()}


def train_esrgan(cfg: ESRGANConfig, *, device: str | torch.device = "auto", cache_dir=None,
                 progress: bool = True, images=None, init: Trained | None = None) -> Trained:
    """Fine-tune ESRGAN from its PSNR-oriented RRDBNet (trained first, or from the cache)."""
    def make_step(c: ESRGANConfig, dev):
        percep = PerceptualLoss(dict(c.percep_layers), weights=c.vgg_weights,
                                criterion=c.percep_criterion, perceptual_weight=c.percep_weight,
                                seed=c.seed).to(dev)
        return partial(esrgan_step, percep=percep, pixel_weight=c.pixel_weight,
                       gan_weight=c.gan_weight)

    return fit_gan(cfg, make_step, device=device, cache_dir=cache_dir, progress=progress,
                   images=images, init=init)
