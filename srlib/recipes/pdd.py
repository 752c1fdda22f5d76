"""PDD: adapt a super-resolution model to an unlabelled target domain by pairwise distance distillation.

Zhang, Lee & Yao, "Pairwise Distance Distillation for Unsupervised Real-World Image
Super-Resolution" (ECCV 2024, arXiv:2407.07302; code github.com/Yuehan717/PDD). Given a labelled
source domain (HR photos ``y_s`` and their bicubic LR ``x_s``), an unlabelled target domain
(LR images ``x_t`` only), a *specialist* (good on the source) and a *generalist* (blind, trained
on Real-ESRGAN's degradations), a network S is trained on batches that are half source, half
target (Sec. 4.1):

- supervised losses on the source (Eq. 9):
  ``L_sup = 0.5 * L_wvt(S(x_s), y_s) + 1 * L_percep(S(x_s), y_s) + 0.01 * L_GAN(S(x_s))`` with the
  Haar wavelet loss of Eq. 10 (:func:`srlib.losses.wavelet_loss`, sub-band weights 1, 0.1, 0.01),
  the VGG19 perceptual loss before activation (``conv1_2`` 0.1, ``conv2_2`` 0.1, ``conv3_4``,
  ``conv4_4``, ``conv5_4`` 1; L1) and a vanilla GAN loss against a U-Net discriminator with
  spectral norm (the values of the official option files);
- unsupervised losses on the target (Eq. 11):
  ``L_unsup = L_inter + L_intra + 0.01 * L_GAN(S(x_t))``, the inter- and intra-model distance
  distillation of Eqs. 6-8 (:class:`srlib.losses.distance.PairwiseDistanceLoss`) between the
  four predictions ``S(x_s), S(x_t), G(x_s), G(x_t)`` (Eq. 4) of each (source, target) pair;
- the discriminator sees the HR source images as real and ``S(x_s)`` as fake (never a target
  image: there is no target HR); it trains alone for the first ``d_init_steps`` steps
  (official ``net_d_init_iters: 300``), and the distance losses and the target GAN term start
  ``warmup_steps`` later (official ``domain_opt_warmup_iters``: 0 static, 5 EMA).

Three configurations (``method``), Fig. 3 and Fig. 4 of the paper:

- ``"naive"``: naive distillation, Eq. 3: ``L_sup + lambda * d(S(x_t), G(x_t))``; S starts from the
  specialist, G is the frozen generalist. The paper's Eq. 3 names neither ``d`` nor ``lambda``
  (lost in the text we have); here ``d`` is the pixel L1 and ``lambda = naive_weight = 1``.
- ``"static"``: S starts from the specialist, G is the frozen generalist, and the distance losses
  treat ``S(x_s)`` as a constant (official static option file: ``domain_opt_detach: true``).
- ``"ema"``: S and G both start from the generalist, G is the exponential moving average of S
  (``G <- 0.999 G + 0.001 S`` after every step), and gradients flow through ``S(x_s)``
  (``domain_opt_detach: false``).

The official static option file loads the generalist into the trained network and the
specialist into the frozen one; the paper (Sec. 3.4, Fig. 3a) says the opposite, and this recipe
follows the paper: S from the specialist, G the frozen generalist.

Training follows the official options: Adam (lr 1e-4, betas 0.9/0.99) for S and D, lr halved at
25k iterations; 16 inputs per batch (8 + 8); LR patches of 48 (HR 192); 100k iterations
(the paper: 50k for static). The evaluated model is S itself. Colour correction at inference
(Sec. 3.4: each output channel's mean and std matched to the LR input's) is
:func:`srlib.infer.color_correct`, switched on in :func:`srlib.studies.pdd.super_resolve`.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data_domains import (CAMERA, MixedBatches, check_target, check_unlabelled, default_target,
                            source_patches, target_train_lr)
from ..features import VGGFeatures
from ..losses import PDD_WAVELET_WEIGHTS, d_loss, g_loss, l1_loss, wavelet_loss
from ..losses.distance import (INTRA_MEASURES, PDD_INTER_WEIGHTS, PDD_INTRA_WEIGHTS,
                               PairwiseDistanceLoss)
from ..losses.perceptual import feature_distance
from ..profiles import Profile, get_profile
from ..runtime import pick_device
from ..train import Trainer, cached_train
from .psnr import Trained, build_generator, load_generator
from .realworld import RealWorldConfig, train_realworld
from .srgan import resolve_vgg_weights

METHODS = ("naive", "static", "ema")

#: Official perceptual-loss layers of PDD (before ReLU) and their weights.
PDD_PERCEP_WEIGHTS = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}


@dataclass(frozen=True)
class PDDConfig:
    """One PDD (or naive distillation) run; the cache key of the adapted model.

    Attributes:
        method: ``"naive"``, ``"static"`` or ``"ema"`` (see the module doc).
        generalist, specialist: configs of the two pretrained models (:mod:`.realworld`).
        steps: iterations. batch_size: inputs *per domain* (source and target each).
        lr_patch: LR patch side (source HR patches are ``lr_patch * scale``; a multiple of 2).
        lr_g, lr_d, betas, milestones, gamma: Adam and MultiStepLR of S and D.
        ema_decay: decay of the EMA teacher (``"ema"`` only; 0.999).
        wavelet_weight, wavelet_weights: Eq. 9's ``L_wvt`` weight (0.5) and sub-band weights.
        percep_layers, percep_weight: Eq. 9's perceptual loss. gan_weight: 1e-2 (both domains).
        inter_layers, intra_layers, inter_weight, intra_weight, intra_measure: Eq. 11's distance
            losses (``intra_measure`` ``"ce"`` as Eq. 6, or ``"l1"`` as Tab. 3); a weight of 0
            switches a term off (the ablations of the paper's Fig. 9).
        naive_weight: lambda of Eq. 3 (``"naive"`` only).
        detach_source: no gradient through ``S(x_s)`` in the distance losses; ``None`` follows
            the official option files (static: True, EMA: False).
        d_init_steps: steps in which only D trains. warmup_steps: further steps before the
            distance losses and the target GAN term start.
        disc_feat: width of the U-Net discriminator (64 in the paper).
        vgg_weights: VGG19 of the perceptual and distance losses (``"auto"`` resolved at train time).
        seed, precision: as every recipe.
        target: the unlabelled target domain (:data:`srlib.data_domains.TARGETS`): ``"camera"``
            (the simulated one) below the paper profile, RealSR v3 Canon at it.
    """

    profile: str
    method: str
    generalist: RealWorldConfig
    specialist: RealWorldConfig
    steps: int = 100_000
    batch_size: int = 8
    lr_patch: int = 48
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    milestones: tuple[int, ...] = (25_000,)
    gamma: float = 0.5
    ema_decay: float = 0.999
    wavelet_weight: float = 0.5
    wavelet_weights: tuple[float, float, float] = PDD_WAVELET_WEIGHTS
    percep_layers: dict = field(default_factory=lambda: dict(PDD_PERCEP_WEIGHTS))
    percep_weight: float = 1.0
    gan_weight: float = 1e-2
    inter_layers: dict = field(default_factory=lambda: dict(PDD_INTER_WEIGHTS))
    intra_layers: dict = field(default_factory=lambda: dict(PDD_INTRA_WEIGHTS))
    inter_weight: float = 1.0
    intra_weight: float = 1.0
    intra_measure: str = "ce"
    naive_weight: float = 1.0
    detach_source: bool | None = None
    d_init_steps: int = 300
    warmup_steps: int = 0
    disc_feat: int = 64
    vgg_weights: str = "auto"
    seed: int = 0
    precision: str = "auto"
    target: str = CAMERA

    def __post_init__(self):
        check_target(self.target)
        if self.method not in METHODS:
            raise ValueError(f"unknown PDD method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.intra_measure not in INTRA_MEASURES:
            raise ValueError(f"unknown intra_measure {self.intra_measure!r}; use one of "
                             f"{', '.join(INTRA_MEASURES)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if (self.lr_patch * self.scale) % 8:
            raise ValueError(f"HR patches of {self.lr_patch * self.scale} px do not fit the U-Net "
                             "discriminator (a multiple of 8 is needed); use an even lr_patch")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.generalist.role != "generalist" or self.specialist.role != "specialist":
            raise ValueError("generalist and specialist must be RealWorldConfigs of those roles")
        if min(self.d_init_steps, self.warmup_steps) < 0:
            raise ValueError("d_init_steps and warmup_steps must be >= 0")

    @property
    def scale(self) -> int:
        return self.specialist.scale

    @property
    def detach(self) -> bool:
        """Whether ``S(x_s)`` is a constant in the distance losses (see ``detach_source``)."""
        return (self.method == "static") if self.detach_source is None else bool(self.detach_source)

    @property
    def student_init(self) -> RealWorldConfig:
        """The pretrained model S starts from: the specialist (naive, static) or the generalist (EMA)."""
        return self.generalist if self.method == "ema" else self.specialist

    @classmethod
    def for_profile(cls, profile: str | Profile, method: str = "ema", *,
                    generalist: RealWorldConfig | None = None,
                    specialist: RealWorldConfig | None = None, **overrides: Any) -> "PDDConfig":
        """PDD at ``profile``.

        paper: the official option files (100k iterations, 8 + 8 patches of 48 LR pixels,
        U-Net D 64, d_init 300, warm-up 0 static / 5 EMA, every VGG layer of the paper).
        standard: a short adaptation of the shipped generalist and specialist: 100 steps of 2 + 2
        patches of 12 LR pixels (HR 48) at lr 2e-4, a 16-wide D trained alone for the first 10,
        and only the VGG layers of blocks 1-3 in every loss (the conv4/conv5 taps dropped for
        the CPU budget; said in the notebook). smoke: 3 steps, blocks 1-2.
        """
        p = get_profile(profile)
        if generalist is None:
            generalist = RealWorldConfig.for_profile(p, "generalist")
        if specialist is None:
            specialist = RealWorldConfig.for_profile(p, "specialist")
        steps = p.pick(smoke=3, standard=100, paper=100_000)
        values = dict(
            profile=p.name, method=method, generalist=generalist, specialist=specialist,
            steps=steps,
            batch_size=p.pick(smoke=1, standard=2, paper=8),
            lr_patch=p.pick(smoke=8, standard=12, paper=48),
            lr_g=p.pick(smoke=1e-4, standard=2e-4, paper=1e-4),
            lr_d=p.pick(smoke=1e-4, standard=2e-4, paper=1e-4),
            milestones=p.pick(smoke=(), standard=(int(steps * 0.75),), paper=(25_000,)),
            percep_layers=_upto(PDD_PERCEP_WEIGHTS, p.pick(smoke=2, standard=3, paper=5)),
            inter_layers=_upto(PDD_INTER_WEIGHTS, p.pick(smoke=2, standard=3, paper=5)),
            intra_layers=_upto(PDD_INTRA_WEIGHTS, p.pick(smoke=2, standard=3, paper=5)),
            d_init_steps=p.pick(smoke=1, standard=10, paper=300),
            warmup_steps=p.pick(smoke=0, standard=(2 if method == "ema" else 0),
                                paper=(5 if method == "ema" else 0)),
            disc_feat=p.pick(smoke=8, standard=16, paper=64),
            seed=specialist.esrgan.seed,
            target=default_target(p),
        )
        values.update(overrides)
        return cls(**values)


def _upto(weights: dict, block: int) -> dict:
    """The layers of ``weights`` in VGG19 blocks 1..``block`` (``conv3_4`` is in block 3)."""
    return {k: v for k, v in weights.items() if int(k[4]) <= block}


def _vgg_layers(cfg: PDDConfig) -> list[str]:
    layers = list(cfg.percep_layers)
    if cfg.method != "naive":
        layers += [*cfg.inter_layers, *cfg.intra_layers]
    return list(dict.fromkeys(layers))


def pdd_step(trainer: Trainer, batch: dict, step: int, *, cfg: PDDConfig, vgg: VGGFeatures,
             distance: PairwiseDistanceLoss | None) -> dict:
    """One PDD iteration (official ``SRGANRefModel.optimize_parameters``).

    Teacher predictions ``G(x_s), G(x_t)`` without gradients (the frozen generalist, or the EMA
    copy of S); student predictions ``S(x_s), S(x_t)``. After ``d_init_steps``: the S step through
    a frozen D with Eq. 9 on the source and (after the warm-up) Eq. 11 on the target (or, for
    ``"naive"``, Eq. 3's L1 to the teacher). Every step: the D step, vanilla GAN, HR source
    images real and the detached ``S(x_s)`` fake.
    """
    check_unlabelled(batch, cfg.lr_patch)
    S, D = trainer.models["S"], trainer.models["D"]
    teacher = trainer.ema["S"] if cfg.method == "ema" else trainer.models["G"]
    lr_s, hr_s, lr_t = batch["lr_s"], batch["hr_s"], batch["lr_t"]
    n = lr_s.shape[0]
    x = torch.cat([lr_s, lr_t])
    with torch.no_grad():
        g_s, g_t = teacher(x).chunk(2)
    s_s, s_t = S(x).chunk(2)
    out: dict[str, torch.Tensor] = {}
    if step >= cfg.d_init_steps:
        adapting = step >= cfg.d_init_steps + cfg.warmup_steps
        with trainer.frozen("D"):
            l_pix = cfg.wavelet_weight * wavelet_loss(s_s.float(), hr_s, cfg.wavelet_weights)
            use_distance = adapting and cfg.method != "naive" and distance is not None
            f_s = vgg(torch.cat([s_s, s_t]) if use_distance else s_s)
            with torch.no_grad():
                f_hr = vgg(hr_s)
            l_percep = s_s.new_zeros((), dtype=torch.float32)
            for k, w in cfg.percep_layers.items():
                l_percep = l_percep + w * feature_distance(f_s[k][:n], f_hr[k], "l1")
            l_percep = cfg.percep_weight * l_percep
            l_g = l_pix + l_percep
            if use_distance:
                with torch.no_grad():
                    f_g = vgg(torch.cat([g_s, g_t]))
                f_ss = {k: v[:n] for k, v in f_s.items()}
                f_st = {k: v[n:] for k, v in f_s.items()}
                f_gs = {k: v[:n] for k, v in f_g.items()}
                f_gt = {k: v[n:] for k, v in f_g.items()}
                l_inter, l_intra = distance.from_features(f_st, f_gt, f_ss, f_gs)
                l_g = l_g + l_inter + l_intra
                out.update(l_inter=l_inter.detach(), l_intra=l_intra.detach())
            if cfg.method == "naive":
                l_naive = cfg.naive_weight * l1_loss(s_t.float(), g_t.float())
                l_g = l_g + l_naive
                out["l_naive"] = l_naive.detach()
            fake = torch.cat([s_s, s_t]) if (adapting and cfg.method != "naive") else s_s
            l_gan = cfg.gan_weight * g_loss("vanilla", D(fake).float())
            l_g = l_g + l_gan
            trainer.optimize(l_g, "S")
        out.update(l_g_pix=l_pix.detach(), l_g_percep=l_percep.detach(), l_g_gan=l_gan.detach())
    real, fake_d = D(hr_s).float(), D(s_s.detach()).float()
    l_d = d_loss("vanilla", real, fake_d)
    trainer.optimize(l_d, "D")
    out.update(l_d=l_d.detach(), out_d_real=real.detach().mean(), out_d_fake=fake_d.detach().mean())
    return out


def train_pdd(cfg: PDDConfig, *, generalist: nn.Module | None = None,
              specialist: nn.Module | None = None, device: str | torch.device = "auto",
              cache_dir=None, progress: bool = True, source=None, target_lr=None) -> Trained:
    """Adapt S by ``cfg.method`` on the unlabelled target domain, or load it from the model cache.

    ``generalist`` / ``specialist``: the pretrained models of ``cfg.generalist`` /
    ``cfg.specialist`` (e.g. shipped course checkpoints); when ``None`` they are trained (or
    loaded from the cache) by :func:`~srlib.recipes.realworld.train_realworld`, and only on a
    cache miss. ``source`` (``{name: HR}``) and ``target_lr`` (``{name: LR}``, LR images only)
    replace the config's domains (tests; give them a ``cache_dir`` of their own). Returns S.
    """
    from ..archs.discriminators import UNetDiscriminatorSN

    cfg = dataclasses.replace(cfg, vgg_weights=resolve_vgg_weights(cfg.vgg_weights))
    dev = device if isinstance(device, torch.device) else pick_device(device)
    start = time.time()

    def pretrained(model, rcfg):
        if model is None:
            model = train_realworld(rcfg, device=dev, progress=progress).model
        return model

    def build_and_train(c: PDDConfig) -> Trainer:
        g_model = pretrained(generalist, c.generalist)
        init = g_model if c.method == "ema" else pretrained(specialist, c.specialist)
        torch.manual_seed(c.seed)
        S = build_generator(c.student_init.esrgan.psnr)
        S.load_state_dict(init.state_dict())
        D = UNetDiscriminatorSN(3, c.disc_feat, skip_connection=True)
        models = {"S": S, "D": D}
        if c.method != "ema":
            G = copy.deepcopy(g_model).eval().requires_grad_(False)
            models["G"] = G
        vgg = VGGFeatures(_vgg_layers(c), weights=c.vgg_weights, seed=c.seed).to(dev)
        distance = None
        if c.method != "naive":
            distance = PairwiseDistanceLoss(c.inter_layers, c.intra_layers, backbone=vgg,
                                            inter_weight=c.inter_weight, intra_weight=c.intra_weight,
                                            intra_measure=c.intra_measure, detach_source=c.detach)
        opt_s = torch.optim.Adam(S.parameters(), lr=c.lr_g, betas=tuple(c.betas))
        opt_d = torch.optim.Adam(D.parameters(), lr=c.lr_d, betas=tuple(c.betas))
        sched = {name: torch.optim.lr_scheduler.MultiStepLR(o, list(c.milestones), c.gamma)
                 for name, o in (("S", opt_s), ("D", opt_d))}
        step_fn = _PDDStep(c, vgg, distance)
        trainer = Trainer(models, {"S": opt_s, "D": opt_d}, step_fn, schedulers=sched,
                          ema={"S": c.ema_decay} if c.method == "ema" else None,
                          device=dev, progress=progress, seed=c.seed, precision=c.precision,
                          log_every=max(1, c.steps // 200))
        src = source
        if src is None:
            src = source_patches(c.specialist.source, c.scale, c.lr_patch, seed=c.seed)
        tgt = target_lr if target_lr is not None else target_train_lr(c.scale, c.target)
        batches = MixedBatches(src, tgt, scale=c.scale, lr_patch=c.lr_patch,
                               batch_size=c.batch_size, seed=c.seed)
        trainer.fit(batches, c.steps)
        return trainer

    run = cached_train(cfg, build_and_train, cache_dir=cache_dir)
    model = load_generator(cfg.student_init.esrgan.psnr, run["S"], dev)
    return Trained(model, run, cfg, time.time() - start)


class _PDDStep:
    """:func:`pdd_step` bound to its config and losses (a plain callable for the trainer)."""

    def __init__(self, cfg: PDDConfig, vgg: VGGFeatures, distance: PairwiseDistanceLoss | None):
        self.cfg, self.vgg, self.distance = cfg, vgg, distance

    def __call__(self, trainer: Trainer, batch: dict, step: int) -> dict:
        return pdd_step(trainer, batch, step, cfg=self.cfg, vgg=self.vgg, distance=self.distance)


__all__ = ["METHODS", "PDD_PERCEP_WEIGHTS", "PDDConfig", "pdd_step", "train_pdd"]
