"""The two pretrained models PDD starts from: a bicubic specialist and a blind generalist.

Zhang, Lee & Yao, "Pairwise Distance Distillation for Unsupervised Real-World Image
Super-Resolution" (ECCV 2024), Sec. 3.1: a *specialist* S is trained on a narrow set of
synthetic degradations (bicubic downsampling; the paper uses ESRGAN), a *generalist* G on a
broad one (the paper uses Real-ESRGAN, whose LR images come from the second-order pipeline of
Wang et al. 2021, Sec. 3.2). The premise of the method, the paper's Tab. 1: S beats G on the
synthetic domain and G beats S on an unknown real-world domain.

Both models are RRDBNets trained in two stages on the same labelled source photos
(:data:`srlib.data_domains.SOURCE_IMAGES`, disjoint from the target and test photos): an L1 stage,
then a GAN stage that starts from it. Each is trained as its paper trains it:

- ``role="specialist"`` (ESRGAN): MATLAB bicubic x4 LR (:func:`srlib.degradations.bicubic_degrade`);
  GAN stage :func:`srlib.recipes.esrgan.esrgan_step`: perceptual loss (conv5_4 at the paper
  profile) + relativistic GAN weighted 5e-3 + L1 weighted 1e-2, VGG-style discriminator.
- ``role="generalist"`` (Real-ESRGAN, Wang et al. 2021, ``train_realesrgan_x4plus.yml``):
  :func:`srlib.degradations.second_order_pair` with the x4plus option values, a fresh draw for
  every patch, degraded from the unsharp-masked HR (``usm_hr``), which is the target of the L1
  and perceptual losses (``gt_usm``); GAN stage :func:`realesrgan_step`: L1 weighted 1,
  perceptual loss over conv1_2 ... conv5_4 (weights 0.1, 0.1, 1, 1, 1) weighted 1, a vanilla GAN
  weighted 0.1 on the logit map of a U-Net discriminator with spectral normalisation
  (:class:`~srlib.archs.UNetDiscriminatorSN`), which sees the plain HR as real (``gan_gt_usm:
  False``).

Below the paper profile the schedules (steps, batch, patch, learning rates, EMA) are ESRGAN's
for both, so the two differ in their training data and in their GAN losses. At the paper profile
the generalist takes Real-ESRGAN's own schedules too (:data:`REALESRGAN_SCHEDULES`: 256-px HR
patches, batch 48, EMA 0.999 in both stages, 1M L1 and 400k GAN iterations at a constant rate). An
earlier version trained the generalist with ESRGAN's losses ("Real-ESRGAN data, ESRGAN losses"):
its shipped model came out of the short GAN stage 11 to 13 grey levels off in colour and lost
Tab. 1 on both domains. Trained with Real-ESRGAN's losses it does not (``color_error`` in
notebook 06's ``specialist_generalist`` table).

:func:`train_realworld` trains both stages through the model cache and returns the GAN-stage
generator; ``RealWorldConfig.for_profile(profile, role)`` gives the notebook's schedule and
:meth:`RealWorldConfig.checkpoint` the longer one for shipped course checkpoints.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from ..data_domains import SOURCE_IMAGES, source_patches
from ..losses import PerceptualLoss, d_loss, g_loss, l1_loss
from ..profiles import Profile, get_profile
from ..runtime import pick_device
from ..train import Trainer, cached_train
from .esrgan import ESRGANConfig, esrgan_step
from .psnr import (PSNRConfig, Trained, build_generator, generator_state, load_generator,
                   make_scheduler, psnr_step)
from .srgan import build_discriminator, resolve_vgg_weights

ROLES = ("specialist", "generalist")

#: The GAN-stage losses of Real-ESRGAN x4plus (``train_realesrgan_x4plus.yml``: ``pixel_opt``,
#: ``perceptual_opt`` with its ``layer_weights``, ``gan_opt``), used by the generalist.
REALESRGAN_LOSSES = {
    "pixel_weight": 1.0,
    "percep_layers": {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
    "percep_weight": 1.0,
    "gan_weight": 0.1,
}

#: Real-ESRGAN's schedules at the paper profile: the L1 stage as ``train_realesrnet_x4plus.yml``
#: (Real-ESRNet), the GAN stage as ``train_realesrgan_x4plus.yml``; both ``gt_size: 256`` (LR
#: patch 64), 12 images on each of 4 GPUs, ``ema_decay: 0.999``, MultiStepLR whose only milestone
#: is the last iteration (a constant learning rate).
REALESRGAN_SCHEDULES = {
    "psnr": {"steps": 1_000_000, "lr": 2e-4, "schedule": "multistep", "milestones": (1_000_000,),
             "gamma": 0.5, "ema_decay": 0.999, "batch_size": 48, "lr_patch": 64},
    "gan": {"steps": 400_000, "lr_g": 1e-4, "lr_d": 1e-4, "milestones": (400_000,), "gamma": 0.5,
            "ema_decay": 0.999, "batch_size": 48, "lr_patch": 64},
}

#: (L1 steps, GAN steps) of the shipped ``pdd_specialist`` / ``pdd_generalist`` checkpoints.
CHECKPOINT_STEPS = (1500, 300)


@dataclass(frozen=True)
class RealWorldConfig:
    """One pretrained model of notebook 06.

    Attributes:
        role: ``"specialist"`` (bicubic LR) or ``"generalist"`` (second-order LR).
        esrgan: schedules and loss weights of both stages (``esrgan.psnr`` is the L1 stage).
            The role picks the GAN stage (:attr:`gan_recipe`); its loss weights are these.
        usm_hr: train against the unsharp-masked HR (Real-ESRGAN's ``gt_usm``).
        source: names of the labelled source photos, or one paper training set (``("df2k",)``,
            the paper's labelled data; the paper profile's default).
        precision: the trainers' forward-pass policy (``"auto"``, ``"fp32"``, ``"bf16"``).
    """

    role: str
    esrgan: ESRGANConfig
    usm_hr: bool = False
    source: tuple[str, ...] = SOURCE_IMAGES
    precision: str = "auto"

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; use 'specialist' (bicubic) or "
                             "'generalist' (Real-ESRGAN second-order degradations)")
        if not self.source:
            raise ValueError("source must name at least one labelled photo")
        from ..paper_data import is_paper_set
        if len(self.source) > 1 and any(is_paper_set(s) for s in self.source):
            raise ValueError(f"source {self.source}: a paper training set stands alone (e.g. ('df2k',))")

    @property
    def scale(self) -> int:
        return self.esrgan.scale

    @property
    def gan_recipe(self) -> str:
        """``"esrgan"`` for the specialist (VGG-style D, relativistic GAN: :func:`esrgan_step`),
        ``"realesrgan"`` for the generalist (U-Net D with spectral norm, vanilla GAN on its logit
        map, the plain HR as real: :func:`realesrgan_step`)."""
        return "realesrgan" if self.role == "generalist" else "esrgan"

    @property
    def profile(self) -> str:
        return self.esrgan.psnr.profile

    @property
    def degradation(self) -> str:
        return "bicubic" if self.role == "specialist" else "second_order"

    @classmethod
    def for_profile(cls, profile: str | Profile, role: str, *, psnr_steps: int | None = None,
                    gan_steps: int | None = None, **overrides: Any) -> "RealWorldConfig":
        """The model ``role`` at ``profile``: ESRGAN's own schedule at that profile (the generalist's
        at the paper profile: :data:`REALESRGAN_SCHEDULES`).

        ``psnr_steps`` / ``gan_steps`` lengthen the two stages (the GAN milestones follow);
        other keyword arguments go to :class:`RealWorldConfig` (``usm_hr``, ``precision``...).
        The generalist trains against the USM-sharpened HR by default, with Real-ESRGAN's GAN-stage
        losses (:data:`REALESRGAN_LOSSES`); the specialist against the plain HR, with ESRGAN's.
        """
        p = get_profile(profile)
        precision = overrides.pop("precision", "auto")
        paper_generalist = role == "generalist" and p.name == "paper"  # Real-ESRGAN's schedules
        psnr = PSNRConfig.for_profile(p, arch="rrdbnet", pixel_loss="l1", precision=precision)
        if paper_generalist:
            psnr = dataclasses.replace(psnr, **REALESRGAN_SCHEDULES["psnr"])
        if psnr_steps is not None:
            psnr = dataclasses.replace(psnr, steps=int(psnr_steps),
                                       period=int(psnr_steps) if psnr.schedule == "cosine" and p.name != "paper"
                                       else psnr.period)
        esr = ESRGANConfig.for_profile(p, psnr=psnr, precision=precision)
        if role == "generalist":  # Real-ESRGAN's GAN-stage losses
            esr = dataclasses.replace(esr, **REALESRGAN_LOSSES,
                                      **(REALESRGAN_SCHEDULES["gan"] if paper_generalist else {}))
        if gan_steps is not None:
            g = int(gan_steps)
            esr = dataclasses.replace(esr, steps=g, milestones=tuple(
                int(g * f) for f in (0.125, 0.25, 0.5, 0.75)) if p.name != "paper" else esr.milestones)
        values = dict(role=role, esrgan=esr, usm_hr=(role == "generalist"), precision=precision)
        if p.name == "paper":  # PDD Sec. 5: labelled data synthesised from DF2K
            values["source"] = ("df2k",)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def checkpoint(cls, role: str, profile: str | Profile = "standard") -> "RealWorldConfig":
        """The config a notebook at ``profile`` asks the course checkpoints for.

        standard: the standard-size model with the long schedule of the shipped checkpoint,
        :data:`CHECKPOINT_STEPS` (1500 L1 steps then 300 GAN steps, 2.5x and 3.75x the notebook's
        600 and 80). smoke: 2 + 1 steps (the notebook trains both). paper: :meth:`for_profile`.
        """
        p = get_profile(profile)
        if p.name == "smoke":  # the smoke notebook trains both models itself: keep it short
            return cls.for_profile(p, role, psnr_steps=2, gan_steps=1)
        if p.name != "standard":
            return cls.for_profile(p, role)
        psnr_steps, gan_steps = CHECKPOINT_STEPS
        return cls.for_profile(p, role, psnr_steps=psnr_steps, gan_steps=gan_steps)


def lr_degrade(cfg: RealWorldConfig):
    """``f(hr, rng) -> lr`` of the role: bicubic, or a fresh second-order draw from ``rng``
    (of the unsharp-masked HR with ``usm_hr``, as Real-ESRGAN's trainer degrades ``gt_usm``)."""
    from .. import data
    from ..degradations import second_order_degrade

    if cfg.role == "specialist":
        return data.bicubic(cfg.scale)
    scale, usm = cfg.scale, cfg.usm_hr

    def degrade(hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return second_order_degrade(hr, scale, rng, usm_hr=usm)

    degrade.__name__ = f"second_order_x{scale}"
    return degrade


class _SourceBatches:
    """``batch_fn(step) -> {"lr", "hr"}`` of one role on the source photos (pure in the step).

    Specialist: bicubic pairs (:class:`srlib.data.PairedPatches`; DF2K's stored bicubic LR at the
    paper profile). Generalist: HR crops (embedded photos, or DF2K read from disk), each
    turned into a Real-ESRGAN pair by :func:`srlib.degradations.second_order_pair` with the
    generator ``default_rng([seed, step, b])``; with ``usm_hr`` the ``hr`` of the batch is the
    unsharp-masked HR, the target of Real-ESRGAN's L1 and perceptual losses.
    """

    def __init__(self, cfg: RealWorldConfig, lr_patch: int, batch_size: int, seed: int, images=None):
        from .. import data, paper_data

        self.cfg, self.batch_size, self.seed = cfg, int(batch_size), int(seed)
        hr_patch = lr_patch * cfg.scale
        on_disk = images is None and paper_data.is_paper_set(cfg.source[0])  # DF2K at the paper profile
        if on_disk:
            make = paper_data.paper_patches if cfg.role == "specialist" else paper_data.paper_hr_patches
            self.patches = make(cfg.source[0], cfg.scale, hr_patch, seed=seed)
            return
        if images is None:
            images = source_patches(cfg.source, cfg.scale, lr_patch, seed=seed)
        if cfg.role == "specialist":
            self.patches = data.PairedPatches(images, cfg.scale, hr_patch, seed=seed)
        else:
            self.patches = data.UnpairedPatches(images, hr_patch, degrade=None, scale=cfg.scale,
                                                seed=seed)

    def _hr_crops(self, step: int) -> torch.Tensor:
        if hasattr(self.patches, "sample_hr_batch"):
            return self.patches.sample_hr_batch(step, self.batch_size)
        return self.patches.sample_batch(step, self.batch_size)

    def __call__(self, step: int) -> dict:
        from ..degradations import second_order_pair

        if self.cfg.role == "specialist":
            lr, hr = self.patches.sample_batch(step, self.batch_size)
            return {"lr": lr, "hr": hr}
        crops = self._hr_crops(step).permute(0, 2, 3, 1).numpy()
        pairs = [second_order_pair(c, self.cfg.scale, np.random.default_rng([self.seed, 2, step, b]),
                                   usm_hr=self.cfg.usm_hr) for b, c in enumerate(crops)]
        lr = np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2)
        hr = np.stack([p[1] for p in pairs]).transpose(0, 3, 1, 2)
        plain = crops.transpose(0, 3, 1, 2)  # float32 in [0, 1], as both samplers return
        return {"lr": torch.from_numpy(np.ascontiguousarray(lr, np.float32)),
                "hr": torch.from_numpy(np.ascontiguousarray(hr, np.float32)),
                "gan_hr": torch.from_numpy(np.ascontiguousarray(plain, np.float32))}


def realesrgan_step(trainer: Trainer, batch: dict, step: int, *, percep: torch.nn.Module,
                    pixel_weight: float, gan_weight: float) -> dict:
    """One Real-ESRGAN GAN-stage iteration (``RealESRGANModel.optimize_parameters``).

    G step, D frozen: ``pixel_weight * L1(G(lr), hr) + L_percep(G(lr), hr)
    + gan_weight * BCE(D(G(lr)), 1)``, where ``hr`` is the training target (the unsharp-masked
    HR, ``gt_usm``) and the vanilla GAN loss averages over D's logit map. D step:
    ``BCE(D(gan_hr), 1) + BCE(D(G(lr)), 0)`` on the SR batch computed before the G update,
    detached; ``gan_hr`` is the plain HR (``gan_gt_usm: False``), ``hr`` when the batch has none.
    Real-ESRGAN back-propagates the real and the fake term one after the other; their sum has the
    same gradient.
    """
    G, D = trainer.models["G"], trainer.models["D"]
    lr, hr = batch["lr"], batch["hr"]
    real_hr = batch.get("gan_hr", hr)
    sr = G(lr)
    with trainer.frozen("D"):
        l_pix = pixel_weight * l1_loss(sr, hr)
        l_percep = percep.total(sr, hr)
        l_gan = gan_weight * g_loss("vanilla", D(sr))
        trainer.optimize(l_pix + l_percep + l_gan, "G")
    real, fake = D(real_hr), D(sr.detach())
    l_d = d_loss("vanilla", real, fake)
    trainer.optimize(l_d, "D")
    return {"l_g_pix": l_pix.detach(), "l_g_percep": l_percep.detach(), "l_g_gan": l_gan.detach(),
            "l_d": l_d.detach(), "out_d_real": real.detach().mean(),
            "out_d_fake": fake.detach().mean()}


def train_realworld(cfg: RealWorldConfig, *, device: str | torch.device = "auto", cache_dir=None,
                    progress: bool = True, images=None) -> Trained:
    """Train the specialist or generalist of ``cfg`` (L1 stage, then its GAN stage), or load it.

    The run's history holds both stages (``stage`` 1 and 2). ``images`` replaces the source
    photos (tests; give it a ``cache_dir`` of its own, the cache key is the config).
    """
    cfg = dataclasses.replace(cfg, esrgan=dataclasses.replace(
        cfg.esrgan, vgg_weights=resolve_vgg_weights(cfg.esrgan.vgg_weights)))
    dev = device if isinstance(device, torch.device) else pick_device(device)
    start = time.time()

    def build_and_train(c: RealWorldConfig) -> Trainer:
        e, p = c.esrgan, c.esrgan.psnr
        torch.manual_seed(p.seed)
        G = build_generator(p)
        opt = torch.optim.Adam(G.parameters(), lr=p.lr, betas=tuple(p.betas))
        t1 = Trainer({"G": G}, {"G": opt}, partial(psnr_step, pixel_loss=p.pixel_loss),
                     schedulers={"G": make_scheduler(opt, p)},
                     ema={"G": p.ema_decay} if p.ema_decay is not None else None,
                     device=dev, progress=progress, seed=p.seed, precision=c.precision,
                     log_every=max(1, p.steps // 200))
        t1.fit(_SourceBatches(c, p.lr_patch, p.batch_size, p.seed, images), p.steps)
        init = t1.ema["G"].state_dict() if "G" in t1.ema else t1.raw_models["G"].state_dict()

        torch.manual_seed(e.seed)
        G = build_generator(p)
        G.load_state_dict(init)
        if c.gan_recipe == "realesrgan":
            from ..archs.discriminators import UNetDiscriminatorSN

            D, step_fn = UNetDiscriminatorSN(3, e.disc_feat, skip_connection=True), realesrgan_step
        else:
            D, step_fn = build_discriminator(e), esrgan_step
        percep = PerceptualLoss(dict(e.percep_layers), weights=e.vgg_weights,
                                criterion=e.percep_criterion, perceptual_weight=e.percep_weight,
                                seed=e.seed).to(dev)
        opt_g = torch.optim.Adam(G.parameters(), lr=e.lr_g, betas=tuple(e.betas))
        opt_d = torch.optim.Adam(D.parameters(), lr=e.lr_d, betas=tuple(e.betas))
        t2 = Trainer({"G": G, "D": D}, {"G": opt_g, "D": opt_d},
                     partial(step_fn, percep=percep, pixel_weight=e.pixel_weight, gan_weight=e.gan_weight),
                     schedulers={"G": make_scheduler(opt_g, e), "D": make_scheduler(opt_d, e)},
                     ema={"G": e.ema_decay} if e.ema_decay is not None else None,
                     device=dev, progress=progress, seed=e.seed, precision=c.precision,
                     log_every=max(1, e.steps // 200))
        t2.fit(_SourceBatches(c, e.lr_patch, e.batch_size, e.seed + 1, images), e.steps)
        t2.history = ([dict(r, stage=1) for r in t1.history]
                      + [dict(r, stage=2, step=r["step"] + p.steps) for r in t2.history])
        return t2

    run = cached_train(cfg, build_and_train, cache_dir=cache_dir)
    model = load_generator(cfg.esrgan.psnr, generator_state(run), dev)
    return Trained(model, run, cfg, time.time() - start)


__all__ = ["ROLES", "RealWorldConfig", "train_realworld", "realesrgan_step", "REALESRGAN_LOSSES",
           "REALESRGAN_SCHEDULES",
           "lr_degrade", "register_course_models", "CHECKPOINT_STEPS"]


# ------------------------------------------------------------------ course checkpoints
CHECKPOINT_NAMES = {"specialist": "pdd_specialist", "generalist": "pdd_generalist"}


def _arch(cfg: RealWorldConfig) -> tuple[str, dict]:
    p = cfg.esrgan.psnr
    return "RRDBNet", {"num_in_ch": 3, "num_out_ch": 3, "scale": p.scale, "num_feat": p.num_feat,
                       "num_block": p.num_block, "num_grow_ch": p.num_grow_ch}


def _train_for_checkpoint(cfg, *, device, cache_dir=None, progress=True, checkpoints_dir=None):
    return train_realworld(cfg, device=device, cache_dir=cache_dir, progress=progress)


def register_course_models(register) -> None:
    """Register notebook 06's two pretrained models with :mod:`srlib.checkpoints`."""
    from ..checkpoints import CourseModel

    for role, name in CHECKPOINT_NAMES.items():
        what = ("bicubic specialist (ESRGAN recipe on bicubic LR)" if role == "specialist" else
                "generalist (Real-ESRGAN recipe: second-order LR, USM target, U-Net discriminator, "
                "its loss weights)")
        register(CourseModel(name, ("06",), f"PDD {what}; RRDBNet, source photos only",
                             partial(RealWorldConfig.checkpoint, role), _train_for_checkpoint, _arch))
