"""NIQE: the Natural Image Quality Evaluator, a no-reference quality score (lower is better).

Mittal, Soundararajan, Bovik, "Making a 'Completely Blind' Image Quality Analyzer", IEEE Signal
Processing Letters 20(3), 2013. The idea: natural, undistorted images have regular local
statistics; distortions (blur, noise, compression) disturb them. NIQE measures how far an
image's statistics are from those of a set of pristine photos:

1. MSCN coefficients (Eq. 1): ``(I - mu) / (sigma + 1)`` with ``mu``, ``sigma`` the local mean
   and standard deviation under a 7x7 Gaussian window (sigma 7/6, replicate borders).
2. The image is cut into 96x96 patches (no overlap). Per patch: an asymmetric generalized
   Gaussian (AGGD, Eq. 7) fitted by moment matching to the MSCN coefficients (shape, mean
   scale: 2 numbers) and to the products of neighbouring coefficients in 4 orientations
   (horizontal, vertical, two diagonals; shape, mean (Eq. 8), left and right scale: 16 numbers).
3. The same at half resolution (MATLAB ``imresize(I, 0.5)``, bicubic with antialiasing), with
   48x48 patches covering the same areas: 36 features per patch.
4. A multivariate Gaussian (MVG) of the features: at fit time over the sharpest patches of the
   pristine photos (mean local sigma above 0.75 of the image's maximum, Sec. III-B), at test
   time over all patches of the image. The score is Eq. 10:
   ``sqrt((mu1 - mu2)^T ((S1 + S2) / 2)^+ (mu1 - mu2))``.

Facts follow the authors' MATLAB release and BasicSR's ``basicsr/metrics/niqe.py``: the Y channel
(BT.601, 16-235) **rounded to integers** before anything else, as MATLAB computes NIQE on an
8-bit gray image and BasicSR rounds (``img.round()``, "necessary for being consistent with
MATLAB's result"); a border crop; the half-size image by MATLAB's bicubic ``imresize`` (BasicSR
used OpenCV's bilinear ``cv2.resize`` at first and MATLAB's bicubic since v1.3.3.11; srlib uses its
own MATLAB-compatible :func:`srlib.degradations.imresize`). Rounding matters: on BasicSR's
``baboon.png`` with the official parameters, MATLAB gives 5.72957338; without rounding the score
moves by about 0.1 (see ``tests/test_niqe.py``, which checks the published value where the
official file and image are present).

One deliberate difference: the default pristine model is fitted by srlib on the (rounded) Y
channel of the bundled photos' training split (``python -m srlib.niqe --refit``), since the
official parameters cannot be shipped here (see :func:`fit_niqe_model` on ``augment``).
Absolute values therefore differ from papers that used the official model; pass the official
``niqe_pris_params.npz`` (BasicSR) or ``modelparameters.mat`` (MATLAB release) as ``model=path``
to reproduce them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.ndimage import convolve
from scipy.special import gamma

from .degradations import imresize
from .errors import DatasetError, WeightsError
from .metrics import rgb_to_y, to_batch_255

PATCH_SIZE = 96
SHARPNESS_THRESHOLD = 0.75
DEFAULT_MODEL_PATH = Path(__file__).parent / "resources" / "niqe_pristine.npz"
N_FEATURES = 36


@dataclass(frozen=True)
class NIQEModel:
    """The multivariate Gaussian of pristine patch features: mean ``mu`` (36,), covariance ``cov`` (36, 36)."""

    mu: np.ndarray
    cov: np.ndarray
    patch_size: int = PATCH_SIZE
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        mu, cov = np.asarray(self.mu, dtype=np.float64).reshape(-1), np.asarray(self.cov, dtype=np.float64)
        if mu.shape != (N_FEATURES,) or cov.shape != (N_FEATURES, N_FEATURES):
            raise WeightsError(f"a NIQE model needs mu of shape ({N_FEATURES},) and cov of shape "
                               f"({N_FEATURES}, {N_FEATURES}); got {mu.shape} and {cov.shape}")
        if not (np.isfinite(mu).all() and np.isfinite(cov).all()):
            raise WeightsError("the NIQE model contains NaN or infinite values; refit it")
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "cov", cov)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------

def gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', 7, 7/6)``, normalised to sum 1."""
    k = np.arange(size, dtype=np.float64) - (size - 1) / 2
    w = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * sigma**2))
    return w / w.sum()


