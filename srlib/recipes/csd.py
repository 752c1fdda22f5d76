"""CSD: contrastive self-distillation of a channel-splitting EDSR (notebook 05).

Wang, Lin, Qu, Wu, Zhang, Xie & Yao, "Towards Compact Single Image Super-Resolution via
Contrastive Self-distillation", IJCAI 2021 (https://arxiv.org/abs/2105.11683).

One EDSR holds both networks. The teacher is the full width; the student of width ``w``
(0.25) is the leading slice of every weight (:meth:`srlib.archs.edsr.EDSR.forward` with
``width=w``, paper Sec. 3.1 "CSSR-Net"). Both are trained together on one objective (paper
Eq. 4):

    L = L1(Y_S, Y) + lambda_TL * L1(Y_T, Y) + lambda_CL * L_CL(Y_S, Y_T, Y_neg)

with ``L_CL`` the contrastive loss of Eq. 3 (:class:`srlib.losses.ContrastiveLoss`): VGG19
distances from the student to the teacher (the positive, detached) over its distances to the
negatives, which are bicubic enlargements of LR images of the batch. Because the student's
weights are the teacher's, the student's gradients land on the shared leading slices only, and
the teacher's on everything.

Details taken from the official code (``slim_contrast_trainer.py``, ``option.py`` and the
training command in ``demo.sh``):

- images live in 0..255 (``rgb_range=255``): the two L1 terms are L1 distances of 0..255
  tensors, and VGG19 gets the 0..255 images without ImageNet normalisation. Here the networks
  work in [0, 1]; :attr:`CSDConfig.rgb_range` multiplies the L1 terms by 255 and the
  contrastive loss gets ``input_range=255, use_input_norm=False``, which reproduces the
  official loss value exactly, so that ``lambda_CL = 200`` means what it means there;
- negatives: the first ``K`` LR images of the batch (``lr[randperm(K)]``; the order does not
  change the sum over negatives) enlarged with torch's bicubic (``nn.Upsample``); each is
  compared with every student output; ``K = 10`` (``--neg_num 10``);
- ``lambda_TL = 1`` (``--t_lambda 1``), ``lambda_CL = 200`` (``--contra_lambda 200``), teacher
  detached in L_CL (``--contrast_t_detach``); VGG layers relu1_1..relu5_1 weighted
  1/32, 1/16, 1/8, 1/4, 1; ``eps = 1e-7``;
- Adam (lr 1e-4, betas 0.9/0.999, eps 1e-8), batch 16, 192x192 HR patches, 400 epochs of
  1000 iterations with the lr divided by 10 after epoch 200; EDSR 256 x 32, res_scale 0.1;
  student width 0.25. (The official trainer starts from a pretrained EDSR teacher when one is
  present; ``init="scratch"`` here trains both from random weights, as the comparisons of
  notebook 05 need: every run starts from the same point.)

The comparison runs of notebook 05 are all :class:`CSDConfig` values that differ in
``method`` (and ``lambda_cl``): ``"teacher"`` (full width, L1 only), ``"student"`` (a separate
EDSR of width ``w``, L1 only), ``"joint"`` (Eq. 4; ``lambda_cl=0`` is joint training without
the contrastive term). The teacher sliced without joint training needs no run of its own: it
is the teacher run evaluated at width ``w``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..archs.edsr import EDSR
from ..losses import CSD_LAYER_WEIGHTS, ContrastiveLoss, l1_loss
from ..profiles import Profile, get_profile
from ..runtime import pick_device
from ..train import Trainer, cached_train
from .psnr import Trained, _check_schedule, load_strict, make_batch_fn, make_scheduler

METHODS = ("teacher", "student", "joint")


@dataclass(frozen=True)
class CSDConfig:
    """One CSD-family training run (the model cache is keyed by it).

    Attributes:
        profile: profile name the values came from.
        method: ``"teacher"`` (full-width EDSR, L1), ``"student"`` (a separate EDSR with
            ``num_feat * width`` channels, L1) or ``"joint"`` (one channel-splitting EDSR,
            paper Eq. 4).
        scale, num_feat, num_block, res_scale: the EDSR (teacher) size.
        width: student width multiplier (0.25: 1/4 of the channels, ~1/16 of the weights).
        lambda_tl: weight of the teacher's L1 term (1, official).
        lambda_cl: weight of the contrastive term (200, official; 0: joint training only).
        neg_num: number of negatives K (10, official); must not exceed ``batch_size``.
        cl_layers: VGG19 layer -> weight of the contrastive loss.
        vgg_weights: ``"imagenet"``, ``"random"`` or a path; ``"auto"`` is resolved when
            training, so the cache never mixes backbones.
        vgg_input_norm, vgg_input_range: what VGG sees (official: no normalisation, 0..255).
        rgb_range: the L1 terms are measured on 0..rgb_range values (255, official).
        steps, batch_size, lr_patch, lr, betas, schedule, milestones, gamma, period, eta_min:
            optimisation (Adam; ``schedule`` as :func:`srlib.recipes.psnr.make_scheduler`).
        dataset, seed: training images and seed (initialisation and patches).
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (:class:`srlib.train.Trainer`).
    """

    profile: str
    method: str = "joint"
    scale: int = 4
    num_feat: int = 256
    num_block: int = 32
    res_scale: float = 0.1
    width: float = 0.25
    lambda_tl: float = 1.0
    lambda_cl: float = 200.0
    neg_num: int = 10
    cl_layers: dict = field(default_factory=lambda: dict(CSD_LAYER_WEIGHTS))
    vgg_weights: str = "auto"
    vgg_input_norm: bool = False
    vgg_input_range: float = 255.0
    rgb_range: float = 255.0
    steps: int = 400_000
    batch_size: int = 16
    lr_patch: int = 48
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "multistep"
    milestones: tuple[int, ...] = (200_000,)
    gamma: float = 0.1
    period: int = 0
    eta_min: float = 0.0
    ema_decay: float | None = None
    dataset: str = "photos"
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown CSD method {self.method!r}; use one of {', '.join(METHODS)}")
        _check_schedule(self)
        ch = self.num_feat * self.width
        if not 0 < self.width <= 1 or abs(ch - round(ch)) > 1e-6:
            raise ValueError(f"width {self.width} with num_feat={self.num_feat} gives {ch} channels; "
                             "use a width in (0, 1] for which num_feat * width is a whole number")
        if self.method == "joint" and self.lambda_cl > 0:
            if not 1 <= self.neg_num <= self.batch_size:
                raise ValueError(f"neg_num={self.neg_num}: the negatives are LR images of the batch, "
                                 f"so 1 <= neg_num <= batch_size ({self.batch_size}); raise batch_size "
                                 "or lower neg_num")
        if self.lambda_cl < 0 or self.lambda_tl < 0:
            raise ValueError(f"lambda_cl and lambda_tl must be >= 0 (got {self.lambda_cl}, {self.lambda_tl})")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"unknown precision {self.precision!r}; use 'auto', 'fp32' or 'bf16'")

    @property
    def uses_contrast(self) -> bool:
        return self.method == "joint" and self.lambda_cl > 0

    @property
    def student_feat(self) -> int:
        return int(round(self.num_feat * self.width))

    @classmethod
    def for_profile(cls, profile: str | Profile, *, method: str = "joint", **overrides: Any) -> "CSDConfig":
        """CSD at ``profile``; smoke / standard / paper values side by side.

        paper: the official EDSR x4 setting (256 x 32, res_scale 0.1, width 0.25, K = 10,
        lambda_CL = 200, 400k iterations, lr 1e-4 divided by 10 at 200k, batch 16, 48x48 LR).
        standard: EDSR 64 x 4 (res_scale 1, as EDSR's baseline), width 0.25 (16 channels),
        K = 10 in a batch of 10 LR patches of 16x16 (VGG19 up to relu5_1 on every student,
        teacher and negative image dominates the step, so the HR patches are 64x64), lr 5e-4
        with one cosine period (a short schedule needs larger steps, as the PSNR recipe),
        200 steps: the budget of a 10-minute notebook that trains six runs. The shipped
        course checkpoints (:data:`LONG_STEPS`) train the same configs longer.
        smoke: a tiny EDSR, K = 4 in a batch of 4, a handful of steps.
        """
        p = get_profile(profile)
        steps = p.pick(smoke=6, standard=200, paper=400_000)
        values = dict(
            profile=p.name, method=method, scale=p.scale,
            num_feat=p.pick(smoke=16, standard=64, paper=256),
            num_block=p.pick(smoke=2, standard=4, paper=32),
            res_scale=p.pick(smoke=1.0, standard=1.0, paper=0.1),
            neg_num=p.pick(smoke=4, standard=10, paper=10),
            steps=steps,
            batch_size=p.pick(smoke=4, standard=10, paper=16),
            lr_patch=p.pick(smoke=12, standard=16, paper=48),
            lr=p.pick(smoke=2e-4, standard=5e-4, paper=1e-4),
            schedule=p.pick(smoke="cosine", standard="cosine", paper="multistep"),
            period=p.pick(smoke=steps, standard=steps, paper=0),
            eta_min=p.pick(smoke=1e-7, standard=1e-6, paper=0.0),
            milestones=p.pick(smoke=(), standard=(), paper=(200_000,)),
            dataset=p.pick(smoke="photos", standard="photos", paper="div2k"),
        )
        values.update(overrides)
        return cls(**values)


def replace(cfg: CSDConfig, **changes) -> CSDConfig:
    """``dataclasses.replace``: derive a run that differs in a few values."""
    return dataclasses.replace(cfg, **changes)


def resolve_vgg_weights(weights: str) -> str:
    """``"auto"`` -> ``"imagenet"`` when the VGG19 file is cached, else ``"random"``."""
    from .srgan import resolve_vgg_weights as _resolve

    return _resolve(weights)


def resolve_config(cfg: CSDConfig) -> CSDConfig:
    """The config as it is trained and cached: ``vgg_weights="auto"`` resolved, and for runs
    without the contrastive term the VGG fields neutralised (``"none"``, K = 0, lambda_CL = 0), so
    that two such runs differing only in unused settings are the same model."""
    if not cfg.uses_contrast:
        return replace(cfg, vgg_weights="none", vgg_input_norm=False, vgg_input_range=255.0,
                       cl_layers={}, neg_num=0, lambda_cl=0.0)
    return replace(cfg, vgg_weights=resolve_vgg_weights(cfg.vgg_weights))


def build_edsr(cfg: CSDConfig) -> EDSR:
    """The network a config trains: the full EDSR, or for ``"student"`` one of the student's width."""
    feat = cfg.student_feat if cfg.method == "student" else cfg.num_feat
    return EDSR(3, 3, num_feat=feat, num_block=cfg.num_block, upscale=cfg.scale,
                res_scale=cfg.res_scale)


class AtWidth(nn.Module):
    """``forward(x) = net(x, width=width)``: a channel-split width as a plain SR module.

    Lets every tool that calls ``model(x)`` (tiled inference, metrics) use the student without
    copying weights. For deployment, :meth:`srlib.archs.edsr.EDSR.extract` gives a standalone copy.
    """

    def __init__(self, net: EDSR, width: float):
        super().__init__()
        net.width_channels(width)  # validates
        self.net = net
        self.width = float(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, width=self.width)


def bicubic_negatives(lr: torch.Tensor, scale: int, k: int) -> torch.Tensor:
    """The official negatives: the first ``k`` LR images of the batch, bicubic-enlarged.

    torch's bicubic (``align_corners=False``, a = -0.75), as ``nn.Upsample(mode='bicubic')`` in
    the official trainer; not clamped. Returns ``(k, 3, H*scale, W*scale)``, no gradient.
    """
    if not 1 <= k <= lr.shape[0]:
        raise ValueError(f"{k} negatives asked for from a batch of {lr.shape[0]} LR images; "
                         "the negatives are images of the batch, so k must be in [1, batch size]")
    with torch.no_grad():
        return F.interpolate(lr[:k].float(), scale_factor=scale, mode="bicubic", align_corners=False)


def csd_losses(net: nn.Module, lr: torch.Tensor, hr: torch.Tensor, *, width: float, scale: int,
               lambda_tl: float, lambda_cl: float, neg_num: int, rgb_range: float,
               contrast: ContrastiveLoss | None) -> tuple[torch.Tensor, dict]:
    """Paper Eq. 4 for one batch: ``rgb_range * (L1(S, Y) + lambda_TL L1(T, Y)) + lambda_CL L_CL``.

    ``net(x, width=...)`` is the channel-splitting EDSR. Returns the total and its parts
    (detached) for logging. ``lambda_cl = 0`` skips the VGG passes entirely.
    """
    teacher = net(lr)
    student = net(lr, width=width)
    l_s = rgb_range * l1_loss(student, hr)
    l_t = rgb_range * l1_loss(teacher, hr)
    total = l_s + lambda_tl * l_t
    parts = {"l_student": l_s.detach(), "l_teacher": l_t.detach()}
    if lambda_cl > 0:
        if contrast is None:
            raise ValueError("lambda_cl > 0 needs a ContrastiveLoss")
        negs = bicubic_negatives(lr, scale, neg_num)
        l_cl = contrast(student.float(), teacher.float(), negs)
        total = total + lambda_cl * l_cl
        parts["l_cl"] = l_cl.detach()
    return total, parts


def csd_step(trainer: Trainer, batch: dict, step: int, *, cfg: CSDConfig,
             contrast: ContrastiveLoss | None = None) -> dict:
    """One training step of ``cfg.method`` (one optimizer step on the single network ``G``)."""
    G = trainer.models["G"]
    lr, hr = batch["lr"], batch["hr"]
    if cfg.method in ("teacher", "student"):
        loss = cfg.rgb_range * l1_loss(G(lr), hr)
        trainer.optimize(loss, "G")
        return {"l_pix": loss.detach()}
    loss, parts = csd_losses(G, lr, hr, width=cfg.width, scale=cfg.scale, lambda_tl=cfg.lambda_tl,
                             lambda_cl=cfg.lambda_cl, neg_num=cfg.neg_num,
                             rgb_range=cfg.rgb_range, contrast=contrast)
    trainer.optimize(loss, "G")
    return parts


def make_contrast(cfg: CSDConfig, device=None) -> ContrastiveLoss | None:
    """The contrastive loss of a config (``None`` when the run does not use it)."""
    if not cfg.uses_contrast:
        return None
    loss = ContrastiveLoss(dict(cfg.cl_layers), weights=cfg.vgg_weights,
                           use_input_norm=cfg.vgg_input_norm, input_range=cfg.vgg_input_range,
                           seed=cfg.seed)
    return loss.to(device) if device is not None else loss


def build_trainer(cfg: CSDConfig, device, *, progress: bool = True, log_every: int | None = None) -> Trainer:
    """A :class:`~srlib.train.Trainer` for ``cfg`` (seeded network, Adam, schedule, step)."""
    torch.manual_seed(cfg.seed)
    net = build_edsr(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=1e-8)
    step = partial(csd_step, cfg=cfg, contrast=make_contrast(cfg, device))
    return Trainer({"G": net}, {"G": opt}, step, schedulers={"G": make_scheduler(opt, cfg)},
                   ema={"G": cfg.ema_decay} if cfg.ema_decay is not None else None,
                   device=device, progress=progress, seed=cfg.seed,
                   log_every=log_every or max(1, cfg.steps // 200), precision=cfg.precision)


def load_edsr(cfg: CSDConfig, state: dict, device) -> EDSR:
    """Build ``cfg``'s network and load ``state`` strictly (a clear error when it does not fit)."""
    net = build_edsr(cfg)
    return load_strict(net, state, device, f"EDSR {net.num_feat}x{cfg.num_block} (x{cfg.scale}) "
                                           f"of CSD method {cfg.method!r}")


def train_csd(cfg: CSDConfig, *, device: str | torch.device = "auto", cache_dir=None,
              progress: bool = True, images=None) -> Trained:
    """Train ``cfg`` (or load it from the model cache) and return the network.

    ``Trained.model`` is the EDSR that was trained: for ``"joint"`` and ``"teacher"`` the full
    network (wrap it in :class:`AtWidth` for a student view, or :meth:`EDSR.extract` it), for
    ``"student"`` the small separate network. The history has ``l_pix`` (teacher/student runs)
    or ``l_student``, ``l_teacher`` and, with the contrastive term, ``l_cl``.
    """
    cfg = resolve_config(cfg)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    start = time.time()

    def build_and_train(c: CSDConfig) -> Trainer:
        trainer = build_trainer(c, dev, progress=progress)
        trainer.fit(make_batch_fn(c, images), c.steps)
        return trainer

    run = cached_train(cfg, build_and_train, cache_dir=cache_dir)
    state = run["G_ema"] if "G_ema" in run.keys() else run["G"]
    model = load_edsr(cfg, state, dev)
    return Trained(model, run, cfg, time.time() - start)


def comparison_configs(base: CSDConfig) -> dict[str, CSDConfig]:
    """The four training runs notebook 05 compares, sharing data, steps and seed with ``base``.

    ``teacher`` (full width, L1), ``student`` (separate small EDSR, L1), ``joint`` (Eq. 4 with
    ``lambda_cl = 0``) and ``csd`` (Eq. 4 with ``base.lambda_cl``). The fifth model, the
    teacher sliced without joint training, is the ``teacher`` run at width ``base.width``.
    """
    lam = base.lambda_cl if base.lambda_cl > 0 else CSDConfig.__dataclass_fields__["lambda_cl"].default
    return {
        "teacher": replace(base, method="teacher"),
        "student": replace(base, method="student"),
        "joint": replace(base, method="joint", lambda_cl=0.0),
        "csd": replace(base, method="joint", lambda_cl=lam),
    }


# --------------------------------------------------------------------- course checkpoints
#: Steps of the shipped course checkpoints (the notebook's own standard schedule: 200).
LONG_STEPS = 600
#: The negatives ablation of notebook 05 per profile (the largest K is the main CSD run's).
ABLATION_KS = {"smoke": (1, 4), "standard": (1, 4, 10), "paper": (1, 4, 10)}


def course_names() -> dict[str, str]:
    """Checkpoint name of every run notebook 05 trains: the comparison and the K ablation."""
    names = {"teacher": "csd_teacher", "student": "csd_student", "joint": "csd_joint",
             "csd": "csd_k10"}
    names.update({f"csd_k{k}": f"csd_k{k}" for k in ABLATION_KS["standard"] if k != 10})
    return names


def notebook_configs(profile: str | Profile, *, steps: int | None = None, **overrides) -> dict[str, CSDConfig]:
    """Every run of notebook 05 at ``profile``: :func:`comparison_configs` plus ``csd_k{K}``.

    All share data, steps and seed; the ablation runs differ from ``csd`` in ``neg_num`` only.
    """
    p = get_profile(profile)
    base = CSDConfig.for_profile(p, **overrides)
    if steps is not None:
        base = replace(base, steps=steps, period=steps if base.schedule == "cosine" else base.period)
    cfgs = comparison_configs(base)
    for k in ABLATION_KS[p.name]:
        if k != cfgs["csd"].neg_num:
            cfgs[f"csd_k{k}"] = replace(cfgs["csd"], neg_num=k)
    return cfgs


def dry_run_configs(cfgs: dict[str, CSDConfig], *, lr_patch: int = 12) -> dict[str, CSDConfig]:
    """Notebook 05's runs cut for the paper profile's dry run (:func:`srlib.dry_run.shrink`).

    CSD draws its K negatives from the batch, so the ablation's Ks (1, 4, 10) become 1, 2, 3:
    distinct and in the same order, each run with a batch of ``max(K, 2)``; LR patches of
    ``lr_patch`` pixels (EDSR takes any size). Everything else stays the paper's.
    """
    from ..dry_run import shrink

    ks = {k: i + 1 for i, k in enumerate(sorted({c.neg_num for c in cfgs.values()}))}
    return {key: shrink(replace(c, neg_num=ks[c.neg_num]), batch_size=max(ks[c.neg_num], 2), lr_patch=lr_patch)
            for key, c in cfgs.items()}


def ablation_keys(cfgs: dict[str, CSDConfig]) -> dict[int, str]:
    """``{K: run key}`` of the negatives ablation in ``cfgs`` (the main ``csd`` run included)."""
    out = {c.neg_num: k for k, c in cfgs.items() if k == "csd" or k.startswith("csd_k")}
    return dict(sorted(out.items()))


def obtain_run(key: str, cfg: CSDConfig, *, checkpoints: str = "auto", device="auto",
               progress: bool = True, cache_dir=None) -> Trained:
    """Run ``key`` of notebook 05: the shipped checkpoint when it is exactly ``cfg`` (standard
    profile, see :func:`srlib.checkpoints.obtain`), else trained (or taken from the model cache)."""
    names = course_names()
    if cfg.profile == "standard" and key in names:
        from ..checkpoints import obtain

        return obtain(names[key], cfg, mode=checkpoints, device=device, progress=progress,
                      cache_dir=cache_dir)
    trained = train_csd(cfg, device=device, cache_dir=cache_dir, progress=progress)
    trained.shipped = None
    return trained


def _checkpoint_config(key: str):
    def make(profile: str) -> CSDConfig:
        steps = LONG_STEPS if profile == "standard" else None
        return resolve_config(notebook_configs(profile, steps=steps)[key])
    return make


def _edsr_arch(cfg: CSDConfig) -> tuple[str, dict]:
    feat = cfg.student_feat if cfg.method == "student" else cfg.num_feat
    return "EDSR", {"num_in_ch": 3, "num_out_ch": 3, "num_feat": feat, "num_block": cfg.num_block,
                    "upscale": cfg.scale, "res_scale": cfg.res_scale}


def _train_for_registry(cfg, *, device, cache_dir=None, progress=True, checkpoints_dir=None):
    return train_csd(cfg, device=device, cache_dir=cache_dir, progress=progress)


def register_course_models(register) -> None:
    """Register notebook 05's runs with :mod:`srlib.checkpoints` (called by its registry loader)."""
    from ..checkpoints import CourseModel

    what = {"teacher": "EDSR teacher alone (L1)", "student": "width-0.25 student alone (L1)",
            "joint": "joint teacher+student, no contrastive term (Eq. 4, lambda_CL=0)",
            "csd": "CSD, Eq. 4 with lambda_CL=200, K=10"}
    for key, name in course_names().items():
        desc = what.get(key, f"CSD with K={key.removeprefix('csd_k')} negatives (ablation)")
        register(CourseModel(name, ("05",), desc, _checkpoint_config(key), _train_for_registry,
                             _edsr_arch))


def notebook_runs(profile: str | Profile, checkpoints: str = "auto", log=print) -> tuple[dict, str]:
    """The configs notebook 05 uses, and a sentence saying where they come from.

    At the standard profile with ``checkpoints="auto"``: the long-schedule configs of the
    shipped course checkpoints when all of them are shipped and current; otherwise the
    notebook's own standard schedule (which fits its 10-minute budget), never the long schedule
    trained on the spot. Elsewhere (smoke, paper, ``"retrain"`` at standard: the recipe's own
    values at that profile.
    """
    p = get_profile(profile)
    own = {k: resolve_config(c) for k, c in notebook_configs(p).items()}
    if p.name != "standard" or checkpoints != "auto":
        return own, f"the recipe's own {p.name} schedule ({own['csd'].steps} steps per run)"
    from ..checkpoints import course_config, why_not_shipped

    names = course_names()
    long = {k: course_config(names[k], "standard") for k in own}
    missing = {k: why_not_shipped(names[k], c) for k, c in long.items()}
    missing = {k: r for k, r in missing.items() if r is not None}
    if not missing:
        return long, f"shipped course checkpoints ({LONG_STEPS} steps per run)"
    first = next(iter(missing.values()))
    return own, (f"the notebook's own standard schedule ({own['csd'].steps} steps per run), because "
                 f"{len(missing)} of {len(long)} course checkpoints are not shipped or not current "
                 f"(e.g. {first}); `make checkpoints` builds them ({LONG_STEPS} steps per run)")
