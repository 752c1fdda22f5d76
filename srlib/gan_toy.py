"""GAN basics on problems small enough to watch: a 2-D ring of Gaussians and 32x32 glyphs.

Notebook 01 is built on this file. It holds

- the data: :func:`ring_centers` / :func:`sample_ring`, the mixture of 8 Gaussians on a circle
  used by Metz et al. 2017 (Unrolled GANs, Sec. 3.1) and Srivastava et al. 2017 (VEEGAN, Sec. 5.1):
  radius 2, standard deviation 0.02;
- the training procedure: :func:`gan_step`, one discriminator step then one generator step
  through the frozen discriminator (Goodfellow et al. 2014, Algorithm 1, with k = 1), and
  :func:`train_toy_gan`, a loop around it that keeps snapshots and a history;
- the measurement: :func:`mode_stats`, modes covered and fraction of high-quality samples
  (the protocol of VEEGAN Sec. 5.1 and PacGAN, Lin et al. 2018, Sec. 4);
- the analysis of the two generator losses of the original GAN: :func:`generator_logit_grad`
  (why the minimax form stops learning when D wins) and :func:`generator_input_grads` (the same
  measured on a trained pair of networks);
- a small DCGAN on glyph patches: :func:`glyph_patches`, :func:`train_dcgan`;
- plotting helpers the notebook calls (``plot_*``), so that the notebook stays prose + pictures.

Everything runs on a CPU in seconds to minutes; sizes come from the notebook's profile.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn as nn

from .archs.spectral import settle_spectral_norm
from .errors import DatasetError, TrainingDivergedError

RING_MODES = 8
RING_RADIUS = 2.0
RING_STD = 0.02


# ----------------------------------------------------------------------------- data


def ring_centers(n_modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """The ``n_modes`` means of the ring mixture, evenly spaced on a circle: shape (n_modes, 2).

    Mode ``k`` sits at angle ``2 pi k / n_modes`` (mode 0 on the positive x axis).
    """
    if int(n_modes) < 1:
        raise ValueError(f"n_modes must be >= 1, got {n_modes}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    angles = 2 * np.pi * np.arange(int(n_modes)) / int(n_modes)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def sample_ring(n: int, *, n_modes: int = RING_MODES, radius: float = RING_RADIUS,
                std: float = RING_STD, generator: torch.Generator | None = None,
                device: str | torch.device = "cpu", return_modes: bool = False):
    """``n`` points from the ring mixture: a mode chosen uniformly, plus isotropic noise ``std``.

    Returns a float32 tensor (n, 2); with ``return_modes=True`` also the chosen mode indices
    (n,) so a test or a plot can colour points by mode. Pass a seeded ``torch.Generator`` for a
    repeatable stream (sampling happens on the CPU, then the tensor moves to ``device``).
    """
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std}")
    centers = torch.as_tensor(ring_centers(n_modes, radius), dtype=torch.float32)
    modes = torch.randint(0, int(n_modes), (int(n),), generator=generator)
    x = centers[modes] + std * torch.randn(int(n), 2, generator=generator)
    x = x.to(device)
    return (x, modes) if return_modes else x


# ----------------------------------------------------------------------------- measurement


class ModeStats(NamedTuple):
    """Result of :func:`mode_stats` (unpacks as a 3-tuple)."""

    modes_covered: int
    high_quality_fraction: float
    counts: np.ndarray  # high-quality samples per mode, shape (n_modes,)


def mode_stats(samples, centers, std: float, *, min_count: int = 20,
               n_std: float = 3.0) -> ModeStats:
    """How many modes a generator covers, and how many of its samples are any good.

    The protocol of VEEGAN (Srivastava et al. 2017, Sec. 5.1) and PacGAN (Lin et al. 2018,
    Sec. 4) for mixtures of Gaussians: a sample is *high quality* when its distance to the
    nearest mode centre is at most ``n_std`` (3) standard deviations; a mode is *covered* when at
    least ``min_count`` high-quality samples have it as nearest centre (PacGAN: 20 out of 2,500
    samples; fewer means the mode is lost). Both numbers are needed: a generator that puts all
    its mass on one mode scores a perfect quality and covers 1 mode; one that smears mass over the
    whole ring covers nothing with high quality.

    Args:
        samples: (N, 2) array or tensor of generated points.
        centers: (M, 2) mode centres (e.g. :func:`ring_centers`).
        std: the standard deviation of each mode in the real data.
        min_count: high-quality samples a mode needs to count as covered.
        n_std: the quality radius in standard deviations.

    Returns:
        ``ModeStats(modes_covered, high_quality_fraction, counts)``.
    """
    x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    c = centers.detach().cpu().numpy() if isinstance(centers, torch.Tensor) else np.asarray(centers)
    x = x.astype(np.float64)
    c = c.astype(np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(c) == 0:
        raise ValueError(f"mode_stats needs samples (N, D) and centers (M, D) with the same D; "
                         f"got {x.shape} and {c.shape}")
    if len(x) == 0:
        raise ValueError("mode_stats got no samples; generate at least one point")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    if not np.isfinite(x).all():
        raise ValueError("mode_stats got NaN or infinite samples; the generator has diverged")
    dist = np.sqrt(((x[:, None, :] - c[None, :, :]) ** 2).sum(-1))  # (N, M)
    nearest = dist.argmin(1)
    good = dist[np.arange(len(x)), nearest] <= n_std * std
    counts = np.bincount(nearest[good], minlength=len(c))
    return ModeStats(int((counts >= min_count).sum()), float(good.mean()), counts)


# ----------------------------------------------------------------------------- the GAN step


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Switch gradient tracking of every parameter of ``module`` on or off (freeze / unfreeze)."""
    for p in module.parameters():
        p.requires_grad_(flag)


