"""PSNR-oriented training: SRResNet (BasicSR's MSRResNet) or RRDBNet with a pixel loss.

The first stage of every GAN SR method is a generator trained to minimise a pixel loss
(Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", Sec. 2.2 / 3.2: SRResNet with MSE; Wang et al. 2018, "ESRGAN: Enhanced
Super-Resolution Generative Adversarial Networks", Sec. 4.1: the "PSNR-oriented" RRDBNet with
L1). It maximises PSNR, its outputs are smooth, and the GAN stage starts from its weights so
that the adversarial game begins from a sensible image instead of noise.

The loss is ``L = mean rho(G(x_LR) - x_HR)`` with ``rho`` one of

- ``"l1"``: ``|d|`` (BasicSR's MSRResNet and RRDBNet option files; ESRGAN Sec. 4.1);
- ``"mse"``: ``d^2`` (SRGAN Eq. 4, the pixel-wise MSE loss of SRResNet);
- ``"charbonnier"``: ``sqrt(d^2 + eps^2)`` (LapSRN, Lai et al. 2017, Eq. 2).

Schedules at the paper profile are BasicSR's ``train_MSRResNet_x4.yml`` and
``train_RRDBNet_PSNR_x4.yml``: Adam(lr 2e-4, betas 0.9/0.99), cosine annealing with restarts
every 250k iterations down to 1e-7, 1M iterations, batch 16, 128x128 HR patches; MSRResNet
keeps an EMA of its weights (decay 0.999). At smoke/standard the same recipe runs with small
networks and a single short cosine period (see :meth:`PSNRConfig.for_profile`).

The step function :func:`psnr_step` and the helpers here (:func:`build_generator`,
:func:`make_batch_fn`, :func:`make_scheduler`, :class:`Trained`) are shared by the SRGAN and
ESRGAN recipes, which start from this stage.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import torch
from torch import nn

from ..errors import WeightsError
from ..losses import charbonnier_loss, l1_loss, mse_loss
from ..profiles import Profile, get_profile
from ..runtime import pick_device
from ..train import CachedRun, Trainer, cached_train

PIXEL_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1_loss,
    "mse": mse_loss,
    "charbonnier": charbonnier_loss,
}
ARCHS = ("msrresnet", "rrdbnet")


@dataclass(frozen=True)
class PSNRConfig:
    """Everything that defines one PSNR-oriented training run (the cache key is built from it).

    Attributes:
        profile: profile name the values came from (recorded; part of the key).
        arch: ``"msrresnet"`` (SRResNet without BN) or ``"rrdbnet"`` (ESRGAN's generator).
        scale: upscaling factor.
        num_feat, num_block: generator width and depth; ``num_grow_ch``: RRDB growth channels.
        pixel_loss: ``"l1"``, ``"mse"`` or ``"charbonnier"``.
        steps, batch_size, lr_patch: iterations, batch and LR patch side (HR = lr_patch * scale).
        lr, betas: Adam settings.
        schedule: ``"cosine"`` (cosine annealing restarted every ``period`` steps to ``eta_min``)
            or ``"multistep"`` (multiply by ``gamma`` at each of ``milestones``).
        ema_decay: keep an exponential moving average of G (``None``: no EMA).
        dataset: training set: an embedded one (:func:`srlib.data.load_images`) below the paper
            profile; DIV2K (MSRResNet) or DF2K (RRDBNet) at it, as BasicSR's options.
        seed: seeds the initialisation and the patch sampling.
        precision: the trainer's forward-pass policy (:class:`srlib.runtime.PrecisionPolicy`):
            ``"auto"`` (bf16 autocast + channels_last on a CPU with native bf16, AMP on CUDA),
            ``"fp32"`` or ``"bf16"``. Part of the cache key and of every checkpoint's record.
    """

    profile: str
    arch: str = "msrresnet"
    scale: int = 4
    num_feat: int = 64
    num_block: int = 16
    num_grow_ch: int = 32
    pixel_loss: str = "l1"
    steps: int = 1_000_000
    batch_size: int = 16
    lr_patch: int = 32
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    schedule: str = "cosine"
    period: int = 250_000
    eta_min: float = 1e-7
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    ema_decay: float | None = 0.999
    dataset: str = "photos"
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; use one of {', '.join(ARCHS)}")
        if self.pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"unknown pixel_loss {self.pixel_loss!r}; use one of "
                             f"{', '.join(PIXEL_LOSSES)}")
        _check_schedule(self)

    @classmethod
    def for_profile(cls, profile: str | Profile, *, arch: str = "msrresnet", pixel_loss: str = "l1",
                    **overrides: Any) -> "PSNRConfig":
        """The recipe at ``profile``; smoke / standard / paper values side by side.

        paper: BasicSR ``train_MSRResNet_x4.yml`` (64 features, 16 blocks) or
        ``train_RRDBNet_PSNR_x4.yml`` (64 features, 23 RRDBs, growth 32); 1M iterations.
        standard: the profile's small width/depth and a short single cosine period with a
        larger learning rate (a short schedule needs larger steps to get anywhere). RRDBNet has
        no bilinear skip (it must learn the whole mapping) and costs more per pixel, so it gets
        more, smaller batches (8 x 600 instead of 16 x 350) for the same CPU time.
        smoke: a handful of steps so that every code path runs.
        """
        p = get_profile(profile)
        rrdb = arch == "rrdbnet"
        steps = p.pick(smoke=12, standard=(600 if rrdb else 350), paper=1_000_000)
        values = dict(
            profile=p.name, arch=arch, scale=p.scale, pixel_loss=pixel_loss,
            num_feat=p.num_feat,
            num_block=p.pick(smoke=1, standard=1, paper=23) if rrdb else p.num_block,
            num_grow_ch=p.pick(smoke=8, standard=16, paper=32),
            steps=steps,
            batch_size=p.pick(smoke=4, standard=(8 if rrdb else 16), paper=16),
            lr_patch=p.pick(smoke=16, standard=24, paper=32),
            lr=p.pick(smoke=2e-4, standard=5e-4, paper=2e-4),
            schedule="cosine",
            period=p.pick(smoke=steps, standard=steps, paper=250_000),
            eta_min=p.pick(smoke=1e-7, standard=1e-6, paper=1e-7),
            ema_decay=None if (rrdb or p.name != "paper") else 0.999,
            dataset=p.pick(smoke="photos", standard="photos", paper=("df2k" if rrdb else "div2k")),
        )
        values.update(overrides)
        return cls(**values)


def _check_schedule(cfg) -> None:
    if cfg.schedule not in ("cosine", "multistep"):
        raise ValueError(f"unknown schedule {cfg.schedule!r}; use 'cosine' or 'multistep'")
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.lr_patch < 1:
        raise ValueError(f"steps, batch_size and lr_patch must be >= 1 (got {cfg.steps}, "
                         f"{cfg.batch_size}, {cfg.lr_patch})")
    if cfg.ema_decay is not None and not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) or None, got {cfg.ema_decay}")
    from ..runtime import PRECISIONS
    if getattr(cfg, "precision", "auto") not in PRECISIONS:
        raise ValueError(f"unknown precision {cfg.precision!r}; use one of {', '.join(PRECISIONS)}")


def build_generator(cfg) -> nn.Module:
    """The generator a config describes (BasicSR signatures, so official checkpoints load)."""
    from ..archs.rrdbnet import RRDBNet
    from ..archs.srresnet import MSRResNet

    if cfg.arch == "msrresnet":
        return MSRResNet(num_in_ch=3, num_out_ch=3, num_feat=cfg.num_feat,
                         num_block=cfg.num_block, upscale=cfg.scale)
    return RRDBNet(3, 3, scale=cfg.scale, num_feat=cfg.num_feat, num_block=cfg.num_block,
                   num_grow_ch=cfg.num_grow_ch)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg):
    """BasicSR's schedulers with torch equivalents, stepped once per iteration.

    ``"cosine"``: ``CosineAnnealingRestartLR`` with equal periods and restart weights 1 is
    exactly ``CosineAnnealingWarmRestarts(T_0=period, eta_min)``. ``"multistep"``: ``MultiStepLR``.
    """
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=int(cfg.period), eta_min=float(cfg.eta_min))
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones),
                                                gamma=float(cfg.gamma))


def make_batch_fn(cfg, images=None) -> Callable[[int], dict]:
    """``batch_fn(step)`` of random paired patches from the training split of ``cfg.dataset``.

    A pure function of the step (and the seed), as the trainer's exact resume needs. The LR
    patches are MATLAB-bicubic downscales of the HR patches (the degradation of both papers).
    A paper training set (``"div2k"``, ``"df2k"``, see :mod:`srlib.paper_data`) is read from the
    downloaded folders with its stored bicubic LR; an embedded one is loaded into memory.
    """
    from .. import data
    from ..paper_data import is_paper_set, paper_patches

    if images is None and is_paper_set(cfg.dataset):
        patches = paper_patches(cfg.dataset, cfg.scale, cfg.lr_patch * cfg.scale, seed=cfg.seed)
        return partial(_sample, patches, cfg.batch_size)
    if images is None:
        images = data.load_images(cfg.dataset, "train")
    patches = data.PairedPatches(images, cfg.scale, cfg.lr_patch * cfg.scale, seed=cfg.seed)
    return partial(_sample, patches, cfg.batch_size)


def _sample(patches, batch_size: int, step: int) -> dict:
    lr, hr = patches.sample_batch(step, batch_size)
    return {"lr": lr, "hr": hr}


def pixel_loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The pixel loss called ``name`` (``"l1"``, ``"mse"``, ``"charbonnier"``)."""
    if name not in PIXEL_LOSSES:
        raise ValueError(f"unknown pixel loss {name!r}; use one of {', '.join(PIXEL_LOSSES)}")
    return PIXEL_LOSSES[name]


def psnr_step(trainer: Trainer, batch: dict, step: int, *, pixel_loss: str = "l1") -> dict:
    """One step of pixel-loss training: ``L = mean rho(G(lr) - hr)``; updates G only."""
    sr = trainer.models["G"](batch["lr"])
    loss = pixel_loss_fn(pixel_loss)(sr, batch["hr"])
    trainer.optimize(loss, "G")
    return {f"l_{pixel_loss}": loss.detach()}


@dataclass
class Trained:
    """A trained (or cache-loaded) generator with its run.

    ``model`` is in eval mode on the requested device and carries the EMA weights when the
    recipe kept an EMA (as BasicSR evaluates ``net_g_ema``); ``run`` holds every state dict and
    the loss history; ``seconds`` is the wall time of this call (near 0 on a cache hit).
    """

    model: nn.Module
    run: CachedRun
    config: Any
    seconds: float

    @property
    def history(self) -> list[dict]:
        return self.run.history

    @property
    def cached(self) -> bool:
        return self.run.hit


def generator_state(run: CachedRun) -> dict[str, torch.Tensor]:
    """The generator weights to use from a run: the EMA copy when there is one, else ``G``."""
    return run["G_ema"] if "G_ema" in run.keys() else run["G"]


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], device, what: str) -> nn.Module:
    """Load ``state`` into ``net`` strictly; a mismatch is a :class:`WeightsError` naming ``what``.

    Returns ``net`` in eval mode on ``device``. Every recipe's cache loader goes through here."""
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"the cached weights do not fit {what}: {exc}. "
                           "Delete the cache entry to retrain.") from exc
    return net.to(device).eval()


