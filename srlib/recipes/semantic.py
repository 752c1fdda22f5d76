"""Semantic SR by self-distillation: the discriminator as the feature extractor (notebook 04).

Park (2024), "Semantic Super-Resolution via Self-Distillation and Adversarial Learning",
IEEE Access 12:2361-2370, doi:10.1109/ACCESS.2023.3349023 (known here through a blog post; the
paper itself is not available offline). The generator objective as the post writes it:

    L_G = L_pixel(x_HR, x_SR) + kappa * L_semantic(x_SR, y_SR),
    L_pixel = 1/(WH) sum |x - y|                                   (L1),
    L_semantic(x, y) = BCE(D(x), 0) + BCE(D(y), 1).

Read literally, ``L_semantic`` is the discriminator's own real/fake loss. The course's main
reading (method ``"semantic"``): D is a category-aware real/fake discriminator trained with that
BCE (:class:`~srlib.archs.category_disc.CategoryDiscriminator`, one head per category), and
the generator's semantic term is the L1 distance between D's trunk features of SR and HR
(:func:`srlib.losses.semantic_loss`): the GAN's own discriminator supplies the features an
ImageNet VGG would, with no pretrained network ("self-distillation"). The literal adversarial
reading (method ``"literal"``: the generator minimises ``kappa * BCE(D_c(SR), 1)``) runs as an
ablation. The baselines of the seed's table, with the same generator, data, steps and seed:

- ``"edsr"``: vanilla EDSR, L1 only (Lim et al. 2017, arXiv:1707.02921);
- ``"vgg"``: VGG-based SR: L1 + VGG19 perceptual loss (ImageNet weights when cached, else the
  seeded random stand-in) + an unconditional GAN (one head);
- ``"multiclass"``: multi-class GAN: L1 + adversarial loss from one whole discriminator per
  category (:class:`~srlib.archs.category_disc.MultiDiscriminator`), no feature matching.

Every method starts from the same L1-trained EDSR (``warmup_steps``, one shared cache entry),
then trains ``steps`` more with its own loss: the "edsr" row simply continues with L1, so all
rows have seen the same number of generator updates and the same batches. Each iteration is a
G step through a frozen D, then a D step on the detached SR batch (BasicSR's ``SRGANModel``
order, as :mod:`.srgan`); D always minimises ``BCE(D_c(HR), 1) + BCE(D_c(SR), 0)`` with the
head ``c`` of each image's category. Adam with a step (MultiStep) schedule for both networks.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn

from ..losses import PerceptualLoss, d_loss, g_loss, l1_loss, semantic_loss
from ..profiles import Profile, get_profile
from ..runtime import PRECISIONS, pick_device
from ..train import Trainer, cached_train
from .psnr import Trained, generator_state, load_strict

METHODS = ("edsr", "vgg", "multiclass", "semantic", "literal")
METHOD_LABELS = {
    "edsr": "vanilla EDSR (L1)",
    "vgg": "VGG-based SR",
    "multiclass": "multi-class GAN",
    "semantic": "proposed (D-feature self-distillation)",
    "literal": "literal reading (adversarial, ablation)",
}
# Fields that only some methods read; reset to their defaults elsewhere so that, e.g., every
# kappa of the sweep shares the "edsr" model and the warm start is one cache entry.
_USES = {
    "edsr": set(),
    "vgg": {"percep_layers", "percep_weight", "gan_weight", "vgg_weights", "disc"},
    "multiclass": {"gan_weight", "disc"},
    "semantic": {"kappa", "feature_weights", "disc"},
    "literal": {"kappa", "disc"},
}
_DISC_FIELDS = ("disc_feat", "disc_stages", "lr_d")


@dataclass(frozen=True)
class SemanticConfig:
    """One training run of notebook 04 (the model cache key is built from it).

    Attributes:
        profile: the profile the values came from.
        method: one of :data:`METHODS`.
        categories: category names in label order (:mod:`srlib.data_categories`).
        scale, num_feat, num_block, res_scale: the EDSR generator.
        disc_feat, disc_stages: the discriminator trunk (width of stage 0, number of stages).
        feature_weights: weight of each trunk stage in the semantic loss (one per stage; 0 skips).
        kappa: weight of the semantic term (``"semantic"``) or of the literal adversarial term
            (``"literal"``).
        gan_weight: adversarial weight of ``"vgg"`` and ``"multiclass"`` (the proposed method's
            L_G has no adversarial term; its D is trained all the same).
        percep_layers, percep_weight, vgg_weights: the VGG19 loss of ``"vgg"`` (``"auto"`` is
            resolved when training, so the cache never mixes ImageNet and random features).
        warmup_steps: L1 steps of the shared starting model; steps: steps of this method after it.
        batch_size: images per step (a multiple of the number of categories: balanced batches).
        lr_patch: LR patch side (HR = lr_patch * scale, a multiple of 2**disc_stages).
        lr_g, lr_d, betas, milestones, gamma: Adam and the step schedule (milestones are
            fractions of the run, so a longer run keeps the same shape).
        n_text: rendered text images in the training split.
        seed: initialisation and patch sampling.
        precision: forward-pass policy of the trainer (``"auto"``, ``"fp32"``, ``"bf16"``).
    """

    profile: str
    method: str = "semantic"
    categories: tuple[str, ...] = ("text", "photos", "textures")
    scale: int = 4
    num_feat: int = 64
    num_block: int = 16
    res_scale: float = 1.0
    disc_feat: int = 64
    disc_stages: int = 4
    feature_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    kappa: float = 1.0
    gan_weight: float = 0.0
    percep_layers: dict = field(default_factory=lambda: {"conv5_4": 1.0})
    percep_weight: float = 1.0
    vgg_weights: str = "auto"
    warmup_steps: int = 100_000
    steps: int = 200_000
    SEPARATE_RUNS: ClassVar[tuple[str, ...]] = ("warmup_steps",)  # the L1 start is a run of its own (dry_run.shrink)
    batch_size: int = 16
    lr_patch: int = 32
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    milestones: tuple[float, ...] = (0.5,)
    gamma: float = 0.5
    n_text: int = 200
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        from ..data_categories import _check_categories

        _check_categories(self.categories)
        k = len(self.categories)
        if self.batch_size < k or self.batch_size % k:
            raise ValueError(f"batch_size {self.batch_size} must be a positive multiple of the "
                             f"{k} categories (balanced batches), e.g. {k * max(1, self.batch_size // k)}")
        if self.steps < 0 or self.warmup_steps < 0 or self.steps + self.warmup_steps < 1:
            raise ValueError(f"steps ({self.steps}) and warmup_steps ({self.warmup_steps}) must be "
                             ">= 0 and not both 0")
        if len(self.feature_weights) != self.disc_stages:
            raise ValueError(f"feature_weights has {len(self.feature_weights)} entries for "
                             f"{self.disc_stages} discriminator stages; give one weight per stage")
        if self.method == "semantic" and not any(w > 0 for w in self.feature_weights):
            raise ValueError("the semantic loss needs at least one stage with a weight > 0")
        div = 2 ** self.disc_stages
        if (self.lr_patch * self.scale) % div:
            raise ValueError(f"HR patches of {self.lr_patch * self.scale} px are not divisible by "
                             f"2**disc_stages = {div}; change lr_patch or disc_stages")
        if any(not 0.0 < m < 1.0 for m in self.milestones):
            raise ValueError(f"milestones are fractions of the run in (0, 1), got {self.milestones}")
        if self.kappa < 0 or self.gan_weight < 0 or self.percep_weight < 0:
            raise ValueError("kappa, gan_weight and percep_weight must be >= 0")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")

    @property
    def hr_patch(self) -> int:
        return self.lr_patch * self.scale

    @property
    def label(self) -> str:
        return METHOD_LABELS[self.method]

    @classmethod
    def for_profile(cls, profile: str | Profile, method: str = "semantic",
                    **overrides: Any) -> "SemanticConfig":
        """The recipe at ``profile``; smoke / standard / paper side by side.

        paper: EDSR baseline (64 x 16), a 64-wide 5-stage D, 128-px HR patches, batch 16, Adam
        1e-4 halved at half of each run, 100k L1 steps then 200k, faces among the categories.
        standard: a 32 x 4 EDSR and a 16-wide 4-stage D on 64-px HR patches (text strokes of
        12-31 px fit in a patch), batch 12 (4 per category), 500 shared L1 steps then 200 per
        method, VGG loss at conv2_2; sized to keep notebook 04 within 10 minutes on 2 CPU cores
        (see the notebook's timing note). :func:`checkpoint_config` is the long schedule.
        smoke: tiny networks and a handful of steps so that every code path runs.
        """
        from ..data_categories import categories_for_profile

        p = get_profile(profile)
        stages = p.pick(smoke=3, standard=4, paper=5)
        values = dict(
            profile=p.name, method=method, categories=categories_for_profile(p.name),
            scale=p.scale,
            num_feat=p.pick(smoke=8, standard=32, paper=64),
            num_block=p.pick(smoke=1, standard=4, paper=16),
            disc_feat=p.pick(smoke=8, standard=16, paper=64),
            disc_stages=stages,
            feature_weights=tuple(1.0 for _ in range(stages)),
            kappa=1.0,
            gan_weight=p.pick(smoke=5e-3, standard=5e-3, paper=5e-3),
            percep_layers=p.pick(smoke={"conv2_2": 1.0}, standard={"conv2_2": 1.0},
                                 paper={"conv5_4": 1.0}),
            percep_weight=p.pick(smoke=0.1, standard=0.1, paper=1.0),
            warmup_steps=p.pick(smoke=6, standard=500, paper=100_000),
            steps=p.pick(smoke=3, standard=200, paper=200_000),
            batch_size=p.pick(smoke=3, standard=12, paper=16),
            lr_patch=p.pick(smoke=8, standard=16, paper=32),
            lr_g=p.pick(smoke=2e-4, standard=5e-4, paper=1e-4),
            lr_d=p.pick(smoke=2e-4, standard=2e-4, paper=1e-4),
            n_text=p.pick(smoke=4, standard=24, paper=200),
        )
        values.update(overrides)
        return cls(**values)


def canonical(cfg: SemanticConfig) -> SemanticConfig:
    """``cfg`` with the fields its method does not read reset to their defaults (the cache key).

    So a kappa sweep never retrains the "edsr" model, and changing the VGG layers never retrains
    the proposed method.
    """
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for f in dataclasses.fields(SemanticConfig) if f.name != "profile"}
    uses = _USES[cfg.method]
    reset = {}
    for name in ("kappa", "feature_weights", "gan_weight", "percep_layers", "percep_weight", "vgg_weights"):
        if name not in uses:
            reset[name] = defaults[name]
    if "feature_weights" not in uses:
        reset["feature_weights"] = tuple(1.0 for _ in range(cfg.disc_stages))
    if "disc" not in uses:
        reset.update({n: defaults[n] for n in _DISC_FIELDS})
        reset["disc_stages"] = cfg.disc_stages  # keeps feature_weights' length valid
    return dataclasses.replace(cfg, **reset)


def warm_config(cfg: SemanticConfig) -> SemanticConfig:
    """The shared starting point: ``edsr`` for ``warmup_steps`` steps, from scratch."""
    return canonical(dataclasses.replace(cfg, method="edsr", steps=cfg.warmup_steps, warmup_steps=0))


def resolve_vgg_weights(weights: str) -> str:
    """``"auto"`` -> ``"imagenet"`` when the VGG19 file is cached, else ``"random"``."""
    from .srgan import resolve_vgg_weights as _resolve

    return _resolve(weights)


def build_generator(cfg: SemanticConfig) -> nn.Module:
    """The EDSR generator (BasicSR's key names; the seed's baseline is vanilla EDSR)."""
    from ..archs.edsr import EDSR

    return EDSR(3, 3, num_feat=cfg.num_feat, num_block=cfg.num_block, upscale=cfg.scale,
                res_scale=cfg.res_scale)


def build_discriminator(cfg: SemanticConfig) -> nn.Module | None:
    """The method's discriminator, freshly initialised from ``cfg.seed`` (None for ``"edsr"``).

    ``"vgg"``: one head (unconditional); ``"multiclass"``: one network per category;
    ``"semantic"`` / ``"literal"``: shared trunk, one head per category.
    """
    from ..archs.category_disc import CategoryDiscriminator, MultiDiscriminator

    if cfg.method == "edsr":
        return None
    torch.manual_seed(cfg.seed + 1)
    k = len(cfg.categories)
    kw = dict(num_feat=cfg.disc_feat, num_stages=cfg.disc_stages)
    if cfg.method == "vgg":
        return CategoryDiscriminator(1, **kw)
    if cfg.method == "multiclass":
        return MultiDiscriminator(k, **kw)
    return CategoryDiscriminator(k, **kw)


def _disc_labels(cfg_or_method, labels: torch.Tensor) -> torch.Tensor:
    method = cfg_or_method if isinstance(cfg_or_method, str) else cfg_or_method.method
    return torch.zeros_like(labels) if method == "vgg" else labels


def semantic_step(trainer: Trainer, batch: dict, step: int, *, method: str, kappa: float = 0.0,
                  gan_weight: float = 0.0, feature_weights=None, percep: nn.Module | None = None,
                  percep_weight: float = 0.0) -> dict:
    """One iteration of ``method``: G step through a frozen D, then the D step.

    G: ``L1(sr, hr)`` plus

    - ``"vgg"``: ``percep_weight * L_VGG(sr, hr) + gan_weight * BCE(D(sr), 1)``;
    - ``"multiclass"``: ``gan_weight * BCE(D_c(sr), 1)`` (D_c: category c's own network);
    - ``"semantic"``: ``kappa * sum_s w_s mean|F_s(sr) - F_s(hr)|`` over D's trunk stages;
    - ``"literal"``: ``kappa * BCE(D_c(sr), 1)``.

    D (every method but ``"edsr"``): ``BCE(D_c(hr), 1) + BCE(D_c(sr.detach()), 0)``, the
    blog's ``L_semantic`` formula taken as D's objective.
    """
    G = trainer.models["G"]
    lr, hr, labels = batch["lr"], batch["hr"], batch["labels"]
    sr = G(lr)
    l_pix = l1_loss(sr, hr)
    out = {"l_g_pix": l_pix.detach()}
    if method == "edsr":
        trainer.optimize(l_pix, "G")
        return out
    D = trainer.models["D"]
    dl = _disc_labels(method, labels)
    with trainer.frozen("D"):
        l_g = l_pix
        if method == "vgg":
            l_p = percep_weight * percep.total(sr, hr)
            l_a = gan_weight * g_loss("vanilla", D(sr, dl).float())
            l_g = l_g + l_p + l_a
            out.update(l_g_percep=l_p.detach(), l_g_gan=l_a.detach())
        elif method == "multiclass":
            l_a = gan_weight * g_loss("vanilla", D(sr, dl).float())
            l_g = l_g + l_a
            out["l_g_gan"] = l_a.detach()
        elif method == "semantic":
            l_s = kappa * semantic_loss(lambda x: D.features(x, torch.cat([dl, dl])), sr, hr,
                                        feature_weights)
            l_g = l_g + l_s
            out["l_g_semantic"] = l_s.detach()
        elif method == "literal":
            l_a = kappa * g_loss("vanilla", D(sr, dl).float())
            l_g = l_g + l_a
            out["l_g_gan"] = l_a.detach()
        else:
            raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        trainer.optimize(l_g, "G")
    real, fake = D(hr, dl).float(), D(sr.detach(), dl).float()
    l_d = d_loss("vanilla", real, fake)
    trainer.optimize(l_d, "D")
    out.update(l_d=l_d.detach(), out_d_real=real.detach().mean(), out_d_fake=fake.detach().mean())
    return out


def make_batch_fn(cfg: SemanticConfig, images=None):
    """``batch_fn(step) -> {"lr", "hr", "labels"}``: balanced category batches (pure in step)."""
    from ..data_categories import CategoryPatches, category_images

    if images is None:
        images = {c: category_images(c, "train", n_text=cfg.n_text, seed=cfg.seed)
                  for c in cfg.categories}
    patches = CategoryPatches(images, cfg.scale, cfg.hr_patch, seed=cfg.seed)
    return partial(_sample, patches, cfg.batch_size)


def _sample(patches, batch_size: int, step: int) -> dict:
    lr, hr, labels = patches.sample_batch(step, batch_size)
    return {"lr": lr, "hr": hr, "labels": labels}


def _scheduler(opt, cfg: SemanticConfig, steps: int):
    marks = sorted({max(1, int(round(m * steps))) for m in cfg.milestones})
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=marks, gamma=cfg.gamma)


def load_generator(cfg: SemanticConfig, state, device) -> nn.Module:
    """Build ``cfg``'s EDSR and load ``state`` strictly (a clear error when it does not fit)."""
    return load_strict(build_generator(cfg), state, device, f"EDSR {cfg.num_feat}x{cfg.num_block}")


def load_discriminator(cfg: SemanticConfig, run, device) -> nn.Module | None:
    """The trained discriminator of a run (eval mode), or None for ``"edsr"``."""
    D = build_discriminator(cfg)
    if D is None:
        return None
    D.load_state_dict(run["D"])
    return D.to(device).eval()


def train_semantic(cfg: SemanticConfig, *, device: str | torch.device = "auto", cache_dir=None,
                   progress: bool = True, images=None) -> Trained:
    """Train ``cfg`` (after its shared L1 warm start), or load it from the model cache.

    ``images`` (``{category: {name: image}}``) replaces the embedded training data (tests); use
    it only with a ``cache_dir`` of its own. The returned run holds ``G`` and (GAN methods)
    ``D``; its history has ``l_g_pix`` and the method's terms per logged step.
    """
    cfg = canonical(dataclasses.replace(cfg, vgg_weights=resolve_vgg_weights(cfg.vgg_weights))
                    if cfg.method == "vgg" else cfg)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    start = time.time()
    init = None
    if cfg.warmup_steps > 0:
        init = train_semantic(warm_config(cfg), device=dev, cache_dir=cache_dir,
                              progress=progress, images=images)
    if cfg.steps == 0:
        return Trained(init.model, init.run, cfg, time.time() - start)

    def build_and_train(c: SemanticConfig) -> Trainer:
        torch.manual_seed(c.seed)
        G = build_generator(c)
        if init is not None:
            G.load_state_dict(generator_state(init.run))
        D = build_discriminator(c)
        models, opts = {"G": G}, {"G": torch.optim.Adam(G.parameters(), lr=c.lr_g, betas=tuple(c.betas))}
        if D is not None:
            models["D"] = D
            opts["D"] = torch.optim.Adam(D.parameters(), lr=c.lr_d, betas=tuple(c.betas))
        percep = None
        if c.method == "vgg":
            percep = PerceptualLoss(dict(c.percep_layers), weights=c.vgg_weights, criterion="l1",
                                    seed=c.seed).to(dev)
        step = partial(semantic_step, method=c.method, kappa=c.kappa, gan_weight=c.gan_weight,
                       feature_weights=list(c.feature_weights), percep=percep,
                       percep_weight=c.percep_weight)
        trainer = Trainer(models, opts, step,
                          schedulers={n: _scheduler(o, c, c.steps) for n, o in opts.items()},
                          device=dev, progress=progress, seed=c.seed, precision=c.precision,
                          log_every=max(1, c.steps // 200))
        trainer.fit(make_batch_fn(c, images), c.steps)
        return trainer

    run = cached_train(cfg, build_and_train, cache_dir=cache_dir)
    model = load_generator(cfg, generator_state(run), dev)
    return Trained(model, run, cfg, time.time() - start)


def method_configs(base: SemanticConfig, methods=("edsr", "vgg", "multiclass", "semantic", "literal")
                   ) -> dict[str, SemanticConfig]:
    """The same run for each method: everything but ``method`` shared with ``base``."""
    return {m: dataclasses.replace(base, method=m) for m in methods}


def kappa_configs(base: SemanticConfig, kappas) -> dict[float, SemanticConfig]:
    """The proposed method at each kappa (kappa 0 is the "edsr" run: G then gets only L1)."""
    return {float(k): (dataclasses.replace(base, method="edsr") if float(k) == 0.0 else
                       dataclasses.replace(base, method="semantic", kappa=float(k)))
            for k in kappas}


# ----------------------------------------------------------------------------- course checkpoints
#: The models notebook 04 uses: name -> (method, kappa or None for the profile's default).
COURSE_MODELS = {
    "semantic_edsr": ("edsr", None),
    "semantic_vgg": ("vgg", None),
    "semantic_multiclass": ("multiclass", None),
    "semantic_proposed": ("semantic", None),
    "semantic_literal": ("literal", None),
    "semantic_kappa_0.3": ("semantic", 0.3),
    "semantic_kappa_3": ("semantic", 3.0),
}
#: The long schedule of the shipped models (the standard profile's own: 500 + 200 steps).
LONG_SCHEDULE = {"warmup_steps": 3000, "steps": 600}


def model_config(name: str, profile: str, *, long: bool = False) -> SemanticConfig:
    """The config of course model ``name`` at ``profile``; ``long``: the checkpoint schedule
    (standard profile only)."""
    if name not in COURSE_MODELS:
        raise KeyError(f"no notebook-04 model {name!r}; known: {', '.join(COURSE_MODELS)}")
    method, kappa = COURSE_MODELS[name]
    extra = {} if kappa is None else {"kappa": kappa}
    if long and get_profile(profile).name == "standard":
        extra.update(LONG_SCHEDULE)
    return SemanticConfig.for_profile(profile, method, **extra)


def checkpoint_config(name: str, profile: str) -> SemanticConfig:
    """What :func:`srlib.checkpoints.course_config` returns: the long schedule at standard."""
    return model_config(name, profile, long=True)


def _arch(cfg: SemanticConfig) -> tuple[str, dict]:
    return "EDSR", {"num_in_ch": 3, "num_out_ch": 3, "num_feat": cfg.num_feat,
                    "num_block": cfg.num_block, "upscale": cfg.scale, "res_scale": cfg.res_scale}


def _train_for_registry(cfg, *, device, cache_dir=None, progress=True, checkpoints_dir=None):
    return train_semantic(cfg, device=device, cache_dir=cache_dir, progress=progress)


def register_course_models(register) -> None:
    """Hook of :mod:`srlib.checkpoints`: register notebook 04's models with their long schedule."""
    from ..checkpoints import CourseModel

    for name, (method, kappa) in COURSE_MODELS.items():
        desc = f"EDSR 32x4, {METHOD_LABELS[method]}" + (f", kappa {kappa}" if kappa is not None else "")
        register(CourseModel(name, ("04",), desc, partial(checkpoint_config, name), _train_for_registry,
                             _arch))


def obtain_models(names, profile: str, *, checkpoints: str = "auto", device="auto",
                  progress: bool = True, cache_dir=None, directory=None, log=print,
                  adjust=None) -> tuple[dict, str]:
    """The generators ``names`` for notebook 04, all from ONE schedule so that rows compare.

    At the standard profile with ``checkpoints="auto"`` the shipped long-schedule models are used
    when every one of ``names`` is shipped with exactly its config; if any is missing, all are
    trained with the profile's own (in-budget) schedule and the reason is printed.
    ``"retrain"`` trains the long schedule (slow: that is the checkpoint build's job). Other
    profiles always train their own schedule. Returns ``({name: Trained}, source)`` with
    ``source`` one of ``"shipped"``, ``"trained (long schedule)"``, ``"trained"``.
    ``adjust(cfg) -> cfg`` changes every config that is trained here (the paper profile's dry run
    passes :func:`srlib.dry_run.shrink`); shipped models are never adjusted.
    """
    from .. import checkpoints as ck

    p = get_profile(profile).name
    names = list(names)
    if checkpoints not in ck.MODES:
        raise ValueError(f"checkpoints={checkpoints!r}; use one of {', '.join(ck.MODES)}")
    if p == "standard" and checkpoints == "auto":
        reasons = [r for r in (ck.why_not_shipped(n, checkpoint_config(n, p), directory=directory)
                               for n in names) if r]
        if not reasons:
            return ({n: ck.obtain(n, checkpoint_config(n, p), mode="auto", device=device,
                                  progress=progress, cache_dir=cache_dir, directory=directory, log=log)
                     for n in names}, "shipped")
        log(f"not every notebook-04 model is shipped ({reasons[0]}"
            + (f"; and {len(reasons) - 1} more" if len(reasons) > 1 else "")
            + "): training all of them with the standard profile's own schedule")
    long = p == "standard" and checkpoints == "retrain"
    adjust = adjust or (lambda cfg: cfg)
    out = {n: train_semantic(adjust(model_config(n, p, long=long)), device=device, cache_dir=cache_dir,
                             progress=progress) for n in names}
    return out, "trained (long schedule)" if long else "trained"