_G_FORMS = ("non_saturating", "minimax")


def _losses():
    from .losses import gan  # imported lazily: notebook 01 only needs it once training starts

    return gan


def discriminator_loss(loss_kind: str, real_logits: torch.Tensor,
                       fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss for ``loss_kind`` (see :mod:`srlib.losses.gan` for equations)."""
    return _losses().d_loss(loss_kind, real_logits, fake_logits)


def generator_loss(loss_kind: str, fake_logits: torch.Tensor, g_form: str = "non_saturating",
                   real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """The generator's loss. For ``loss_kind="vanilla"`` ``g_form`` picks between

    - ``"minimax"``: minimise ``E log(1 - D(G(z)))``, the value function of Goodfellow et al.
      2014, Eq. 1, as written;
    - ``"non_saturating"``: minimise ``-E log D(G(z))``, the fix proposed in the same paper
      (Sec. 3) because the minimax form has vanishing gradients early in training.

    Other kinds (``lsgan``, ``hinge``, ...) have a single generator form; ``g_form`` must then be
    left at its default.
    """
    if g_form not in _G_FORMS:
        raise ValueError(f"unknown g_form {g_form!r}; use one of {_G_FORMS}")
    if g_form == "minimax":
        if loss_kind != "vanilla":
            raise ValueError(f"g_form='minimax' exists only for loss_kind='vanilla', "
                             f"not {loss_kind!r}")
        return _losses().g_loss("minimax", fake_logits, real_logits)
    return _losses().g_loss(loss_kind, fake_logits, real_logits)


def gan_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer, real: torch.Tensor, z: torch.Tensor,
             loss_kind: str = "vanilla", g_form: str = "non_saturating") -> dict[str, float]:
    """One round of the adversarial game: a D step, then a G step through the frozen D.

    Goodfellow et al. 2014, Algorithm 1 (with k = 1 discriminator step per generator step):

    1. **D step.** Generate ``fake = G(z)`` and *detach* it, so the discriminator's loss cannot
       push gradients into G. Score a real batch and the fake batch, take the discriminator loss
       (for ``vanilla``: binary cross-entropy, real -> 1, fake -> 0) and step ``opt_d``.
    2. **G step.** Freeze D (``requires_grad`` off on its parameters: it is now a fixed critic,
       and no gradient is wasted on or accumulated in its weights), score the same fake batch
       with the *updated* D, take the generator loss, backpropagate through D into G and step
       ``opt_g``. Then unfreeze D for the next round.

    The fake batch is generated once and reused for both steps, as most implementations do
    (BasicSR's GAN models, the PyTorch DCGAN example); G's weights do not change in between.

    Returns floats for logging: ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (the mean
    discriminator score on the real and fake batch *before* the D step; a probability for
    ``vanilla``, the raw output otherwise, see :func:`d_score`).
    """
    # ---- 1. discriminator step: G is not involved (fake is detached)
    set_requires_grad(D, True)
    fake = G(z)
    opt_d.zero_grad(set_to_none=True)
    real_logits = D(real)
    fake_logits = D(fake.detach())
    loss_d = discriminator_loss(loss_kind, real_logits, fake_logits)
    loss_d.backward()
    opt_d.step()

    # ---- 2. generator step: D is frozen, gradients flow through it into G only
    set_requires_grad(D, False)
    opt_g.zero_grad(set_to_none=True)
    fake_logits_g = D(fake)
    real_for_g = D(real).detach() if loss_kind.startswith("ragan") else None
    loss_g = generator_loss(loss_kind, fake_logits_g, g_form, real_for_g)
    loss_g.backward()
    opt_g.step()
    set_requires_grad(D, True)

    stats = {"d_loss": loss_d.item(), "g_loss": loss_g.item(),
             "d_real": d_score(loss_kind, real_logits).mean().item(),
             "d_fake": d_score(loss_kind, fake_logits).mean().item()}
    if not all(math.isfinite(v) for v in stats.values()):
        raise TrainingDivergedError(
            f"GAN step produced non-finite values {stats}; lower the learning rates or use a "
            "bounded loss (lsgan) / spectral normalization")
    return stats


def d_score(loss_kind: str, logits: torch.Tensor) -> torch.Tensor:
    """What the discriminator 'says' about a sample: ``sigmoid(logit)`` (the probability of
    being real) for ``vanilla``; the raw output for the other kinds (LSGAN regresses it to 1 for
    real and 0 for fake, so it reads on the same scale)."""
    return torch.sigmoid(logits) if loss_kind in ("vanilla", "minimax") else logits


class single_thread:
    """Run a block with one intra-op CPU thread, then restore the previous setting.

    The networks of this file are so small (128-wide MLPs, a DCGAN with 16-64 channels on 32x32
    images) that splitting each op over threads costs more than it saves: on the course's 2-core
    machine, under load, a DCGAN step took 45 ms with one thread and 160 ms with two. Only the
    CPU thread pool is affected; a CUDA run is unchanged.
    """

    def __enter__(self):
        self.previous = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.previous)
        return False


# ----------------------------------------------------------------------------- the toy loop


@dataclass
class ToyGANConfig:
    """Everything that defines one toy run (plain values, so a run is its config).

    Defaults follow the unrolled-GAN ring experiment in spirit (Metz et al. 2017, App. A: MLPs,
    Adam, batch 512) at a CPU-friendly size.
    """

    steps: int = 2000
    batch_size: int = 256
    z_dim: int = 2
    hidden: int = 128
    depth: int = 3
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    loss_kind: str = "vanilla"
    g_form: str = "non_saturating"
    spectral_norm: bool = False
    n_modes: int = RING_MODES
    radius: float = RING_RADIUS
    std: float = RING_STD
    seed: int = 0
    snapshot_steps: Sequence[int] = (0, 500, 1000, 2000)
    eval_every: int = 100
    n_eval: int = 2500
    min_count: int = 20
    grid_size: int = 96
    extent: float = 3.0
    device: str = "cpu"


@dataclass
class ToyGANResult:
    """What :func:`train_toy_gan` returns.

    Attributes:
        config: the config as a dict.
        history: lists keyed by ``step``, ``d_loss``, ``g_loss``, ``d_real``, ``d_fake`` (every
            step).
        coverage: lists keyed by ``step``, ``modes``, ``hq`` (every ``eval_every`` steps, on
            ``n_eval`` fresh samples).
        snapshots: one dict per snapshot step: ``step``, ``samples`` (n_eval, 2), ``surface``
            (grid_size, grid_size) discriminator scores on the grid ``extent``, ``stats``.
        final: :class:`ModeStats` of the last model; ``seconds``: wall time; ``G``, ``D``.
    """

    config: dict
    history: dict
    coverage: dict
    snapshots: list
    final: ModeStats
    seconds: float
    G: nn.Module = field(repr=False)
    D: nn.Module = field(repr=False)


def build_toy_nets(cfg: ToyGANConfig) -> tuple[nn.Module, nn.Module]:
    """The generator and discriminator MLPs of a toy run, initialised from ``cfg.seed``."""
    from .archs.gan_nets import MLPDiscriminator, MLPGenerator

    torch.manual_seed(cfg.seed)
    G = MLPGenerator(z_dim=cfg.z_dim, hidden=cfg.hidden, depth=cfg.depth)
    D = MLPDiscriminator(hidden=cfg.hidden, depth=cfg.depth, spectral_norm=cfg.spectral_norm)
    if cfg.spectral_norm:
        settle_spectral_norm(D, iterations=50)
    return G, D


def decision_surface(D: nn.Module, loss_kind: str, extent: float = 3.0,
                     grid_size: int = 96) -> np.ndarray:
    """D's score on a ``grid_size`` x ``grid_size`` grid over ``[-extent, extent]^2``.

    Row ``i`` is ``y = linspace(-extent, extent)[i]`` (plot with ``origin="lower"``).
    """
    device = next(D.parameters()).device
    axis = torch.linspace(-extent, extent, grid_size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1).to(device)
    was_training = D.training
    D.eval()
    with torch.no_grad():
        s = d_score(loss_kind, D(pts)).reshape(grid_size, grid_size).cpu().numpy()
    D.train(was_training)
    return s


@torch.no_grad()
def generate(G: nn.Module, n: int, z_dim: int, generator: torch.Generator | None = None,
             device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` generator samples from standard-normal noise (G in eval mode, no gradients)."""
    was_training = G.training
    G.eval()
    x = G(torch.randn(n, z_dim, generator=generator).to(device))
    G.train(was_training)
    return x


def train_toy_gan(cfg: ToyGANConfig | None = None, *, progress: bool = False,
                  **overrides) -> ToyGANResult:
    """Train a GAN on the ring of Gaussians (see :func:`_train_toy_gan`), single-threaded."""
    with single_thread():
        return _train_toy_gan(cfg, progress=progress, **overrides)


def _train_toy_gan(cfg: ToyGANConfig | None = None, *, progress: bool = False,
                   **overrides) -> ToyGANResult:
    """Train a GAN on the ring of Gaussians with :func:`gan_step` and record what happens.

    ``train_toy_gan(steps=3000, loss_kind="lsgan")`` is short for passing a config. Fresh real
    data is drawn every step (the data distribution is known, so there is no data set to
    overfit). The evaluation noise is fixed, so snapshots of one run show the same ``z`` moving.
    """
    cfg = cfg or ToyGANConfig()
    if overrides:
        cfg = ToyGANConfig(**{**asdict(cfg), **overrides})
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {cfg.steps}, {cfg.batch_size}")
    device = torch.device(cfg.device)
    G, D = build_toy_nets(cfg)
    G.to(device)
    D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=tuple(cfg.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
    data_rng = torch.Generator().manual_seed(cfg.seed + 1)
    noise_rng = torch.Generator().manual_seed(cfg.seed + 2)
    eval_z = torch.randn(cfg.n_eval, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 3))
    centers = ring_centers(cfg.n_modes, cfg.radius)
    snap_at = sorted({int(s) for s in cfg.snapshot_steps if 0 <= int(s) <= cfg.steps})
    history = {k: [] for k in ("step", "d_loss", "g_loss", "d_real", "d_fake")}
    coverage = {k: [] for k in ("step", "modes", "hq")}
    snapshots = []

    def evaluate(step: int) -> None:
        was = G.training
        G.eval()
        with torch.no_grad():
            x = G(eval_z.to(device)).cpu()
        G.train(was)
        stats = mode_stats(x, centers, cfg.std, min_count=cfg.min_count)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            coverage["step"].append(step)
            coverage["modes"].append(stats.modes_covered)
            coverage["hq"].append(stats.high_quality_fraction)
        if step in snap_at:
            snapshots.append({"step": step, "samples": x.numpy(), "stats": stats,
                              "surface": decision_surface(D, cfg.loss_kind, cfg.extent,
                                                          cfg.grid_size)})

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, desc=f"{cfg.loss_kind}/{cfg.g_form}", leave=False)
    t0 = time.time()
    evaluate(0)
    for step in range(1, cfg.steps + 1):
        real = sample_ring(cfg.batch_size, n_modes=cfg.n_modes, radius=cfg.radius, std=cfg.std,
                           generator=data_rng).to(device)
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=noise_rng).to(device)
        out = gan_step(G, D, opt_g, opt_d, real, z, cfg.loss_kind, cfg.g_form)
        history["step"].append(step)
        for k, v in out.items():
            history[k].append(v)
        if step % cfg.eval_every == 0 or step in snap_at or step == cfg.steps:
            evaluate(step)
        if bar is not None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(d=f"{out['d_loss']:.3f}", g=f"{out['g_loss']:.3f}")
    if bar is not None:
        bar.close()
    with torch.no_grad():
        G.eval()
        final = mode_stats(G(eval_z.to(device)).cpu(), centers, cfg.std, min_count=cfg.min_count)
        G.train()
    return ToyGANResult(asdict(cfg), history, coverage, snapshots, final, time.time() - t0, G, D)


