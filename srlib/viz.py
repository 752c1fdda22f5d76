"""Pictures for the notebooks: comparison grids with zoomed crops, before/after views, curves.

Super-resolution differences live in small details, so every comparison shows the whole image
with a marked box and, below it, the same box enlarged with nearest-neighbour sampling (no
smoothing that would hide artefacts). The interactive views use ipywidgets when a live kernel
can show them and fall back to a static figure otherwise, so a headless papermill run never waits.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

Box = tuple[int, int, int, int]  # top, left, height, width (in HR pixels)


def _as_uint8(img) -> np.ndarray:
    arr = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def upsample_nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Enlarge with nearest-neighbour sampling to ``size`` = (H, W): shows pixels as they are."""
    img = _as_uint8(img)
    h, w = img.shape[:2]
    rows = (np.arange(size[0]) * h // size[0]).clip(0, h - 1)
    cols = (np.arange(size[1]) * w // size[1]).clip(0, w - 1)
    return img[rows][:, cols]


def auto_box(img: np.ndarray, size: int = 48, margin: int = 0) -> Box:
    """A square box on the most detailed region (largest gradient energy), for zoomed crops.

    ``margin``: keep the box at least this many pixels away from every border, e.g. the border
    that PSNR/SSIM crop away (``scale``), so a zoom never shows pixels the metrics ignore.
    """
    gray = _as_uint8(img).astype(np.float64).mean(axis=2)
    h, w = gray.shape
    margin = max(0, int(margin))
    if min(h, w) - 2 * margin < 1:
        raise ValueError(f"a margin of {margin} px leaves nothing of a {h}x{w} image")
    size = min(size, h - 2 * margin, w - 2 * margin)
    gy, gx = np.gradient(gray)
    energy = gy ** 2 + gx ** 2
    if margin:  # outside the allowed region no box may start or end
        energy[:margin] = energy[h - margin:] = 0
        energy[:, :margin] = energy[:, w - margin:] = 0
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size]
            + integral[:-size, :-size])
    if margin:
        valid = np.full(sums.shape, -np.inf)
        valid[margin:h - margin - size + 1, margin:w - margin - size + 1] = \
            sums[margin:h - margin - size + 1, margin:w - margin - size + 1]
        sums = valid
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top), int(left), size, size


