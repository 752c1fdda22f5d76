"""The HR images a notebook evaluates on, chosen by the profile.

smoke and standard evaluate on the embedded held-out split (``photos`` / ``test`` unless a
notebook asks for another embedded set), so the course runs offline. The paper profile
evaluates on a downloaded benchmark (Set5 by default; Set14, B100, Urban100 by name), as the
papers' tables do; a benchmark that is not installed is a :class:`~srlib.errors.DatasetError`
naming the download command (``python -m srlib.data download set5``).

Both return ``{id: HR uint8}``; the notebooks then make the LR images with
:func:`srlib.data.eval_pairs` (mod-crop to the scale, then MATLAB-exact bicubic
:func:`srlib.degradations.imresize`, the way the benchmarks' own LR images were made), so one
evaluation code path serves every profile.
"""

from __future__ import annotations

import numpy as np

from .profiles import Profile, get_profile

BENCHMARKS = ("set5", "set14", "b100", "urban100")
"""The paper profile's test sets (``data/manifests.json`` names)."""


def test_images(profile: str | Profile, *, embedded: str = "photos", benchmark: str = "set5",
                n: int | None = None, seed: int = 0, root=None) -> dict[str, np.ndarray]:
    """``{id: HR image}`` to evaluate on: ``embedded`` / test below the paper profile, ``benchmark`` at it.

    ``n``: the first ``n`` images (all when None). ``seed`` only affects the rendered text set.
    ``root``: the data root of the paper profile (default ``$SRLIB_DATA`` or ``data/``).
    """
    p = get_profile(profile)
    if p.name != "paper":
        from .data import load_images

        return load_images(embedded, "test", n=n, seed=seed)
    key = str(benchmark).lower()
    if key not in BENCHMARKS:
        from .errors import DatasetError

        raise DatasetError(f"unknown benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
    from .paper_data import load_hr_images

    return load_hr_images(key, "test", root=root, n=n)


__all__ = ["BENCHMARKS", "test_images"]
