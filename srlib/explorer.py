"""The results explorer of notebook 07: any course model on any held-out photo, any metric, on demand.

Models come from the course checkpoints (:mod:`srlib.checkpoints`): at the standard profile the
shipped file when its manifest matches the config the notebook asks for; otherwise (and always at
the smoke profile, which never loads shipped files) the model that a notebook of this profile
already trained and left in the model cache (:func:`srlib.train.cache.cache_key` of the same
config). Nothing is trained here: a model that is neither shipped nor cached is left out, with the
command that makes it. Bicubic is always there.

:func:`measure` super-resolves one held-out photo with one model and computes the metrics the
course uses (PSNR-Y and SSIM-Y with the ``scale``-pixel border crop, NIQE, ``hf_ratio``, LPIPS when
its weights are cached); results are memoised, so flipping between choices in the widget is
instant after the first time. :func:`widget` builds the ipywidgets explorer; without a widget
frontend (papermill, the static site, ``SRLIB_HEADLESS``) :func:`static_view` draws the same
information for every model on one photo as a figure and a table.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

METRICS = {
    "psnr_y": "PSNR-Y (dB, higher = closer to HR)",
    "ssim_y": "SSIM-Y (higher = closer to HR)",
    "niqe": "NIQE (lower = more natural)",
    "hf_ratio": "hf_ratio (fine detail relative to HR; 1 = as much as HR)",
    "lpips": "LPIPS (lower = perceptually closer; needs AlexNet weights)",
}
BICUBIC = "bicubic"


@dataclass
class ModelSet:
    """The models the explorer can show: name -> network (``None`` = bicubic), and notes on the others."""

    models: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def _cached_state(cfg, cache_dir=None):
    """The generator weights that ``cached_train`` stored for ``cfg``, or ``None`` if not cached."""
    import torch

    from .train.cache import MODELS_FILE, cache_key, default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = root / cache_key(cfg) / MODELS_FILE
    if not path.is_file():
        return None
    sds = torch.load(path, map_location="cpu", weights_only=True)
    return sds.get("G_ema") or sds.get("G")


def course_models(profile: str, *, device="cpu", cache_dir=None, log: Callable | None = None) -> ModelSet:
    """Bicubic plus every registered course model that is shipped (standard) or cached (this profile).

    Models left out are explained in ``notes`` (and passed to ``log`` when given)."""
    out = ModelSet({BICUBIC: None}, {BICUBIC: "MATLAB-style bicubic x4"})
    try:
        ckpt = importlib.import_module("srlib.checkpoints")
        ckpt._load_registry()
        registry = dict(ckpt.REGISTRY)
    except (ImportError, AttributeError) as exc:
        out.notes.append(f"course checkpoints unavailable ({type(exc).__name__}: {exc}); showing bicubic only")
        for n in out.notes if log else ():
            log(n)
        return out
    for name, spec in registry.items():
        try:
            cfg = ckpt.course_config(name, profile)
            arch, kwargs = spec.arch(cfg)
            if profile == "standard" and ckpt.why_not_shipped(name, cfg) is None:
                shipped = ckpt.load(name, device=device)
                out.models[name] = shipped.model
                out.sources[name] = f"shipped course checkpoint ({shipped.entry.get('steps')} steps)"
                continue
            state = _cached_state(cfg, cache_dir)
            if state is None:
                how = (f"`make checkpoints` ships it" if profile == "standard" else
                       f"run notebook {'/'.join(spec.notebooks)} at the {profile} profile first")
                out.notes.append(f"{name}: not shipped or cached for the {profile} profile ({how})")
                continue
            net = ckpt.build_arch(arch, kwargs)
            net.load_state_dict(state)
            out.models[name] = net.to(device).eval()
            out.sources[name] = f"model cache ({profile} profile, trained by notebook {'/'.join(spec.notebooks)})"
        except Exception as exc:  # one broken entry must not hide the others
            out.notes.append(f"{name}: left out ({type(exc).__name__}: {exc})")
    for n in out.notes if log else ():
        log(n)
    return out


class Explorer:
    """Memoised SR outputs and metrics for (image, model) on the held-out photos."""

    def __init__(self, models: ModelSet, pairs, scale: int, device="cpu"):
        self.models = models
        self.pairs = {name: (lr, hr) for name, lr, hr in pairs}
        self.scale = scale
        self.device = device
        self._sr: dict = {}
        self._metrics: dict = {}

    @property
    def images(self) -> list[str]:
        return list(self.pairs)

    @property
    def model_names(self) -> list[str]:
        return list(self.models.models)

    def sr(self, image: str, model: str) -> np.ndarray:
        key = (image, model)
        if key not in self._sr:
            from .recipes.evaluate import super_resolve

            lr, hr = self.pairs[image]
            self._sr[key] = super_resolve(self.models.models[model], [(image, lr, hr)], self.scale,
                                          device=self.device)[0]
        return self._sr[key]

    def measure(self, image: str, model: str) -> dict:
        """Every metric of :data:`METRICS` for one (image, model); LPIPS is ``None`` when unavailable."""
        key = (image, model)
        if key not in self._metrics:
            from . import metrics
            from .niqe_eval import hf_ratio

            _, hr = self.pairs[image]
            out = self.sr(image, model)
            res = metrics.evaluate(out, hr, crop_border=self.scale)
            res["hf_ratio"] = hf_ratio(out, hr, self.scale)
            self._metrics[key] = {k: res.get(k) for k in METRICS}
        return self._metrics[key]

    def table(self, image: str) -> list[dict]:
        """One row per model on ``image``: the metrics and where the model came from."""
        return [{"model": m, **self.measure(image, m), "source": self.models.sources.get(m, "")}
                for m in self.model_names]


def static_view(ex: Explorer, image: str, metric: str = "niqe"):
    """A figure: the zoomed crop of every model on ``image`` with ``metric`` in each title."""
    from . import viz

    _, hr = ex.pairs[image]
    box = viz.auto_box(hr, size=max(16, min(hr.shape[:2]) // 4), margin=ex.scale)
    images = {"HR": hr, **{m: ex.sr(image, m) for m in ex.model_names}}
    extra = {}
    for m in ex.model_names:
        v = ex.measure(image, m)[metric]
        extra[m] = f"{metric} {v:.3f}" if v is not None else f"{metric} n/a"
    return viz.compare(images, box, titles_extra=extra,
                       suptitle=f"'{image}' at x{ex.scale}: every model available here ({metric} in the titles)")


def headless() -> bool:
    """True when no widget frontend will render (papermill, CI, the static site)."""
    return bool(os.environ.get("SRLIB_HEADLESS"))


def widget(ex: Explorer):
    """The ipywidgets explorer: image, model and metric dropdowns; the crop and the metric on demand."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    from . import viz

    img_w = W.Dropdown(options=ex.images, description="image")
    model_w = W.Dropdown(options=ex.model_names, description="model")
    metric_w = W.Dropdown(options=[(v, k) for k, v in METRICS.items()], value="niqe", description="metric")
    out = W.Output()

    def show(_=None):
        with out:
            out.clear_output(wait=True)
            image, model, metric = img_w.value, model_w.value, metric_w.value
            _, hr = ex.pairs[image]
            sr = ex.sr(image, model)
            top, left, bh, bw = viz.auto_box(hr, size=max(16, min(hr.shape[:2]) // 4), margin=ex.scale)
            vals = {m: ex.measure(image, m)[metric] for m in ex.model_names}
            fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.3]})
            axes[0].imshow(hr[top:top + bh, left:left + bw], interpolation="nearest")
            axes[0].set_title("HR (crop)")
            v = vals[model]
            axes[1].imshow(sr[top:top + bh, left:left + bw], interpolation="nearest")
            axes[1].set_title(f"{model}: {metric} " + ("n/a" if v is None else f"{v:.3f}"))
            for ax in axes[:2]:
                ax.axis("off")
            names = [m for m in vals if vals[m] is not None]
            axes[2].barh(names, [vals[m] for m in names],
                         color=["tab:red" if m == model else "tab:gray" for m in names])
            axes[2].set_xlabel(METRICS[metric])
            axes[2].set_title(f"all models on '{image}'")
            fig.tight_layout()
            plt.show()

    for w in (img_w, model_w, metric_w):
        w.observe(show, names="value")
    show()
    return W.VBox([W.HBox([img_w, model_w, metric_w]), out])


__all__ = ["METRICS", "ModelSet", "course_models", "Explorer", "static_view", "widget", "headless"]