def mscn(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients (Eq. 1, C = 1) and the local sigma map."""
    w = gaussian_window()
    mu = convolve(y, w, mode="nearest")
    sigma = np.sqrt(np.abs(convolve(y * y, w, mode="nearest") - mu * mu))
    return (y - mu) / (sigma + 1.0), sigma


def half_size(y: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(y, 0.5)`` (bicubic, antialiased, symmetric borders) of a 2-D float
    image, as the NIQE authors' code computes the second scale: srlib's MATLAB-compatible
    :func:`srlib.degradations.imresize`."""
    return imresize(np.asarray(y, dtype=np.float64), 0.5)


_GAM = np.arange(0.2, 10.001, 0.001)
_R_GAM = gamma(2 / _GAM) ** 2 / (gamma(1 / _GAM) * gamma(3 / _GAM))  # strictly increasing in gam


def aggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching fit of an AGGD (Eq. 7) to each row of ``x`` (B, n).

    Returns ``(alpha, beta_l, beta_r)`` arrays of shape (B,): the shape is the grid value
    (0.2 to 10 step 0.001, as the reference code) whose ratio ``Gamma(2/a)^2 / (Gamma(1/a)
    Gamma(3/a))`` is nearest to the corrected sample ratio ``E|x|^2 / E[x^2]``; the scales
    follow from the left/right standard deviations. A row without negative or positive
    values (a flat patch) gives NaN, as in the reference code.
    """
    x = np.asarray(x, dtype=np.float64)
    neg, pos = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((x * x * neg).sum(1) / neg.sum(1))
        right_std = np.sqrt((x * x * pos).sum(1) / pos.sum(1))
        gammahat = left_std / right_std
        rhat = np.mean(np.abs(x), 1) ** 2 / np.mean(x * x, 1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    ok = np.isfinite(rhatnorm)
    # Nearest grid point (first one on ties, as argmin) via binary search on the increasing ratio.
    i = np.clip(np.searchsorted(_R_GAM, np.where(ok, rhatnorm, 0.0)), 1, len(_R_GAM) - 1)
    v = np.where(ok, rhatnorm, 0.0)
    pick_lower = (_R_GAM[i - 1] - v) ** 2 <= (_R_GAM[i] - v) ** 2
    alpha = np.where(ok, _GAM[np.where(pick_lower, i - 1, i)], np.nan)
    scale = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * scale, right_std * scale


# (row, column) shifts of the four neighbour orientations: horizontal, vertical, two diagonals.
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def block_features(blocks: np.ndarray) -> np.ndarray:
    """The 18 NIQE features of each MSCN block in ``blocks`` (B, h, w).

    ``[alpha, (beta_l + beta_r) / 2]`` of the coefficients, then for each orientation in
    :data:`SHIFTS` ``[alpha, eta, beta_l, beta_r]`` of the products of each coefficient with its
    circularly shifted neighbour, ``eta = (beta_r - beta_l) Gamma(2/alpha) / Gamma(1/alpha)`` (Eq. 8).
    """
    b = blocks.shape[0]
    alpha, bl, br = aggd_fit(blocks.reshape(b, -1))
    feats = [alpha, (bl + br) / 2]
    for shift in SHIFTS:
        prod = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, bl, br = aggd_fit(prod.reshape(b, -1))
        eta = (br - bl) * gamma(2 / alpha) / gamma(1 / alpha)
        feats += [alpha, eta, bl, br]
    return np.stack(feats, axis=1)


def _blocks(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape
    nh, nw = h // size, w // size
    return img[: nh * size, : nw * size].reshape(nh, size, nw, size).transpose(0, 2, 1, 3).reshape(-1, size, size)


def patch_features(y: np.ndarray, patch_size: int = PATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """36 features per ``patch_size`` patch of a luminance image (0-255), and each patch's sharpness.

    The image is cropped to whole patches (bottom/right remainder dropped, as the reference).
    Rows are patches in row-major order; columns 0-17 come from full resolution, 18-35 from the
    half-size image (patches of ``patch_size // 2``, same areas). Sharpness is the mean local
    sigma of the patch at full resolution (used to pick pristine patches at fit time).
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise DatasetError(f"patch_features expects a 2-D luminance image; got shape {y.shape}")
    if patch_size < 8 or patch_size % 2:
        raise DatasetError(f"patch_size must be an even number >= 8; got {patch_size}")
    h, w = y.shape
    if h < patch_size or w < patch_size:
        raise DatasetError(f"NIQE needs an image of at least {patch_size}x{patch_size} pixels (one patch) "
                           f"after the border crop; got {h}x{w}. Evaluate a larger image or crop less.")
    y = y[: h // patch_size * patch_size, : w // patch_size * patch_size]
    coeffs, sigma = mscn(y)
    feats1 = block_features(_blocks(coeffs, patch_size))
    sharpness = _blocks(sigma, patch_size).mean(axis=(1, 2))
    coeffs2, _ = mscn(half_size(y))
    feats2 = block_features(_blocks(coeffs2, patch_size // 2))
    return np.concatenate([feats1, feats2], axis=1), sharpness


def fit_mvg(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (NaN-ignoring) and covariance (rows with NaN dropped, N-1 normalisation) of (B, d) features.

    With fewer than two complete rows the covariance is undefined and returned as zeros.
    """
    features = np.asarray(features, dtype=np.float64)
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) == 0:
        raise DatasetError("every NIQE patch is flat (no texture at all); NIQE is undefined for this image")
    mu = np.nanmean(features, axis=0)
    cov = np.cov(complete, rowvar=False) if len(complete) > 1 else np.zeros((features.shape[1],) * 2)
    return mu, cov


def niqe_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Eq. 10: ``sqrt((mu1 - mu2)^T ((cov1 + cov2) / 2)^+ (mu1 - mu2))`` with the pseudo-inverse."""
    d = mu1 - mu2
    q = d @ np.linalg.pinv((cov1 + cov2) / 2) @ d
    return float(np.sqrt(max(q, 0.0)))


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def round_y(y: np.ndarray) -> np.ndarray:
    """Round luminance to integers as BasicSR does before NIQE (``numpy.round``: halves to even).

    MATLAB computes NIQE on an 8-bit gray image, i.e. on integers; BasicSR reproduces that by
    rounding its float Y. Exact halves practically never occur in a BT.601 Y computed from 8-bit
    RGB, so the rounding rule for ties (MATLAB rounds them away from zero) does not matter.
    """
    return np.round(np.asarray(y, dtype=np.float64))


def _to_y_images(img, rounded: bool = True) -> tuple[list[np.ndarray], bool]:
    """Luminance images (0-255) from a 2-D array (taken as Y on 0-255) or any RGB input of
    srlib.metrics, rounded to integers (:func:`round_y`) unless ``rounded=False``."""
    if isinstance(img, np.ndarray) and img.ndim == 2:
        if img.size == 0:
            raise DatasetError(f"the image is empty (shape {img.shape}); NIQE needs at least one "
                               f"{PATCH_SIZE}x{PATCH_SIZE} patch")
        ys, batched = [img.astype(np.float64)], False
    else:
        rgb255, batched = to_batch_255(img, "image")
        ys = list(rgb_to_y(rgb255 / 255.0))
    return ([round_y(y) for y in ys] if rounded else ys), batched


def _dihedral(y: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations and mirror images of a 2-D image."""
    rots = [np.rot90(y, k) for k in range(4)]
    return [np.ascontiguousarray(v) for r in rots for v in (r, r[:, ::-1])]


def fit_niqe_model(images, patch_size: int = PATCH_SIZE, sharpness_threshold: float = SHARPNESS_THRESHOLD,
                   augment: bool = False) -> NIQEModel:
    """Fit the pristine MVG from high-quality photos (Sec. III-B of the paper).

    Each image (any input :func:`niqe` accepts; RGB is converted to Y and rounded to integers, as
    the authors fitted on 8-bit images and :func:`niqe` scores) is cut into patches; only
    the patches whose sharpness exceeds ``sharpness_threshold`` times the image's sharpest patch
    are kept; their 36-D features are pooled and summarised by mean and covariance.

    ``augment=True`` also uses the 8 rotations/mirrors of every image (the selection is made per
    transformed image). The paper had 125 pristine photos; with a handful, this multiplies the
    patches that estimate the 36x36 covariance and makes the model symmetric between the
    horizontal/vertical and the two diagonal orientations, as natural scene statistics are.
    """
    if not 0 <= sharpness_threshold < 1:
        raise DatasetError(f"sharpness_threshold must be in [0, 1); got {sharpness_threshold}")
    kept = []
    for img in images:
        for y0 in _to_y_images(img)[0]:
            for y in (_dihedral(y0) if augment else [y0]):
                feats, sharp = patch_features(y, patch_size)
                kept.append(feats[sharp > sharpness_threshold * sharp.max()])
    if not kept:
        raise DatasetError("fit_niqe_model got no images")
    feats = np.concatenate(kept)
    if len(feats) < 2:
        raise DatasetError(f"only {len(feats)} pristine patch(es) selected; a NIQE model needs many "
                           "(use more or larger images)")
    mu, cov = fit_mvg(feats)
    return NIQEModel(mu, cov, patch_size, {"n_patches": len(feats), "sharpness_threshold": sharpness_threshold,
                                           "augment": augment})


def save_niqe_model(model: NIQEModel, path, **info) -> Path:
    """Write ``model`` as an .npz with keys ``mu_prisparam``, ``cov_prisparam``, ``patch_size`` and ``info_*``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {f"info_{k}": np.asarray(v) for k, v in {**model.info, **info}.items()}
    np.savez(path, mu_prisparam=model.mu, cov_prisparam=model.cov, patch_size=np.int64(model.patch_size), **extra)
    return path


_KEY_PAIRS = (("mu_prisparam", "cov_prisparam"), ("mu_pris_param", "cov_pris_param"), ("mu", "cov"))


@lru_cache(maxsize=8)
def _load_cached(path: str) -> NIQEModel:
    p = Path(path)
    if not p.is_file():
        hint = ("regenerate it with `python -m srlib.niqe --refit`" if p == DEFAULT_MODEL_PATH
                else "check the path")
        raise WeightsError(f"NIQE model file {p} does not exist; {hint}")
    try:
        if p.suffix.lower() == ".mat":
            from scipy.io import loadmat

            data = loadmat(p)
        else:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
    except Exception as exc:
        raise WeightsError(f"cannot read NIQE model {p}: {exc}") from exc
    for mu_key, cov_key in _KEY_PAIRS:
        if mu_key in data and cov_key in data:
            patch = int(np.asarray(data.get("patch_size", PATCH_SIZE)).reshape(-1)[0])
            info = {k[5:]: data[k].tolist() for k in data if k.startswith("info_")}
            return NIQEModel(data[mu_key], data[cov_key], patch, {"path": str(p), **info})
    keys = sorted(k for k in data if not k.startswith("__"))
    raise WeightsError(f"{p} holds no NIQE parameters (found keys {keys}); expected mu_prisparam and "
                       "cov_prisparam (official MATLAB release / srlib) or mu_pris_param and cov_pris_param (BasicSR)")


def load_niqe_model(path=None) -> NIQEModel:
    """Load a pristine model: srlib's bundled one by default, or a user file.

    ``path`` may be an .npz (srlib's or BasicSR's ``niqe_pris_params.npz`` layout) or the authors'
    ``modelparameters.mat``; keys ``mu_prisparam``/``cov_prisparam`` or ``mu_pris_param``/``cov_pris_param``.
    """
    return _load_cached(str(Path(path if path is not None else DEFAULT_MODEL_PATH).resolve()))


def niqe(img, crop_border: int = 0, model=None, *, round_to_integers: bool = True):
    """NIQE score of ``img`` (lower means more natural), Eq. 10 of Mittal et al. 2013.

    ``img``: RGB as in :mod:`srlib.metrics` (uint8 H x W x 3, float [0, 1], tensors (3, H, W) or
    (N, 3, H, W)), converted to BT.601 Y; or a 2-D array taken as Y on the 0-255 scale.
    The luminance is rounded to integers (``round_to_integers=True``, the default: MATLAB and
    BasicSR compute NIQE on integer gray levels; ``False`` keeps the float Y, as srlib did before,
    and does not reproduce published values).
    ``crop_border`` pixels are removed from each side first (BasicSR convention). ``model``:
    ``None`` (srlib's bundled pristine model), a path to a parameter file, or a :class:`NIQEModel`.
    The image must hold at least one ``model.patch_size`` patch; with a single patch its feature
    covariance is undefined and taken as zero (the pristine covariance alone weighs the distance).

    Returns a float, or a numpy array (N,) for batched input.
    """
    if not isinstance(model, NIQEModel):
        model = load_niqe_model(model)
    ys, batched = _to_y_images(img, rounded=round_to_integers)
    scores = []
    for y in ys:
        h, w = y.shape
        if isinstance(crop_border, (bool, np.bool_)) or not isinstance(crop_border, (int, np.integer)) \
                or crop_border < 0 or 2 * crop_border >= min(h, w):
            raise DatasetError(f"crop_border must be a non-negative integer smaller than half of {h}x{w}; "
                               f"got {crop_border!r}")
        if crop_border:
            y = y[crop_border:-crop_border, crop_border:-crop_border]
        feats, _ = patch_features(y, model.patch_size)
        mu, cov = fit_mvg(feats)
        if np.isnan(mu).any():
            raise DatasetError("NIQE features are undefined for this image (flat regions everywhere)")
        scores.append(niqe_distance(model.mu, model.cov, mu, cov))
    return np.asarray(scores) if batched else scores[0]


# ---------------------------------------------------------------------------------------------
# Refit command: python -m srlib.niqe --refit
# ---------------------------------------------------------------------------------------------

def pristine_images() -> dict[str, np.ndarray]:
    """The bundled high-quality photos' training split (never the test split)."""
    from .data import load_images

    return load_images("photos", "train")


def refit(out=DEFAULT_MODEL_PATH) -> NIQEModel:
    """Fit the default model on :func:`pristine_images` and save it to ``out``."""
    images = pristine_images()
    names = sorted(images)
    model = fit_niqe_model([images[n] for n in names], augment=True)
    save_niqe_model(model, out, images=",".join(names),
                    source="srlib.data photos/train, BT.601 Y rounded to integers, 8 rotations/mirrors "
                           "per image")
    _load_cached.cache_clear()
    return model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m srlib.niqe", description=__doc__.split("\n")[0])
    parser.add_argument("--refit", action="store_true", help="refit the bundled pristine model")
    parser.add_argument("--out", default=str(DEFAULT_MODEL_PATH), help="where to write the model (.npz)")
    parser.add_argument("images", nargs="*", help="image files to score with the current model")
    args = parser.parse_args(argv)
    if args.refit:
        model = refit(args.out)
        print(f"NIQE model fitted on {model.info['n_patches']} patches -> {args.out}")
    if args.images:
        from .io import read_image

        for f in args.images:
            print(f"{f}\t{niqe(read_image(f)):.4f}")
    if not args.refit and not args.images:
        parser.print_help()


if __name__ == "__main__":
    main()