# ----------------------------------------------------------------------------- why the G loss matters


def generator_logit_grad(d_fake, g_form: str) -> np.ndarray:
    """d(generator loss)/d(logit) as a function of ``D(G(z)) = sigmoid(logit)``, analytically.

    With ``D = sigmoid(l)`` and ``sigmoid'(l) = D (1 - D)``:

    - minimax, ``L = log(1 - sigmoid(l))``:  ``dL/dl = -D``.  When D confidently rejects the
      fakes (``D(G(z)) -> 0``, the usual state early in training) the gradient vanishes: the
      generator learns slowest exactly when it is worst (Goodfellow et al. 2014, Sec. 3).
    - non-saturating, ``L = -log sigmoid(l)``: ``dL/dl = -(1 - D)``, largest when D wins.

    Both push the logit up (negative derivative); only the magnitude differs. Everything G
    learns is this number times the gradient of the logit with respect to G's weights.
    """
    d = np.asarray(d_fake, dtype=np.float64)
    if np.any((d < 0) | (d > 1)):
        raise ValueError("d_fake must be probabilities in [0, 1]")
    if g_form == "minimax":
        return -d
    if g_form == "non_saturating":
        return -(1.0 - d)
    raise ValueError(f"unknown g_form {g_form!r}; use one of {_G_FORMS}")


