"""SRGAN: a VGG content loss plus an adversarial loss, fine-tuned from the PSNR model.

Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network" (CVPR). The generator minimises the perceptual loss of their Eq. 3,

    l_SR = l_X + 1e-3 * l_Gen,

- content loss ``l_X = l_VGG/i,j`` (Eq. 5): the mean squared distance between VGG19 feature
  maps ``phi_i,j`` of the SR and HR images, where ``phi_i,j`` is the j-th convolution AFTER its
  activation, before the i-th max-pool. "SRGAN-VGG54" uses ``relu5_4``; the paper rescales the
  VGG loss by about 1/12.75 to bring it to the scale of the MSE loss (Sec. 3.2);
- adversarial loss ``l_Gen = sum -log D(G(x_LR))`` (Eq. 6), the non-saturating form;

while the discriminator D (a VGG-style classifier of 96x96 patches, Fig. 4, LeakyReLU 0.2,
strided convs, BN) minimises the usual binary cross-entropy, the min-max problem of Eq. 2.
SRGAN is initialised with the MSE-trained SRResNet "to avoid undesired local optima" and
trained for 1e5 updates at lr 1e-4 and 1e5 more at 1e-5 (Adam, beta1 = 0.9, batch 16).

Differences from the paper, all from BasicSR (the reference implementation this course follows
for architectures): the generator is MSRResNet (no batch norm), and the discriminator is
BasicSR's ``VGGStyleDiscriminator`` (built for 128x128 inputs, so the HR patches are 128x128,
as in BasicSR's SRGAN option files). At smoke/standard the VGG tap is ``relu2_2`` ("SRGAN-VGG22",
the paper's other content loss, Sec. 3.4) to fit a CPU budget; the paper profile uses ``relu5_4``.

Each step follows BasicSR's ``SRGANModel``: first the G step through a frozen D, then the D step
on the detached SR batch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from ..losses import PerceptualLoss, d_loss, g_loss, l1_loss
from ..profiles import Profile, get_profile
from ..runtime import pick_device
from ..train import Trainer, cached_train
from .psnr import (PSNRConfig, Trained, _check_schedule, generator_state, load_generator,
                   make_batch_fn, make_scheduler, train_psnr)

#: SRGAN Sec. 3.2: VGG losses rescaled by about 1/12.75 to be comparable with the MSE loss.
SRGAN_VGG_RESCALE = 1.0 / 12.75


@dataclass(frozen=True)
class SRGANConfig:
    """One SRGAN fine-tuning run; ``psnr`` is the config of the model it starts from.

    Attributes:
        psnr: the PSNR-oriented SRResNet this run is initialised from (trained first if needed;
            its cache entry is shared with every other user of that config).
        content_layers: VGG19 taps and weights of the content loss (``relu*``: after activation).
        content_criterion: ``"l2"`` (SRGAN Eq. 5: squared error) or ``"l1"``.
        content_weight: multiplier of the content loss (1/12.75 in the paper).
        gan_weight: ``1e-3`` (SRGAN Eq. 3). pixel_weight: an optional extra pixel L1 term (0
            in the paper).
        vgg_weights: ``"imagenet"``, ``"random"`` or a path; ``"auto"`` is resolved when training
            so that the cache never mixes models trained on different features.
        disc_feat: base width of the VGG-style discriminator (64 in the paper).
        lr_g, lr_d, betas, milestones, gamma, steps: Adam and MultiStep schedule of both nets.
        batch_size, lr_patch: as in :class:`~srlib.recipes.psnr.PSNRConfig` (HR = lr_patch*scale,
            which must be 128 or 256 for the discriminator).
        ema_decay: EMA of G (``None``: none).
        precision: forward-pass policy of both networks (see :class:`~srlib.recipes.psnr.PSNRConfig`).
    """

    psnr: PSNRConfig
    content_layers: dict = field(default_factory=lambda: {"relu5_4": 1.0})
    content_criterion: str = "l2"
    content_weight: float = SRGAN_VGG_RESCALE
    gan_weight: float = 1e-3
    pixel_weight: float = 0.0
    vgg_weights: str = "auto"
    disc_feat: int = 64
    steps: int = 200_000
    batch_size: int = 16
    lr_patch: int = 32
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "multistep"
    milestones: tuple[int, ...] = (100_000,)
    gamma: float = 0.1
    period: int = 0
    eta_min: float = 0.0
    ema_decay: float | None = None
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self):
        _check_gan_config(self)
        if self.psnr.arch != "msrresnet":
            raise ValueError(f"SRGAN fine-tunes an SRResNet; its psnr config has arch {self.psnr.arch!r}")

    @property
    def scale(self) -> int:
        return self.psnr.scale

    @classmethod
    def for_profile(cls, profile: str | Profile, *, psnr: PSNRConfig | None = None,
                    **overrides: Any) -> "SRGANConfig":
        """SRGAN at ``profile``.

        paper: Ledig et al. Sec. 3.2 (VGG54 content loss / 12.75, adversarial 1e-3, 1e5 + 1e5
        updates at lr 1e-4 then 1e-5, Adam beta1 0.9, batch 16), initialised from SRResNet-MSE.
        standard: VGG22 content loss, a 32-wide discriminator, a short schedule starting from
        the L1 SRResNet that notebooks 02 and 03 share; the lr drops 10x for the last 30%.
        smoke: a few steps of everything.
        """
        p = get_profile(profile)
        if psnr is None:
            psnr = PSNRConfig.for_profile(p, arch="msrresnet",
                                          pixel_loss=p.pick(smoke="l1", standard="l1", paper="mse"))
        steps = p.pick(smoke=4, standard=100, paper=200_000)
        values = dict(
            psnr=psnr,
            content_layers=p.pick(smoke={"relu2_2": 1.0}, standard={"relu2_2": 1.0},
                                  paper={"relu5_4": 1.0}),
            # Sec. 3.2: the 1/12.75 factor brings the ImageNet VGG54 loss to the scale of the
            # MSE loss; the shallower VGG22 loss already is on that scale, so it is not rescaled.
            content_weight=p.pick(smoke=1.0, standard=1.0, paper=SRGAN_VGG_RESCALE),
            disc_feat=p.pick(smoke=8, standard=32, paper=64),
            steps=steps,
            milestones=(int(steps * 0.7),) if p.name != "paper" else (100_000,),
            batch_size=p.pick(smoke=2, standard=4, paper=16),
            lr_patch=32,  # HR 128: the size VGGStyleDiscriminator is built for
            lr_g=p.pick(smoke=1e-4, standard=2e-4, paper=1e-4),
            lr_d=p.pick(smoke=1e-4, standard=2e-4, paper=1e-4),
            seed=psnr.seed,
        )
        values.update(overrides)
        return cls(**values)


def _check_gan_config(cfg) -> None:
    _check_schedule(cfg)
    hr = cfg.lr_patch * cfg.psnr.scale
    if hr not in (128, 256):
        raise ValueError(f"HR patches of {hr}x{hr} (lr_patch {cfg.lr_patch} x scale {cfg.psnr.scale}) "
                         "do not fit the VGG-style discriminator, which takes 128x128 or 256x256; "
                         f"use lr_patch={128 // cfg.psnr.scale}")
    layers = getattr(cfg, "content_layers", None) or getattr(cfg, "percep_layers", None)
    if not layers:
        raise ValueError("the content/perceptual loss needs at least one VGG layer, "
                         "e.g. {'conv5_4': 1.0}")


def resolve_vgg_weights(weights: str) -> str:
    """``"auto"`` -> ``"imagenet"`` when the VGG19 file is cached, else ``"random"``."""
    if weights != "auto":
        return weights
    from ..features import VGG19_FILE, hub_checkpoint_path

    return "imagenet" if hub_checkpoint_path(VGG19_FILE).is_file() else "random"


def build_discriminator(cfg) -> nn.Module:
    """BasicSR's VGG-style discriminator sized for the config's HR patches."""
    from ..archs.discriminators import VGGStyleDiscriminator

    return VGGStyleDiscriminator(3, cfg.disc_feat, input_size=cfg.lr_patch * cfg.psnr.scale)


def srgan_step(trainer: Trainer, batch: dict, step: int, *, content: nn.Module,
               content_weight: float, gan_weight: float, pixel_weight: float = 0.0) -> dict:
    """One SRGAN iteration (BasicSR ``SRGANModel.optimize_parameters``).

    G step, D frozen: ``content_weight * l_VGG(G(lr), hr) + gan_weight * (-log D(G(lr)))``
    (+ ``pixel_weight * L1`` when set). D step: ``-log D(hr) - log(1 - D(G(lr)))`` on the SR
    batch computed before the G update, detached.
    """
    G, D = trainer.models["G"], trainer.models["D"]
    lr, hr = batch["lr"], batch["hr"]
    sr = G(lr)
    with trainer.frozen("D"):
        l_content = content_weight * content.total(sr, hr)
        l_gan = gan_weight * g_loss("vanilla", D(sr))
        l_g = l_content + l_gan
        out = {"l_g_content": l_content.detach(), "l_g_gan": l_gan.detach()}
        if pixel_weight:
            l_pix = pixel_weight * l1_loss(sr, hr)
            l_g = l_g + l_pix
            out["l_g_pix"] = l_pix.detach()
        trainer.optimize(l_g, "G")
    real, fake = D(hr), D(sr.detach())
    l_d = d_loss("vanilla", real, fake)
    trainer.optimize(l_d, "D")
    out.update(l_d=l_d.detach(), out_d_real=real.detach().mean(), out_d_fake=fake.detach().mean())
    return out


def fit_gan(cfg, make_step, *, device: str | torch.device = "auto", cache_dir=None,
            progress: bool = True, images=None, init: Trained | None = None) -> Trained:
    """Fine-tune a GAN recipe (SRGAN, ESRGAN) from its PSNR model, through the model cache.

    The PSNR model is trained first (or loaded from the cache); G starts from it, D is the
    VGG-style discriminator, both use Adam with the recipe's schedule. ``make_step(c, device)``
    returns the recipe's step function: the only part in which SRGAN and ESRGAN differ.
    Returns the generator (EMA weights when ``ema_decay`` is set) and the run.
    ``init``: the PSNR model to start from when the caller has it already (e.g. a shipped course
    checkpoint trained with ``cfg.psnr``); by default it is trained or taken from the cache.
    """
    cfg = dataclasses.replace(cfg, vgg_weights=resolve_vgg_weights(cfg.vgg_weights))
    dev = device if isinstance(device, torch.device) else pick_device(device)
    start = time.time()
    if init is None:
        init = train_psnr(cfg.psnr, device=dev, cache_dir=cache_dir, progress=progress, images=images)

    def build_and_train(c) -> Trainer:
        torch.manual_seed(c.seed)
        G = load_generator(c.psnr, generator_state(init.run), dev).train()
        D = build_discriminator(c)
        step = make_step(c, dev)
        opt_g = torch.optim.Adam(G.parameters(), lr=c.lr_g, betas=tuple(c.betas))
        opt_d = torch.optim.Adam(D.parameters(), lr=c.lr_d, betas=tuple(c.betas))
        trainer = Trainer({"G": G, "D": D}, {"G": opt_g, "D": opt_d}, step,
                          schedulers={"G": make_scheduler(opt_g, c), "D": make_scheduler(opt_d, c)},
                          ema={"G": c.ema_decay} if c.ema_decay is not None else None,
                          device=dev, progress=progress, seed=c.seed, precision=c.precision,
                          log_every=max(1, c.steps // 200))
        trainer.fit(make_batch_fn(_data_view(c), images), c.steps)
        return trainer

    run = cached_train(cfg, build_and_train, cache_dir=cache_dir)
    model = load_generator(cfg.psnr, generator_state(run), dev)
    return Trained(model, run, cfg, time.time() - start)


def train_srgan(cfg: SRGANConfig, *, device: str | torch.device = "auto", cache_dir=None,
                progress: bool = True, images=None, init: Trained | None = None) -> Trained:
    """Fine-tune SRGAN from its PSNR model (trained first, or taken from the cache).

    The run's history has ``l_g_content``, ``l_g_gan``, ``l_d``, ``out_d_real``,
    ``out_d_fake`` per logged step.
    """
    def make_step(c: SRGANConfig, dev):
        content = PerceptualLoss(dict(c.content_layers), weights=c.vgg_weights,
                                 criterion=c.content_criterion, seed=c.seed).to(dev)
        return partial(srgan_step, content=content, content_weight=c.content_weight,
                       gan_weight=c.gan_weight, pixel_weight=c.pixel_weight)

    return fit_gan(cfg, make_step, device=device, cache_dir=cache_dir, progress=progress,
                   images=images, init=init)


@dataclass(frozen=True)
class _DataView:
    """What :func:`make_batch_fn` needs from a GAN config (its own batch/patch, the PSNR data)."""

    dataset: str
    scale: int
    lr_patch: int
    batch_size: int
    seed: int


def _data_view(cfg) -> _DataView:
    # A different seed stream than the PSNR stage, so the fine-tuning sees fresh patches.
    return _DataView(cfg.psnr.dataset, cfg.psnr.scale, cfg.lr_patch, cfg.batch_size, cfg.seed + 1)
