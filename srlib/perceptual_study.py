"""The experiments of notebook 03 (perceptual loss), as small tested functions.

Why do SR papers train with VGG features instead of (only) pixels? Each function here measures
one part of the answer, so the notebook only calls them and draws:

1. Regression to the mean (:class:`MultimodalToy`, :func:`fit_toy_regressor`,
   :func:`regression_to_mean_toy`). When one input has several plausible outputs, the minimiser
   of the expected squared error is the conditional MEAN and that of the absolute error the
   conditional MEDIAN (e.g. Bishop, "Pattern Recognition and Machine Learning", Sec. 1.5.5);
   neither needs to be a mode. For SR this is the blur of PSNR-oriented models (Ledig et al.
   2017, SRGAN, Sec. 1.1 and Fig. 3).
2. Feature inversion (:func:`invert_features`): Mahendran & Vedaldi, "Understanding Deep Image
   Representations by Inverting Them" (CVPR 2015): find ``x* = argmin_x l(Phi(x), Phi0) +
   lambda R(x)`` (their Eq. 1) with the normalised Euclidean loss
   ``||Phi(x) - Phi0||^2 / ||Phi0||^2`` and the total-variation prior ``R_{V^beta}``
   (:func:`total_variation`). What survives the inversion is what a layer keeps.
3. Sparsity of activations (:func:`relu_sparsity`): ESRGAN (Wang et al. 2018, Sec. 3.3) takes
   its perceptual loss BEFORE the ReLU because activated features are sparse, especially in
   deep layers, which weakens the supervision and shifts brightness.
4. Gram statistics (:func:`shuffle_patches`, :func:`gram_and_feature_distances`): Gatys, Ecker,
   Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016, Eqs. 3-5): the
   Gram matrix ``G = F F^T`` sums over positions, so it keeps which features co-occur (texture)
   and forgets where (layout).
5. Metric response (:func:`degrade`, :func:`metric_response`, :func:`response_curves`): PSNR,
   SSIM, NIQE, LPIPS and a VGG feature distance against blur, noise and JPEG of growing strength.

Every function that uses VGG takes a :class:`~srlib.features.VGGFeatures` (or any callable
returning ``{layer name: tensor}``) so that the caller decides, and records, which weights are used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .errors import DatasetError
from .losses.perceptual import gram_matrix

Extractor = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]

# =============================================================================================
# 1. Regression to the mean: a 1-D multimodal toy
# =============================================================================================


@dataclass(frozen=True)
class MultimodalToy:
    """``x ~ U[0, 1]``, ``y | x ~ sum_k w_k(x) N(c_k + s_k x, sigma^2)``: several plausible ``y``.

    The mode centres move linearly with ``x`` (``centers + slopes * x``) and the mixture weights
    move linearly from ``weights0`` (at ``x = 0``) to ``weights1`` (at ``x = 1``). The default
    has two branches whose balance flips along ``x``, like an SR input whose missing detail
    could be either of two textures: the mean then runs through the empty gap between them.
    """

    centers: tuple[float, ...] = (-1.0, 0.6)
    slopes: tuple[float, ...] = (0.3, 0.4)
    weights0: tuple[float, ...] = (0.85, 0.15)
    weights1: tuple[float, ...] = (0.15, 0.85)
    sigma: float = 0.12

    def __post_init__(self):
        k = len(self.centers)
        if k < 1 or any(len(t) != k for t in (self.slopes, self.weights0, self.weights1)):
            raise ValueError("MultimodalToy: centers, slopes, weights0 and weights1 must have the "
                             f"same non-zero length, got {len(self.centers)}, {len(self.slopes)}, "
                             f"{len(self.weights0)}, {len(self.weights1)}")
        for name in ("weights0", "weights1"):
            w = np.asarray(getattr(self, name), dtype=np.float64)
            if (w < 0).any() or not math.isclose(w.sum(), 1.0, abs_tol=1e-9):
                raise ValueError(f"MultimodalToy: {name} must be non-negative and sum to 1, got {w}")
        if not self.sigma > 0:
            raise ValueError(f"MultimodalToy: sigma must be > 0, got {self.sigma}")

    def mode_centers(self, x) -> np.ndarray:
        """``(n, K)`` centres ``c_k + s_k x`` of the mixture components at each ``x``."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
        return np.asarray(self.centers) + np.asarray(self.slopes) * x

    def weights(self, x) -> np.ndarray:
        """``(n, K)`` mixture weights at each ``x`` (linear between ``weights0`` and ``weights1``)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
        return (1 - x) * np.asarray(self.weights0) + x * np.asarray(self.weights1)

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` pairs ``(x, y)`` (float64 arrays of shape ``(n,)``), reproducible for ``seed``."""
        rng = np.random.default_rng(seed)
        x = rng.uniform(0.0, 1.0, n)
        w = self.weights(x)
        comp = (rng.uniform(size=(n, 1)) > np.cumsum(w, axis=1)).sum(axis=1)
        comp = np.minimum(comp, len(self.centers) - 1)
        y = self.mode_centers(x)[np.arange(n), comp] + self.sigma * rng.standard_normal(n)
        return x, y

    def density(self, x, y) -> np.ndarray:
        """``p(y | x)`` for matching arrays (or broadcastable scalars) ``x`` and ``y``."""
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        z = (y.reshape(-1, 1) - self.mode_centers(x)) / self.sigma
        pdf = np.exp(-0.5 * z * z) / (self.sigma * math.sqrt(2 * math.pi))
        return (self.weights(x) * pdf).sum(axis=1).reshape(x.shape)

    def cdf(self, x, y) -> np.ndarray:
        """``P(Y <= y | x)``."""
        from scipy.special import ndtr

        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        z = (y.reshape(-1, 1) - self.mode_centers(x)) / self.sigma
        return (self.weights(x) * ndtr(z)).sum(axis=1).reshape(x.shape)

    def mean(self, x) -> np.ndarray:
        """Conditional mean ``E[y | x] = sum_k w_k(x) (c_k + s_k x)``: the MSE minimiser."""
        return (self.weights(x) * self.mode_centers(x)).sum(axis=1)

    def median(self, x) -> np.ndarray:
        """Conditional median (``cdf = 1/2``, by bisection to 1e-10): the L1 minimiser."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        c = self.mode_centers(x)
        lo, hi = c.min(axis=1) - 10 * self.sigma, c.max(axis=1) + 10 * self.sigma
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = self.cdf(x, mid) < 0.5
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def modes(self, x, resolution: int = 4001) -> list[np.ndarray]:
        """Local maxima of ``p(y | x)`` for each ``x`` (grid search, then 3-point parabola refinement)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        c = self.mode_centers(x)
        out = []
        for xi, ci in zip(x, c):
            ys = np.linspace(ci.min() - 5 * self.sigma, ci.max() + 5 * self.sigma, resolution)
            p = self.density(np.full_like(ys, xi), ys)
            idx = np.where((p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:]))[0] + 1
            h = ys[1] - ys[0]
            denom = p[idx - 1] - 2 * p[idx] + p[idx + 1]
            shift = np.where(denom != 0, 0.5 * (p[idx - 1] - p[idx + 1]) / np.where(denom != 0, denom, 1), 0)
            out.append(ys[idx] + shift * h)
        return out

    def map_estimate(self, x) -> np.ndarray:
        """The highest mode of ``p(y | x)`` (the most probable single answer) at each ``x``."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        best = []
        for xi, m in zip(x, self.modes(x)):
            best.append(m[np.argmax(self.density(np.full_like(m, xi), m))])
        return np.asarray(best)


def fit_toy_regressor(x, y, loss: str = "mse", *, hidden: int = 64, steps: int = 600,
                      lr: float = 1e-2, seed: int = 0) -> nn.Module:
    """Fit a small MLP ``y = f(x)`` (1 -> hidden -> hidden -> 1, tanh) to samples with ``loss``.

    ``loss``: ``"mse"`` (mean of ``(f(x) - y)^2``) or ``"l1"`` (mean of ``|f(x) - y|``).
    Full-batch Adam with a cosine decay of the learning rate to 0, so that the L1 fit (whose
    gradient is a sign and does not shrink near the optimum) settles instead of oscillating.
    The returned network maps a float tensor ``(n, 1)`` to ``(n, 1)``, in eval mode.
    """
    if loss not in ("mse", "l1"):
        raise ValueError(f"unknown loss {loss!r}; use 'mse' or 'l1'")
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, 1)
    yt = torch.as_tensor(np.asarray(y, dtype=np.float32)).reshape(-1, 1)
    if xt.shape != yt.shape or xt.numel() == 0:
        raise ValueError(f"fit_toy_regressor needs x and y of the same non-zero length, got "
                         f"{xt.numel()} and {yt.numel()}")
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                        nn.Linear(hidden, 1))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=gen)
                m.bias.uniform_(-bound, bound, generator=gen)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps), eta_min=0.0)
    for _ in range(steps):
        d = net(xt) - yt
        value = d.pow(2).mean() if loss == "mse" else d.abs().mean()
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        sched.step()
    return net.eval()


def regression_to_mean_toy(toy: MultimodalToy | None = None, *, n: int = 4000, steps: int = 600,
                           hidden: int = 64, grid: int = 101, seed: int = 0) -> dict:
    """Fit MSE and L1 networks to samples of ``toy`` and compare them with its mean, median, modes.

    Returns a dict with ``x``, ``y`` (the samples), ``grid`` (``grid`` points in [0, 1]),
    ``mean``, ``median``, ``map`` (closed form on the grid), ``modes`` (list of arrays),
    ``net_mse``, ``net_l1`` (network predictions on the grid) and ``summary``: for each answer
    (mean, median, map, net_mse, net_l1) the average over the grid of ``p(answer | x) / p(map | x)``,
    i.e. how plausible the answer is relative to the best single answer (1 = a mode, ~0 = a
    value the data never takes), and the networks' mean absolute gaps to mean and median.
    """
    toy = toy or MultimodalToy()
    x, y = toy.sample(n, seed)
    g = np.linspace(0.0, 1.0, grid)
    gt = torch.as_tensor(g, dtype=torch.float32).reshape(-1, 1)
    preds = {}
    for loss in ("mse", "l1"):
        net = fit_toy_regressor(x, y, loss, hidden=hidden, steps=steps, seed=seed)
        with torch.no_grad():
            preds[loss] = net(gt).reshape(-1).double().numpy()
    out = {"x": x, "y": y, "grid": g, "mean": toy.mean(g), "median": toy.median(g),
           "map": toy.map_estimate(g), "modes": toy.modes(g),
           "net_mse": preds["mse"], "net_l1": preds["l1"]}
    p_map = toy.density(g, out["map"])
    summary = {f"plausibility_{k}": float(np.mean(toy.density(g, out[k]) / p_map))
               for k in ("mean", "median", "map", "net_mse", "net_l1")}
    summary["net_mse_vs_mean"] = float(np.mean(np.abs(out["net_mse"] - out["mean"])))
    summary["net_l1_vs_median"] = float(np.mean(np.abs(out["net_l1"] - out["median"])))
    out["summary"] = summary
    return out


# =============================================================================================
# 2. Feature inversion (Mahendran & Vedaldi 2015)
# =============================================================================================


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Total-variation prior ``R_{V^beta}`` of Mahendran & Vedaldi 2015 (Sec. 3), averaged.

    ``mean over c, i, j of ((x[c,i,j+1] - x[c,i,j])^2 + (x[c,i+1,j] - x[c,i,j])^2)^(beta/2)``
    over the ``(H-1) x (W-1)`` positions that have both neighbours. ``beta = 2`` (their choice
    for CNN inversions) penalises squared gradients; ``beta = 1`` is the classic TV that allows
    sharp edges. A mean rather than their sum, so its weight does not depend on the image size.
    """
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or min(x.shape[-2:]) < 2:
        raise ValueError(f"total_variation expects (N, C, H, W) or (C, H, W) with H, W >= 2, got "
                         f"{tuple(x.shape)}")
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    sq = dx * dx + dy * dy
    return sq.mean() if beta == 2 else (sq + 1e-12).pow(beta / 2).mean()