def generator_input_grads(G: nn.Module, D: nn.Module, z: torch.Tensor, g_form: str,
                          loss_kind: str = "vanilla") -> tuple[np.ndarray, np.ndarray]:
    """Per-sample ``D(G(z))`` and the norm of d(generator loss)/d(G(z)) on real networks.

    This is the signal that reaches the generator for each fake point, measured by autograd on
    a trained discriminator (the loss is summed over samples so each row is its own gradient).
    Plotted against ``D(G(z))`` it shows the same vanishing as :func:`generator_logit_grad`,
    multiplied by how steep D is around each point. D's weights are not touched.
    """
    fake = G(z).detach().requires_grad_(True)
    logits = D(fake)
    loss = generator_loss(loss_kind, logits, g_form) * len(z)  # mean -> sum: per-sample grads
    (grad,) = torch.autograd.grad(loss, fake)
    norms = grad.flatten(1).norm(dim=1)
    return (d_score(loss_kind, logits).detach().flatten().cpu().numpy(),
            norms.detach().cpu().numpy())


def winning_discriminator(cfg: ToyGANConfig | None = None, d_steps: int = 200,
                          **overrides) -> tuple[nn.Module, nn.Module]:
    """A freshly initialised generator and a discriminator trained alone against it.

    This is the situation early in training that Goodfellow et al. 2014 (Sec. 3) describe:
    the fakes are poor, so D learns to reject them confidently (``D(G(z)) -> 0``). Only D's
    loss (``cfg.loss_kind``) is minimised, for ``d_steps`` Adam steps; G never moves.
    """
    cfg = cfg or ToyGANConfig()
    if overrides:
        cfg = ToyGANConfig(**{**asdict(cfg), **overrides})
    G, D = build_toy_nets(cfg)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
    rng = torch.Generator().manual_seed(cfg.seed + 1)
    set_requires_grad(G, False)
    for _ in range(int(d_steps)):
        real = sample_ring(cfg.batch_size, n_modes=cfg.n_modes, radius=cfg.radius, std=cfg.std,
                           generator=rng)
        fake = G(torch.randn(cfg.batch_size, cfg.z_dim, generator=rng))
        opt_d.zero_grad(set_to_none=True)
        discriminator_loss(cfg.loss_kind, D(real), D(fake)).backward()
        opt_d.step()
    set_requires_grad(G, True)
    return G, D