def load_generator(cfg, state: dict[str, torch.Tensor], device) -> nn.Module:
    """Build ``cfg``'s generator and load ``state`` strictly (a clear error when it does not fit)."""
    return load_strict(build_generator(cfg), state, device,
                       f"{cfg.arch} with num_feat={cfg.num_feat}, num_block={cfg.num_block}")


def train_psnr(cfg: PSNRConfig, *, device: str | torch.device = "auto", cache_dir=None,
               progress: bool = True, images=None) -> Trained:
    """Train the PSNR-oriented generator of ``cfg``, or load it from the model cache.

    ``images`` (a dict name -> HR image) replaces the embedded training set; tests use it.
    Passing it bypasses nothing else: the cache key is still the config, so only pass images
    together with a ``cache_dir`` of their own.
    """
    dev = device if isinstance(device, torch.device) else pick_device(device)
    start = time.time()

    def build_and_train(c: PSNRConfig) -> Trainer:
        torch.manual_seed(c.seed)
        G = build_generator(c)
        opt = torch.optim.Adam(G.parameters(), lr=c.lr, betas=tuple(c.betas))
        trainer = Trainer({"G": G}, {"G": opt}, partial(psnr_step, pixel_loss=c.pixel_loss),
                          schedulers={"G": make_scheduler(opt, c)},
                          ema={"G": c.ema_decay} if c.ema_decay is not None else None,
                          device=dev, progress=progress, seed=c.seed, precision=c.precision,
                          log_every=max(1, c.steps // 200))
        trainer.fit(make_batch_fn(c, images), c.steps)
        return trainer

    run = cached_train(cfg, build_and_train, cache_dir=cache_dir)
    model = load_generator(cfg, generator_state(run), dev)
    return Trained(model, run, cfg, time.time() - start)


def replace(cfg, **changes):
    """``dataclasses.replace`` re-exported: derive a config with a few values changed."""
    return dataclasses.replace(cfg, **changes)