def compare(images: Mapping[str, np.ndarray], box: Box | None = None, *, titles_extra:
            Mapping[str, str] | None = None, zoom_size: int = 160, suptitle: str | None = None,
            box_margin: int = 0):
    """Side-by-side comparison: whole images on top (box marked), zoomed box below.

    ``images`` maps a label to an image; images of a smaller size than the largest (an LR input)
    are shown enlarged with nearest-neighbour sampling to the common size so the box lines up.
    Without ``box``, the zoom goes to the most detailed region of the first full-size image
    (put the ground truth first).
    ``titles_extra`` adds a second title line per label (e.g. "PSNR-Y 27.31 dB").
    ``box_margin`` keeps the automatic box that many pixels inside the border: pass the metrics'
    border crop (``scale``) so the zoom shows only pixels the numbers are computed on.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    labels = list(images)
    arrays = [_as_uint8(images[k]) for k in labels]
    H = max(a.shape[0] for a in arrays)
    W = max(a.shape[1] for a in arrays)
    full_size = [a.shape[:2] == (H, W) for a in arrays]
    arrays = [a if full else upsample_nearest(a, (H, W)) for a, full in zip(arrays, full_size)]
    if box is None:  # the most detailed region of the first image given at full size
        reference = arrays[full_size.index(True)]
        box = auto_box(reference, size=max(16, min(H, W) // 5), margin=box_margin)
    top, left, bh, bw = box
    n = len(arrays)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.4), squeeze=False,
                             gridspec_kw={"height_ratios": [H / W, 1.0]})
    for i, (label, arr) in enumerate(zip(labels, arrays)):
        ax = axes[0, i]
        ax.imshow(arr)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), bw, bh, fill=False, ec="red", lw=1.5))
        title = label if not titles_extra or label not in titles_extra else \
            f"{label}\n{titles_extra[label]}"
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        crop = arr[top:top + bh, left:left + bw]
        axes[1, i].imshow(upsample_nearest(crop, (zoom_size, zoom_size * bw // bh)))
        axes[1, i].axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int = 4,
               size: float = 2.4, suptitle: str | None = None):
    """A plain grid of images with optional titles."""
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(_as_uint8(images[i]))
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def loss_curves(history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]],
                keys: Sequence[str] | None = None, *, smooth: int = 1, title: str | None = None,
                ax=None):
    """Plot training losses against step. ``history`` is a list of dicts with a ``step`` key, or
    a dict of lists (``step`` plus one list per loss). ``smooth`` is a moving-average window."""
    import matplotlib.pyplot as plt

    if isinstance(history, Mapping):
        cols = dict(history)
    else:
        cols = {}
        for row in history:
            for k, v in row.items():
                cols.setdefault(k, []).append(v)
    steps = np.asarray(cols.get("step", np.arange(len(next(iter(cols.values()))))), float)
    keys = [k for k in (keys or cols) if k != "step"]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
    else:
        fig = ax.figure
    for k in keys:
        y = np.asarray(cols[k], dtype=float)
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            x = steps[smooth - 1:]
        else:
            x = steps
        ax.plot(x, y, label=k, lw=1.2)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _in_live_kernel() -> bool:
    """True inside a Jupyter kernel that a browser front-end can render widgets for."""
    import os

    if os.environ.get("SRLIB_HEADLESS"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _png_bytes(fig, dpi: int = 100) -> bytes:
    """A figure rendered to PNG bytes, whatever matplotlib backend is active."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def before_after(before: np.ndarray, after: np.ndarray, labels: tuple[str, str] = ("before", "after"),
                 *, interactive: bool | None = None):
    """Wipe comparison: a slider moves the split between ``before`` and ``after``.

    In a live kernel with ipywidgets this returns a widget (display it): a slider and the view,
    drawn off-screen and shown as a PNG image widget, so it works under any matplotlib backend
    (inline, ipympl, Agg, a GUI backend). Otherwise (a script, a headless run, or
    ``interactive=False``) it returns a static figure with the split in the middle. It never
    blocks, so papermill runs finish. The static figure is not registered with pyplot (it is shown
    once, as the cell's result; ``fig.savefig`` works as usual).
    """
    a = _as_uint8(before)
    b = _as_uint8(after)
    if a.shape != b.shape:
        a = upsample_nearest(a, b.shape[:2])
    if interactive is None:
        interactive = _in_live_kernel()

    def draw(split: float, fig=None):
        col = int(round(split * b.shape[1]))
        view = b.copy()
        view[:, :col] = a[:, :col]
        size = (5, 5 * b.shape[0] / b.shape[1])
        if fig is None:
            # outside pyplot: the returned figure is shown once, as the cell's result, and never
            # a second time by the inline backend's flush of open pyplot figures
            from matplotlib.figure import Figure

            fig = Figure(figsize=size)
        else:
            fig.set_size_inches(*size)
        ax = fig.add_subplot(1, 1, 1)
        ax.imshow(view)
        ax.axvline(col - 0.5, color="yellow", lw=1)
        ax.set_title(f"left: {labels[0]}   right: {labels[1]}", fontsize=9)
        ax.axis("off")
        return fig

    if not interactive:
        return draw(0.5)
    import ipywidgets as widgets
    from matplotlib.figure import Figure

    def render(split: float) -> bytes:
        # a Figure outside pyplot: no backend, no window, nothing left open
        return _png_bytes(draw(split, Figure()))

    slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="split",
                                 continuous_update=False)
    image = widgets.Image(value=render(slider.value), format="png")

    def update(change=None):
        image.value = render(slider.value)

    slider.observe(update, names="value")
    return widgets.VBox([slider, image])