# ----------------------------------------------------------------------------- a small image GAN


def glyph_patches(n: int, size: int = 32, *, seed: int = 0, split: str = "train",
                  n_images: int = 24, scale: float = 0.5, min_std: float = 0.15,
                  gray: bool = True) -> torch.Tensor:
    """``n`` patches of rendered text from the embedded ``text`` set, as a float tensor in [0, 1].

    Each text image is shrunk by ``scale`` (so a patch holds a few whole glyphs rather than part
    of one stroke) and cropped at random places; patches that are almost blank (pixel standard
    deviation below ``min_std``) are skipped so the GAN learns letters, not background.
    With ``gray=True`` (default) each image becomes its luma (BT.601 weights), contrast-stretched
    to [0, 1] and inverted where the background is dark, so every patch is dark ink on a light
    ground whatever the rendered colours: one homogeneous "glyph" data set, (n, 1, size, size).
    ``gray=False`` keeps the colours: (n, 3, size, size).
    Deterministic for a given ``seed``.
    """
    from PIL import Image

    from .data import load_images

    images = load_images("text", split, n=n_images, seed=seed)
    arrays = list(images.values()) if isinstance(images, dict) else list(images)
    if not arrays:
        raise DatasetError("the text set returned no images; cannot cut glyph patches")
    shrunk = []
    for a in arrays:
        h, w = a.shape[:2]
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        img = np.asarray(Image.fromarray(a).resize((nw, nh), Image.BICUBIC)).astype(np.float32) / 255
        if gray:  # luma, stretched to [0, 1] and flipped where needed: dark ink on a light ground
            img = img[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
            lo, hi = np.percentile(img, [1, 99])
            img = np.clip((img - lo) / max(hi - lo, 1e-3), 0, 1)
            if np.median(img) < 0.5:
                img = 1 - img
            img = img[..., None].astype(np.float32)
        if nh >= size and nw >= size:
            shrunk.append(img)
    if not shrunk:
        raise DatasetError(f"no text image is at least {size}x{size} pixels after scaling by "
                           f"{scale}; use a larger scale or a smaller patch size")
    rng = np.random.default_rng(seed)
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise DatasetError(f"found only {len(out)} of {n} patches with detail (std >= "
                               f"{min_std}); lower min_std or use more images")
        img = shrunk[rng.integers(len(shrunk))]
        top = rng.integers(img.shape[0] - size + 1)
        left = rng.integers(img.shape[1] - size + 1)
        patch = img[top:top + size, left:left + size]
        if patch.std() >= min_std:
            out.append(patch)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous().clamp(0, 1)


@dataclass
class DCGANConfig:
    """A small DCGAN (Radford et al. 2016): strided (de)convolutions, batch norm, Adam with
    lr 2e-4 and beta1 0.5 (the paper's Sec. 4 settings), on 32x32 patches."""

    steps: int = 1000
    batch_size: int = 64
    z_dim: int = 64
    ngf: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    loss_kind: str = "vanilla"
    g_form: str = "non_saturating"
    spectral_norm: bool = False
    seed: int = 0
    snapshot_steps: Sequence[int] = (0, 250, 500, 1000)
    n_show: int = 16
    device: str = "cpu"


@dataclass
class DCGANResult:
    """``history`` as in :class:`ToyGANResult`; ``snapshots``: dicts with ``step`` and
    ``images`` (n_show, C, 32, 32) in [0, 1], always from the same fixed noise."""

    config: dict
    history: dict
    snapshots: list
    seconds: float
    G: nn.Module = field(repr=False)
    D: nn.Module = field(repr=False)


def train_dcgan(patches: torch.Tensor, cfg: DCGANConfig | None = None, *, progress: bool = False,
                **overrides) -> DCGANResult:
    """Train a small DCGAN (see :func:`_train_dcgan`) with one CPU thread (:class:`single_thread`)."""
    with single_thread():
        return _train_dcgan(patches, cfg, progress=progress, **overrides)


def _train_dcgan(patches: torch.Tensor, cfg: DCGANConfig | None = None, *, progress: bool = False,
                 **overrides) -> DCGANResult:
    """Train a DCGAN on ``patches`` ((N, C, 32, 32) in [0, 1]) with the same :func:`gan_step`
    as the 2-D toy: only the networks and the data change.

    Images are mapped to [-1, 1] for training (the generator ends in ``tanh``) and back to
    [0, 1] in the snapshots.
    """
    from .archs.gan_nets import DCGANDiscriminator, DCGANGenerator

    cfg = cfg or DCGANConfig()
    if overrides:
        cfg = DCGANConfig(**{**asdict(cfg), **overrides})
    if patches.ndim != 4 or patches.shape[-2:] != (32, 32):
        raise DatasetError(f"train_dcgan needs patches of shape (N, C, 32, 32), got "
                           f"{tuple(patches.shape)}; cut them with glyph_patches(size=32)")
    device = torch.device(cfg.device)
    channels = patches.shape[1]
    torch.manual_seed(cfg.seed)
    G = DCGANGenerator(z_dim=cfg.z_dim, ngf=cfg.ngf, channels=channels).to(device)
    D = DCGANDiscriminator(ngf=cfg.ngf, channels=channels, spectral_norm=cfg.spectral_norm).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=tuple(cfg.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
    data = patches.to(device) * 2 - 1
    rng = torch.Generator().manual_seed(cfg.seed + 1)
    show_z = torch.randn(cfg.n_show, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
    snap_at = {int(s) for s in cfg.snapshot_steps}
    history = {k: [] for k in ("step", "d_loss", "g_loss", "d_real", "d_fake")}
    snapshots = []

    def snapshot(step):
        G.eval()
        with torch.no_grad():
            imgs = (G(show_z.to(device)).cpu() + 1) / 2
        G.train()
        snapshots.append({"step": step, "images": imgs.clamp(0, 1).numpy()})

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, desc="dcgan", leave=False)
    t0 = time.time()
    if 0 in snap_at:
        snapshot(0)
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=rng).to(device)
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=rng).to(device)
        out = gan_step(G, D, opt_g, opt_d, data[idx], z, cfg.loss_kind, cfg.g_form)
        history["step"].append(step)
        for k, v in out.items():
            history[k].append(v)
        if step in snap_at or step == cfg.steps and not snapshots[-1:] == [step]:
            if not snapshots or snapshots[-1]["step"] != step:
                snapshot(step)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return DCGANResult(asdict(cfg), history, snapshots, time.time() - t0, G, D)