@dataclass
class Inversion:
    """Result of :func:`invert_features`.

    ``image``: the reconstruction ``(3, H, W)`` in [0, 1]; ``feature_loss``: the normalised
    feature loss ``||Phi(x) - Phi0||^2 / ||Phi0||^2`` before each step; ``initial`` / ``final``:
    that loss at the start (the initial image) and for the returned image; ``seconds``: wall time.
    """

    image: torch.Tensor
    layer: str
    feature_loss: list[float] = field(default_factory=list)
    initial: float = float("nan")
    final: float = float("nan")
    seconds: float = 0.0

    @property
    def reduction(self) -> float:
        """``initial / final``: by how much the optimisation shrank the feature loss."""
        return self.initial / max(self.final, 1e-30)


def _as_batch(img, what: str) -> torch.Tensor:
    """An RGB image (numpy HxWx3 uint8 / float [0,1], or a tensor (3,H,W) / (1,3,H,W)) as (1,3,H,W) float."""
    if isinstance(img, torch.Tensor):
        t = img.detach().float()
        if t.dim() == 3:
            t = t.unsqueeze(0)
    else:
        a = np.asarray(img)
        if a.ndim != 3 or a.shape[-1] != 3:
            raise DatasetError(f"{what}: expected an RGB image H x W x 3, got shape {a.shape}")
        a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).unsqueeze(0)
    if t.dim() != 4 or t.shape[:2] != (1, 3):
        raise DatasetError(f"{what}: expected one RGB image (3, H, W) or (1, 3, H, W), got "
                           f"{tuple(t.shape)}")
    if not torch.isfinite(t).all() or t.min() < -1e-5 or t.max() > 1 + 1e-5:
        raise DatasetError(f"{what}: float images must be finite and in [0, 1]; clamp or rescale first")
    return t