def tile(images, ncols: int = 8, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one H x W x 3 float image (a sample grid)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"tile needs (N, C, H, W) images, got shape {x.shape}")
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    n, _, h, w = x.shape
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + c * (w + pad):pad + c * (w + pad) + w] = x[i].transpose(1, 2, 0)
    return out


# ----------------------------------------------------------------------------- pictures


def _style_toy_axes(ax, extent):
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_toy_panel(ax, samples, surface=None, *, extent=3.0, centers=None, title=None,
                   vmin=0.0, vmax=1.0, n_show=800):
    """One picture of the game: D's decision surface (background), real modes (white rings),
    generated points (black dots)."""
    if surface is not None:
        im = ax.imshow(surface, origin="lower", extent=(-extent, extent, -extent, extent),
                       cmap="RdBu_r", vmin=vmin, vmax=vmax, alpha=0.85)
    else:
        im = None
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=90, facecolors="none", edgecolors="white",
                   linewidths=1.5, zorder=2)
    s = np.asarray(samples)[:n_show]
    ax.scatter(s[:, 0], s[:, 1], s=3, c="k", alpha=0.6, zorder=3, linewidths=0)
    _style_toy_axes(ax, extent)
    if title:
        ax.set_title(title, fontsize=9)
    return im


def plot_snapshots(result: ToyGANResult, title: str | None = None):
    """Generated samples at each snapshot step over the discriminator's decision surface."""
    import matplotlib.pyplot as plt

    cfg = result.config
    centers = ring_centers(cfg["n_modes"], cfg["radius"])
    snaps = result.snapshots
    fig, axes = plt.subplots(1, len(snaps), figsize=(2.7 * len(snaps), 3.0), squeeze=False)
    lo, hi = _surface_range(cfg["loss_kind"], [s["surface"] for s in snaps])
    im = None
    for ax, s in zip(axes[0], snaps):
        st = s["stats"]
        im = plot_toy_panel(ax, s["samples"], s["surface"], extent=cfg["extent"], centers=centers,
                            title=f"step {s['step']}\n{st.modes_covered}/{len(centers)} modes, "
                                  f"{100 * st.high_quality_fraction:.0f}% high quality",
                            vmin=lo, vmax=hi)
    if im is not None:
        cb = fig.colorbar(im, ax=axes[0].tolist(), fraction=0.02, pad=0.01)
        cb.set_label("D(x)" + (" = P(real)" if cfg["loss_kind"] == "vanilla" else ""), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _surface_range(loss_kind, surfaces):
    if loss_kind in ("vanilla", "minimax"):
        return 0.0, 1.0
    allv = np.concatenate([np.ravel(s) for s in surfaces]) if surfaces else np.zeros(1)
    return float(np.percentile(allv, 1)), float(np.percentile(allv, 99))


def _smooth(y, k):
    y = np.asarray(y, float)
    if k <= 1 or len(y) < k:
        return y
    return np.convolve(y, np.ones(k) / k, mode="valid")


def plot_history(result, smooth: int = 50, title: str | None = None):
    """Left: D and G losses over training. Right: mean D(real) and D(fake) over training."""
    import matplotlib.pyplot as plt

    h = result.history
    steps = np.asarray(h["step"])
    k = min(smooth, max(1, len(steps) // 5))
    x = steps[k - 1:] if k > 1 and len(steps) >= k else steps
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    a.plot(x, _smooth(h["d_loss"], k), label="D loss", color="tab:red")
    a.plot(x, _smooth(h["g_loss"], k), label="G loss", color="tab:blue")
    a.set_xlabel("step")
    a.set_title("losses (moving average)", fontsize=9)
    a.legend(fontsize=8)
    b.plot(x, _smooth(h["d_real"], k), label="mean D(real)", color="tab:green")
    b.plot(x, _smooth(h["d_fake"], k), label="mean D(G(z))", color="tab:purple")
    if result.config.get("loss_kind") == "vanilla":
        b.axhline(0.5, color="gray", lw=0.8, ls="--", label="0.5: D cannot tell")
        b.set_ylim(0, 1)
    b.set_xlabel("step")
    b.set_title("what D says about real and fake batches", fontsize=9)
    b.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_coverage(results: dict, n_modes: int = RING_MODES, title: str | None = None):
    """Modes covered and high-quality fraction over training, one line per labelled run."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.0))
    for label, r in results.items():
        a.plot(r.coverage["step"], r.coverage["modes"], label=label, lw=1.4)
        b.plot(r.coverage["step"], np.asarray(r.coverage["hq"]) * 100, label=label, lw=1.4)
    a.set_ylim(-0.3, n_modes + 0.3)
    a.set_ylabel("modes covered")
    b.set_ylim(-2, 102)
    b.set_ylabel("% high-quality samples")
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_final_side_by_side(results: dict, title: str | None = None):
    """The last snapshot of each labelled run, side by side (same seed, same budget)."""
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n, 3.2), squeeze=False)
    for ax, (label, r) in zip(axes[0], results.items()):
        cfg = r.config
        s = r.snapshots[-1]
        lo, hi = _surface_range(cfg["loss_kind"], [s["surface"]])
        plot_toy_panel(ax, s["samples"], s["surface"], extent=cfg["extent"],
                       centers=ring_centers(cfg["n_modes"], cfg["radius"]), vmin=lo, vmax=hi,
                       title=f"{label}\n{r.final.modes_covered}/{cfg['n_modes']} modes, "
                             f"{100 * r.final.high_quality_fraction:.0f}% HQ")
    if title:
        fig.suptitle(title, fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.9))  # room for the title above the two-line panel titles
    else:
        fig.tight_layout()
    return fig


def plot_generator_gradients(measured: dict | None = None, title: str | None = None):
    """Left: the analytic |dL_G/dlogit| against D(G(z)) for minimax and non-saturating losses.
    Right (if ``measured`` = {label: (d_fake, grad_norm)} from :func:`generator_input_grads`):
    the per-sample gradient norms that actually reached G's output."""
    import matplotlib.pyplot as plt

    d = np.linspace(0, 1, 201)
    ncols = 2 if measured else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.4), squeeze=False)
    a = axes[0, 0]
    a.plot(d, np.abs(generator_logit_grad(d, "minimax")), label="minimax  log(1 - D(G(z)))",
           color="tab:orange", lw=2)
    a.plot(d, np.abs(generator_logit_grad(d, "non_saturating")),
           label="non-saturating  -log D(G(z))", color="tab:blue", lw=2)
    a.axvspan(0, 0.1, color="gray", alpha=0.15)
    a.text(0.01, 0.5, "D wins:\nfakes rejected", fontsize=8)
    a.set_xlabel("D(G(z))")
    a.set_ylabel("|d loss / d logit|")
    a.set_title("gradient the generator receives (analytic)", fontsize=9)
    a.legend(fontsize=8)
    if measured:
        b = axes[0, 1]
        colors = {"minimax": "tab:orange", "non_saturating": "tab:blue"}
        for label, (df, gn) in measured.items():
            b.scatter(df, gn, s=4, alpha=0.5, label=label,
                      color=colors.get(label.split()[0], None), linewidths=0)
        b.set_yscale("log")
        b.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
        b.set_xlabel("D(G(z)) per sample")
        b.set_ylabel("|d loss / d G(z)|")
        b.set_title("measured on a discriminator that is winning", fontsize=9)
        b.legend(fontsize=8, markerscale=3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_dcgan_progress(result: DCGANResult, real: torch.Tensor | None = None, ncols: int = 4,
                        n_show: int = 16, tile_inches: float = 0.8):
    """Sample grids at each snapshot (same noise every time), and a grid of real patches.

    Each panel shows ``n_show`` samples, ``ncols`` to a row, every 32-px sample drawn
    ``tile_inches`` wide (about 90 screen pixels at the course's 110 dpi), so strokes are visible.
    """
    import matplotlib.pyplot as plt

    panels = [(f"step {s['step']}", tile(s["images"][:n_show], ncols, pad_value=0.35))
              for s in result.snapshots]
    if real is not None:
        n = min(n_show, len(result.snapshots[0]["images"]))
        panels.append(("real patches", tile(real[:n].numpy(), ncols, pad_value=0.35)))
    nrows = int(np.ceil(min(n_show, len(result.snapshots[0]["images"])) / ncols))
    side = tile_inches * ncols
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels) + 0.2 * len(panels),
                                                      tile_inches * nrows + 0.5), squeeze=False)
    for ax, (t, img) in zip(axes[0], panels):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(t, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def _to_rgb01(img) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    a = a.astype(np.float32) / 255 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.clip(a, 0, 1)


def plot_gan_to_sr(hr, fake_sample, real_sample, scale: int = 4, noise_seed: int = 0):
    """A diagram of the step from this notebook to the next.

    Top: the unconditional GAN trained here: noise ``z`` -> G -> ``fake_sample`` (e.g. a DCGAN
    output), and D judges it against ``real_sample``. Bottom: the conditional GAN of
    super-resolution: G gets the low-resolution image (``hr`` box-downsampled by ``scale``)
    instead of noise, D judges G's output against the true ``hr``, and a content loss ties the
    output to that ``hr``. The SR slot shows the LR input enlarged with nearest-neighbour
    sampling: what an untrained G has to start from. Images: H x W (x 3) or (C, H, W), in [0, 1]
    or uint8.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    hr = _to_rgb01(hr)
    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    if h == 0 or w == 0:
        raise ValueError(f"hr image {hr.shape[:2]} is smaller than the scale {scale}")
    hr = hr[:h, :w]
    lr = hr.reshape(h // scale, scale, w // scale, scale, 3).mean((1, 3))
    lr_big = np.repeat(np.repeat(lr, scale, 0), scale, 1)
    noise = np.random.default_rng(noise_seed).normal(0.5, 0.25, (8, 8, 1)).clip(0, 1)
    noise = np.repeat(np.repeat(np.repeat(noise, 3, 2), 4, 0), 4, 1)

    fig = plt.figure(figsize=(9.8, 5.2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 9.8)
    ax.set_ylim(0, 5.2)
    ax.axis("off")

    def picture(img, x, y, label):
        ax.imshow(img, extent=(x, x + 1.3, y, y + 1.3), interpolation="nearest", zorder=1)
        ax.text(x + 0.65, y - 0.1, label, ha="center", va="top", fontsize=8)

    def box(x, y, text, color):
        ax.add_patch(FancyBboxPatch((x, y), 1.2, 0.8, boxstyle="round,pad=0.05", fc=color, ec="k"))
        ax.text(x + 0.6, y + 0.4, text, ha="center", va="center", fontsize=9)

    def arrow(x0, y0, x1, y1, **kw):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, **kw))

    rows = ((3.0, noise, "noise z", _to_rgb01(fake_sample), "G(z): a sample",
             _to_rgb01(real_sample), "real sample", "real or fake?",
             "unconditional GAN (this notebook)"),
            (0.4, lr_big, f"LR input (1/{scale} size)", lr_big,
             "G(LR): SR output\n(untrained: LR enlarged)",
             hr, "true HR", "real HR or SR output?\n+ content loss to the HR",
             "conditional GAN for super-resolution (notebook 02)"))
    for y, src, src_lab, out, out_lab, real, real_lab, question, name in rows:
        ax.text(0.2, y + 1.6, name, fontsize=10, weight="bold")
        picture(src, 0.2, y, src_lab)
        arrow(1.55, y + 0.65, 2.25, y + 0.65)
        box(2.3, y + 0.25, "generator G", "#cfe3ff")
        arrow(3.55, y + 0.65, 4.25, y + 0.65)
        picture(out, 4.3, y, out_lab)
        arrow(5.65, y + 0.65, 6.25, y + 0.65)
        box(6.3, y + 0.25, "discriminator D", "#ffd9cf")
        ax.text(6.9, y + 0.05, question, fontsize=8, va="top", ha="center")
        arrow(8.05, y + 0.65, 7.55, y + 0.65)
        picture(real, 8.1, y, real_lab)
    return fig