def _image_list(images) -> list:
    """One image, a batch tensor (N, 3, H, W), a dict name -> image, or a sequence: as a list."""
    if isinstance(images, Mapping):
        return list(images.values())
    if isinstance(images, torch.Tensor):
        return [images] if images.dim() == 3 else list(images)
    if isinstance(images, np.ndarray) and images.ndim == 3:
        return [images]
    return list(images)


def _device_of(extractor: Extractor) -> torch.device:
    """The device of an ``nn.Module`` extractor's parameters (CPU for parameter-free callables)."""
    if isinstance(extractor, nn.Module):
        for p in extractor.parameters():
            return p.device
    return torch.device("cpu")


def _layer_of(extractor: Extractor, x: torch.Tensor, layer: str) -> torch.Tensor:
    feats = extractor(x)
    if layer not in feats:
        raise ValueError(f"the extractor does not provide layer {layer!r} (it gives {list(feats)}); "
                         f"build it with VGGFeatures([{layer!r}, ...])")
    return feats[layer]


def invert_features(extractor: Extractor, target, layer: str, steps: int = 200, *,
                    lr: float = 0.05, tv_weight: float = 0.0, tv_beta: float = 2.0,
                    init: torch.Tensor | None = None, init_noise: float = 0.1, seed: int = 0,
                    device: str | torch.device | None = None, progress: bool = False) -> Inversion:
    """Reconstruct an image from its features at ``layer`` (Mahendran & Vedaldi 2015, Eq. 1).

    Starting from a mid-gray image plus small uniform noise (``0.5 + init_noise * (u - 0.5)``,
    ``u ~ U[0, 1)`` seeded; they too start from small random noise), or from ``init``, minimise
    ``||Phi(x) - Phi0||^2 / ||Phi0||^2 + tv_weight * R_{V^beta}(x)`` over the pixels ``x`` with
    Adam (their paper uses momentum SGD) and keep ``x`` in [0, 1] by clamping after every step
    (a box constraint that plays the role of their alpha-norm range prior). ``Phi0`` are the
    features of ``target`` at ``layer``.

    Args:
        extractor: a :class:`~srlib.features.VGGFeatures` providing ``layer`` (frozen), or any
            callable ``x -> {name: features}`` differentiable in ``x``.
        target: the image whose features are inverted: numpy H x W x 3 (uint8 or float in
            [0, 1]) or a tensor (3, H, W) / (1, 3, H, W) in [0, 1].
        layer: e.g. ``"conv2_2"``, ``"conv3_4"``, ``"conv5_4"`` (before ReLU) or ``"relu5_4"``.
        steps: optimisation steps (0 returns the initial image and its loss).
        lr: Adam learning rate on pixels in [0, 1]; ``tv_weight``, ``tv_beta``: the TV prior.
        device: where to run (default: the extractor's parameters' device, else CPU).
        progress: show a progress bar (tqdm) with the current feature loss.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    device = torch.device(device) if device is not None else _device_of(extractor)
    start = time.time()
    y = _as_batch(target, "invert_features target").to(device)
    with torch.no_grad():
        phi0 = _layer_of(extractor, y, layer).detach()
    norm0 = phi0.pow(2).sum().clamp_min(1e-12)
    if init is None:
        gen = torch.Generator().manual_seed(seed)
        x0 = 0.5 + init_noise * (torch.rand(y.shape, generator=gen) - 0.5)
    else:
        x0 = _as_batch(init, "invert_features init")
        if x0.shape != y.shape:
            raise ValueError(f"init has shape {tuple(x0.shape)}, the target {tuple(y.shape)}")
    x = x0.to(device).clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    history = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=f"inverting {layer}", leave=False)
    for _ in range(steps):
        rel = (_layer_of(extractor, x, layer) - phi0).pow(2).sum() / norm0
        loss = rel + tv_weight * total_variation(x, tv_beta) if tv_weight > 0 else rel
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        history.append(float(rel.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.4f}", refresh=False)
    if bar is not None:
        bar.close()
    with torch.no_grad():
        final = float((_layer_of(extractor, x, layer) - phi0).pow(2).sum() / norm0)
        initial = history[0] if history else final
    return Inversion(x.detach()[0].cpu(), layer, history, initial, final, time.time() - start)


# =============================================================================================
# 3. Before vs after the ReLU (ESRGAN Sec. 3.3)
# =============================================================================================


def zero_fraction(t: torch.Tensor) -> float:
    """Fraction of entries of ``t`` that are exactly 0."""
    return float((t == 0).float().mean()) if t.numel() else float("nan")


def relu_sparsity(extractor: Extractor, images, layers: Sequence[str]) -> list[dict]:
    """How much of each conv layer's output survives its ReLU, over a set of images.

    For each ``layers`` name ``convB_C`` the extractor must also provide ``reluB_C``. Rows:
    ``layer``; ``zeros_before`` / ``zeros_after``: fraction of exact zeros of the conv output
    and of the ReLU output (the sparsity ESRGAN points at); ``energy_removed``: the share of the
    pre-activation energy ``sum f^2`` that the ReLU discards (``sum min(f, 0)^2 / sum f^2``);
    ``mean_before`` / ``mean_after``: average activation. Averages are over all images
    (each weighted by its number of activations).

    ``images``: one image or a sequence / dict of images (numpy or tensors, see
    :func:`invert_features`), each run separately (sizes may differ).
    """
    bad = [n for n in layers if not n.startswith("conv")]
    if bad:
        raise ValueError(f"relu_sparsity takes conv layer names (convB_C), got {bad}")
    items = _image_list(images)
    if not items:
        raise DatasetError("relu_sparsity got no images")
    # per layer: count, zeros before, zeros after, removed energy, energy, sum before, sum after
    acc = {n: np.zeros(7) for n in layers}
    for img in items:
        x = _as_batch(img, "relu_sparsity image").to(_device_of(extractor))
        with torch.no_grad():
            feats = extractor(x)
        for n in layers:
            relu = "relu" + n[4:]
            if n not in feats or relu not in feats:
                raise ValueError(f"the extractor must provide both {n!r} and {relu!r} (it gives "
                                 f"{list(feats)}); build it with VGGFeatures([{n!r}, {relu!r}, ...])")
            f, r = feats[n].double(), feats[relu].double()
            a = acc[n]
            a[0] += f.numel()
            a[1] += float((f == 0).sum())
            a[2] += float((r == 0).sum())
            a[3] += float(f.clamp_max(0).pow(2).sum())
            a[4] += float(f.pow(2).sum())
            a[5] += float(f.sum())
            a[6] += float(r.sum())
    rows = []
    for n in layers:
        cnt, zb, za, neg, en, sb, sa = acc[n]
        rows.append({"layer": n, "zeros_before": zb / cnt, "zeros_after": za / cnt,
                     "energy_removed": neg / en if en > 0 else float("nan"),
                     "mean_before": sb / cnt, "mean_after": sa / cnt})
    return rows


# =============================================================================================
# 4. Gram matrices keep texture, lose layout (Gatys et al. 2016)
# =============================================================================================


def shuffle_patches(img, patch: int, seed: int = 0) -> np.ndarray:
    """Cut an image into ``patch x patch`` tiles and put them back in a random order.

    ``img``: numpy H x W x C. The image is first cropped (top-left) to multiples of ``patch``;
    every tile is kept intact, only the layout changes. The order is a random permutation
    drawn from ``seed`` (a tile may stay in place).
    """
    a = np.asarray(img)
    if a.ndim != 3:
        raise DatasetError(f"shuffle_patches expects an image H x W x C, got shape {a.shape}")
    if not isinstance(patch, (int, np.integer)) or patch < 1:
        raise ValueError(f"patch must be a positive integer, got {patch!r}")
    h, w = (a.shape[0] // patch) * patch, (a.shape[1] // patch) * patch
    if h == 0 or w == 0 or (h // patch) * (w // patch) < 2:
        raise DatasetError(f"shuffle_patches: a {a.shape[0]}x{a.shape[1]} image holds fewer than two "
                           f"{patch}x{patch} tiles; use a smaller patch")
    gh, gw = h // patch, w // patch
    tiles = a[:h, :w].reshape(gh, patch, gw, patch, -1).transpose(0, 2, 1, 3, 4).reshape(gh * gw, patch, patch, -1)
    order = np.random.default_rng(seed).permutation(gh * gw)
    return tiles[order].reshape(gh, gw, patch, patch, -1).transpose(0, 2, 1, 3, 4).reshape(h, w, -1)


def relative_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b||^2 / ||b||^2`` (0 when equal; ~1 or more when unrelated), comparable across layers."""
    if a.shape != b.shape:
        raise ValueError(f"relative_distance: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a.double() - b.double()).pow(2).sum() / b.double().pow(2).sum().clamp_min(1e-30))


def gram_and_feature_distances(extractor: Extractor, a, b, layers: Sequence[str]) -> list[dict]:
    """Per layer: how far ``a`` is from the reference ``b`` in features and in Gram matrices.

    ``feature``: ``relative_distance(Phi(a), Phi(b))`` (what a perceptual/content loss sees);
    ``gram``: ``relative_distance(G(a), G(b))`` with ``G`` the normalised Gram matrix of
    :func:`srlib.losses.gram_matrix` (Gatys et al. 2016, Eq. 3; Johnson et al. 2016, Eq. 3).
    Both are relative, so layers of different magnitude share an axis. A spatial rearrangement
    of ``b`` leaves ``G`` unchanged up to the border effects of the receptive fields.
    """
    xa, xb = _as_batch(a, "first image"), _as_batch(b, "reference image")
    if xa.shape != xb.shape:
        raise DatasetError(f"images must have the same size, got {tuple(xa.shape)} and {tuple(xb.shape)}")
    dev = _device_of(extractor)
    xa, xb = xa.to(dev), xb.to(dev)
    with torch.no_grad():
        fa, fb = extractor(xa), extractor(xb)
    rows = []
    for n in layers:
        if n not in fa:
            raise ValueError(f"the extractor does not provide layer {n!r} (it gives {list(fa)})")
        rows.append({"layer": n, "feature": relative_distance(fa[n], fb[n]),
                     "gram": relative_distance(gram_matrix(fa[n]), gram_matrix(fb[n]))})
    return rows


# =============================================================================================
# 5. How metrics respond to blur, noise and JPEG
# =============================================================================================

#: Strengths of each degradation, mildest first: Gaussian blur sigma (pixels), Gaussian noise
#: sigma (0-255 scale), JPEG quality (lower is stronger).
DEFAULT_STRENGTHS: dict[str, tuple[float, ...]] = {
    "blur": (0.5, 1.0, 1.5, 2.0, 3.0),
    "noise": (2.0, 5.0, 10.0, 20.0, 35.0),
    "jpeg": (90.0, 70.0, 50.0, 30.0, 10.0),
}
#: For each metric: True when a larger value means a better (closer / more natural) image.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "niqe": False, "lpips": False, "vgg": False}
DEGRADATION_KINDS = tuple(DEFAULT_STRENGTHS)


def degrade(img: np.ndarray, kind: str, strength: float, seed: int = 0) -> np.ndarray:
    """``img`` (uint8 H x W x 3) degraded by ``kind`` at ``strength``, as uint8.

    ``"blur"``: Gaussian blur with sigma ``strength`` pixels; ``"noise"``: additive Gaussian
    noise of sigma ``strength`` on the 0-255 scale (seeded); ``"jpeg"``: JPEG at quality
    ``strength`` (Pillow, 4:2:0). All through :mod:`srlib.degradations`.
    """
    from . import degradations

    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise DatasetError(f"degrade expects a uint8 RGB image H x W x 3, got {arr.dtype} {arr.shape}")
    if kind == "blur":
        out = degradations.gaussian_blur(arr.astype(np.float64) / 255.0, sigma=float(strength))
    elif kind == "noise":
        out = degradations.gaussian_noise(arr.astype(np.float64) / 255.0, float(strength),
                                          np.random.default_rng(seed))
    elif kind == "jpeg":
        return degradations.jpeg(arr, float(strength))
    else:
        raise ValueError(f"unknown degradation {kind!r}; use one of {', '.join(DEGRADATION_KINDS)}")
    return np.clip(np.floor(np.asarray(out) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def metric_response(images, kinds: Sequence[str] = DEGRADATION_KINDS,
                    strengths: Mapping[str, Sequence[float]] | None = None,
                    metrics: Sequence[str] = ("psnr", "ssim", "niqe", "lpips", "vgg"), *,
                    extractor: Extractor | None = None, vgg_layer: str = "conv5_4",
                    crop_border: int = 0, seed: int = 0, progress: bool = False) -> list[dict]:
    """Measure each metric on each image degraded by each kind at each strength.

    ``images``: a uint8 H x W x 3 image or a dict name -> image. Returns one row per (image,
    kind, level) with ``image``, ``kind``, ``level`` (1 = mildest), ``strength`` and one column
    per metric: ``psnr``/``ssim`` on Y (BT.601) with ``crop_border``, ``niqe`` of the degraded
    image, ``lpips`` (AlexNet; ``None`` when its weights are not cached, never a made-up
    number), ``vgg``: ``relative_distance`` of the ``vgg_layer`` features of ``extractor``
    (required when ``"vgg"`` is asked for). NIQE is ``None`` for images smaller than its patch.
    ``progress`` shows a bar over the (image, kind, level) evaluations.
    """
    from . import metrics as M
    from .niqe import niqe

    unknown = [m for m in metrics if m not in HIGHER_IS_BETTER]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose among {', '.join(HIGHER_IS_BETTER)}")
    strengths = dict(DEFAULT_STRENGTHS, **(strengths or {}))
    bad = [k for k in kinds if k not in DEFAULT_STRENGTHS]
    if bad:
        raise ValueError(f"unknown degradations {bad}; use {', '.join(DEGRADATION_KINDS)}")
    if "vgg" in metrics and extractor is None:
        raise ValueError("metric 'vgg' needs an extractor, e.g. VGGFeatures(['conv5_4'])")
    named = images.items() if isinstance(images, Mapping) else [("image", images)]
    lpips_ok = "lpips" in metrics and M.lpips_available()[0]
    rows = []
    named = list(named)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(named) * sum(len(strengths[k]) for k in kinds), desc="metric sweep",
                   leave=False)
    for name, img in named:
        ref_feat = None
        if "vgg" in metrics:
            with torch.no_grad():
                ref_feat = _layer_of(extractor, _as_batch(img, name).to(_device_of(extractor)),
                                     vgg_layer)
        for kind in kinds:
            for level, s in enumerate(strengths[kind], start=1):
                deg = degrade(img, kind, s, seed=seed + level)
                row = {"image": name, "kind": kind, "level": level, "strength": float(s)}
                if "psnr" in metrics:
                    row["psnr"] = M.psnr(deg, img, crop_border)
                if "ssim" in metrics:
                    row["ssim"] = M.ssim(deg, img, crop_border)
                if "niqe" in metrics:
                    try:
                        row["niqe"] = float(niqe(deg, crop_border=crop_border))
                    except DatasetError:
                        row["niqe"] = None
                if "lpips" in metrics:
                    row["lpips"] = M.lpips(deg, img, crop_border=crop_border) if lpips_ok else None
                if "vgg" in metrics:
                    with torch.no_grad():
                        feat = _layer_of(extractor, _as_batch(deg, name).to(ref_feat.device), vgg_layer)
                    row["vgg"] = relative_distance(feat, ref_feat)
                rows.append(row)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return rows


def response_curves(rows: Sequence[Mapping], metrics: Sequence[str]) -> dict:
    """Average :func:`metric_response` rows over images and normalise each metric to [0, 1].

    Returns ``{metric: {kind: {"level": [...], "strength": [...], "value": [...],
    "normalised": [...]}}}``. The normalisation is per metric over ALL kinds and levels:
    0 = the best mean value measured in the sweep, 1 = the worst (orientation from
    :data:`HIGHER_IS_BETTER`), so curves of different metrics share one axis and a curve that
    stays low says that metric barely notices that degradation relative to the others. A
    metric with no values (LPIPS without weights) is left out.
    """
    out = {}
    for m in metrics:
        groups: dict[str, dict[int, list]] = {}
        strength: dict[tuple[str, int], float] = {}
        for r in rows:
            v = r.get(m)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            groups.setdefault(r["kind"], {}).setdefault(r["level"], []).append(float(v))
            strength[(r["kind"], r["level"])] = r["strength"]
        if not groups:
            continue
        means = {k: {lv: float(np.mean(vs)) for lv, vs in sorted(g.items())} for k, g in groups.items()}
        allv = [v for g in means.values() for v in g.values()]
        if HIGHER_IS_BETTER[m]:
            best, worst = max(allv), min(allv)
        else:
            best, worst = min(allv), max(allv)
        span = worst - best
        out[m] = {}
        for k, g in means.items():
            levels = list(g)
            vals = [g[lv] for lv in levels]
            norm = [(v - best) / span if span != 0 else 0.0 for v in vals]
            out[m][k] = {"level": levels, "strength": [strength[(k, lv)] for lv in levels],
                         "value": vals, "normalised": norm}
    return out


__all__ = [
    "MultimodalToy", "fit_toy_regressor", "regression_to_mean_toy",
    "total_variation", "Inversion", "invert_features",
    "zero_fraction", "relu_sparsity",
    "shuffle_patches", "relative_distance", "gram_and_feature_distances",
    "DEFAULT_STRENGTHS", "HIGHER_IS_BETTER", "DEGRADATION_KINDS", "degrade", "metric_response",
    "response_curves",
]
