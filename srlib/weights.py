"""Weight files: reading checkpoints, loading them into models, and fetching official files.

Reading (:func:`read_state_dict`) accepts every layout the course meets:

- BasicSR / Real-ESRGAN files: ``{"params_ema": {...}}`` (the EMA generator, preferred) or
  ``{"params": {...}}``; otherwise the file is taken as a bare ``{name: tensor}`` dict;
- keys saved from ``nn.DataParallel`` / DDP, prefixed ``module.`` (stripped);
- the original ESRGAN repository's RRDBNet naming, both the 2019 one (``RRDB_trunk.N.RDBk.convj``,
  ``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``) and the 2018 "old_arch" one (``model.0``,
  ``model.1.sub.N.RDBk.convj.0``, ``model.3``, ...), renamed to BasicSR's ``body.N.rdbk.convj``,
  ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``.

Every file is read with ``torch.load(path, map_location="cpu", weights_only=True)``, or, for a
``safetensors`` file (recognised by its header, whatever its name; the format Hugging Face and
most new SR checkpoints ship in), with the ``safetensors`` package: a checkpoint can never run
code. Anything wrong (missing, truncated, not a checkpoint, pickled
objects, a model that does not fit) raises :class:`~srlib.errors.WeightsError` whose first line
says what is wrong and what to do.

Fetching (:func:`fetch`, :func:`download`, :func:`extract_archive`): :data:`OFFICIAL` lists
the official files with URL and SHA-256. A download streams to a temporary file next to the
destination, is checked against the length the server announced and against its SHA-256, and
only then renamed into place, so a cache never holds a partial or unverified file. Only
``https://`` URLs are fetched (``http://`` only from the local machine, for tests), and redirects
are held to the same rule. Where no full SHA-256 is published, the entry carries the hash prefix that
the official file name itself carries (BasicSR and torchvision name files ``name-<first 8 hex
of sha256>.pth``) and is verified by prefix, as ``torch.hub`` does. Nothing here touches the
network unless :func:`download` or :func:`fetch` is called.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import torch
from torch import nn

from .errors import DownloadError, WeightsError

PARAM_KEYS = ("params_ema", "params")
"""Top-level keys tried in order before taking the file as a bare state dict (BasicSR's order)."""


# ============================================================================================
# Reading checkpoints
# ============================================================================================
SAFETENSORS_MAGIC_MAX_HEADER = 100_000_000
"""A safetensors file starts with an 8-byte little-endian header length, then a JSON header."""


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` looks like a safetensors file (its first bytes, not its name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= SAFETENSORS_MAGIC_MAX_HEADER and head[8:9] == b"{"


def _safetensors_load(path: Path) -> dict:
    """A safetensors file as ``{name: tensor}`` on the CPU (the format holds tensors only, no code)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise WeightsError(
            f"'{path}' is a safetensors file; reading it needs the 'safetensors' package: "
            f"pip install safetensors") from None
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:  # SafetensorError, OSError, ... for damaged files
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise WeightsError(f"cannot read safetensors file '{path}': it is damaged or truncated "
                           f"({reason}). Download or save it again") from None


_TORCH_HINTS = ("weights only load failed", "re-running `torch.load`", "re-running torch.load",
                "check the documentation of torch.load", "please file an issue", "in pytorch 2.6")


def _torch_reason(text: str) -> str:
    """The useful part of a torch.load error: without torch's advice to load with weights_only=False."""
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.S)
    if detail:
        return detail[1].strip()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    kept = [p for p in paragraphs if not any(h in p.lower() for h in _TORCH_HINTS)]
    return (kept[0] if kept else "").strip()


def _torch_load(path: Path):
    """Read a checkpoint (``torch.load(weights_only=True)``, or safetensors) with every failure
    turned into a WeightsError."""
    if not path.exists():
        raise WeightsError(
            f"weights file not found: '{path}'. Check the path, or get an official file with "
            f"srlib.weights.fetch(name) (names: {', '.join(OFFICIAL)})"
        )
    if path.is_dir():
        raise WeightsError(f"'{path}' is a directory, not a weights file: pass the .pth file inside it")
    if path.stat().st_size == 0:
        raise WeightsError(f"weights file '{path}' is empty (0 bytes): the download probably failed; "
                           f"delete it and download it again")
    if is_safetensors(path):
        return _safetensors_load(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        text = str(exc)
        found = re.search(r"unsupported (?:global:?\s+)?GLOBAL\s+([\w.]+)", text, re.I)
        if found:
            raise WeightsError(
                f"'{path}' holds a pickled Python object ({found[1]}) besides tensors: srlib refuses "
                f"to run Python objects from a weights file (it loads with weights_only=True, so a "
                f"file can never run code). If you made the file yourself, re-save only the tensors: "
                f"torch.save(model.state_dict(), path)"
            ) from None
        if path.suffix.lower() == ".safetensors":
            raise WeightsError(f"'{path}' is named .safetensors but does not start like a safetensors "
                               f"file (8-byte header length, then a JSON header): it is damaged or "
                               f"not a safetensors file. Download or save it again") from None
        reason = _torch_reason(text)
        reason = f"{type(exc).__name__}: {reason[:160]}" if reason else type(exc).__name__
        raise WeightsError(
            f"cannot read weights file '{path}': it is corrupt, truncated or not a PyTorch "
            f"checkpoint ({' '.join(reason.split())}). Download or save it again"
        ) from None


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def select_params(ckpt, path="checkpoint") -> tuple[dict, str | None]:
    """Pick the state dict inside a loaded checkpoint: ``params_ema``, then ``params``, then bare.

    Returns ``(state_dict, key)`` where ``key`` is the top-level key used (None for a bare dict).
    """
    if not isinstance(ckpt, dict):
        raise WeightsError(
            f"'{path}' holds a {type(ckpt).__name__}, not a dict of tensors: it is not a model "
            f"checkpoint (save one with torch.save(model.state_dict(), path))"
        )
    for key in PARAM_KEYS:
        if key in ckpt:
            if not _is_tensor_dict(ckpt[key]):
                raise WeightsError(f"'{path}': entry '{key}' is not a dict of tensors; the file is damaged")
            return ckpt[key], key
    if _is_tensor_dict(ckpt):
        return ckpt, None
    tops = ", ".join(repr(k) for k in list(ckpt)[:8])
    raise WeightsError(
        f"'{path}' is not a weights file: no 'params_ema' or 'params' entry and not a flat dict of "
        f"tensors (top-level keys: {tops or 'none'}). A training state (optimizer, iteration) is not "
        f"a model; pass the model checkpoint instead"
    )


_RDB_NEW = re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(?:0\.)?(weight|bias)$")
_RDB_OLD = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_ESRGAN_RENAME = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2",
                  "HRconv": "conv_hr", "conv_first": "conv_first", "conv_last": "conv_last"}
_ESRGAN_OLD_RENAME = {"model.0": "conv_first", "model.3": "conv_up1", "model.6": "conv_up2",
                      "model.8": "conv_hr", "model.10": "conv_last"}


def esrgan_naming(state: dict) -> str | None:
    """Which original-ESRGAN naming ``state`` uses: ``"esrgan"``, ``"esrgan_old_arch"`` or None."""
    if any(k.startswith("RRDB_trunk.") for k in state):
        return "esrgan"
    if "model.0.weight" in state and any(k.startswith("model.1.sub.") for k in state):
        return "esrgan_old_arch"
    return None


def convert_esrgan_keys(state: dict) -> OrderedDict:
    """Rename an original-ESRGAN RRDBNet state dict to BasicSR's names (tensors are shared).

    Unknown keys are kept unchanged so that a strict load reports them.
    """
    naming = esrgan_naming(state)
    if naming is None:
        return OrderedDict(state)
    out: OrderedDict = OrderedDict()
    if naming == "esrgan":
        for k, v in state.items():
            m = _RDB_NEW.match(k)
            if m:
                out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
                continue
            stem, _, leaf = k.rpartition(".")
            out[f"{_ESRGAN_RENAME[stem]}.{leaf}" if stem in _ESRGAN_RENAME else k] = v
        return out
    # old_arch: model.1.sub.<num_block> is the trunk conv after the last RRDB
    blocks = {int(m[1]) for k in state if (m := _RDB_OLD.match(k))}
    trunk = f"model.1.sub.{max(blocks) + 1 if blocks else 0}"
    for k, v in state.items():
        m = _RDB_OLD.match(k)
        if m:
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
            continue
        stem, _, leaf = k.rpartition(".")
        if stem == trunk:
            out[f"conv_body.{leaf}"] = v
        else:
            out[f"{_ESRGAN_OLD_RENAME[stem]}.{leaf}" if stem in _ESRGAN_OLD_RENAME else k] = v
    return out


def normalize_state_dict(state: dict) -> OrderedDict:
    """Strip ``module.`` prefixes and rename original-ESRGAN keys to BasicSR's."""
    state = OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state.items())
    return convert_esrgan_keys(state)


def read_state_dict(path) -> OrderedDict:
    """Read a checkpoint file into a BasicSR-named ``{key: tensor}`` dict on the CPU.

    ``params_ema`` is preferred over ``params`` (the EMA weights are the ones BasicSR evaluates),
    then a bare dict; ``module.`` prefixes are stripped; original-ESRGAN names are converted.
    """
    path = Path(path)
    state, _ = select_params(_torch_load(path), path)
    return normalize_state_dict(state)


# ============================================================================================
# Recognising what a state dict is
# ============================================================================================
def _count(state: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m[1] for k in state if (m := rx.match(k))})


def guess_architecture(state: dict) -> dict | None:
    """Guess which srlib architecture (and constructor kwargs) a BasicSR-named state dict fits.

    Returns ``{"arch": name, "kwargs": {...}, "scale": s}`` or None when nothing matches.
    The guess reads shapes only: RRDBNet's scale from ``conv_first``'s input channels (3, 12,
    48 for x4, x2, x1), EDSR's from the number and width of upsampler convs, and so on.
    EDSR's ``res_scale`` cannot be read from weights; the official 256 x 32 models use 0.1.
    """
    state = normalize_state_dict(state)

    def shape(k):
        v = state.get(k)
        return tuple(v.shape) if isinstance(v, torch.Tensor) else None

    first = shape("conv_first.weight")
    if first and shape("body.0.rdb1.conv1.weight") and shape("conv_up1.weight"):
        out_ch = shape("conv_last.weight")[0] if shape("conv_last.weight") else 3
        ratio = first[1] // max(out_ch, 1)
        scale = {1: 4, 4: 2, 16: 1}.get(ratio)
        if scale is not None:
            kw = dict(num_in_ch=out_ch, num_out_ch=out_ch, scale=scale, num_feat=first[0],
                      num_block=_count(state, r"^body\.(\d+)\.rdb1\."),
                      num_grow_ch=shape("body.0.rdb1.conv1.weight")[0])
            return {"arch": "rrdbnet", "kwargs": kw, "scale": scale}
    if first and shape("conv_after_body.weight") and shape("upsample.0.weight"):
        nf = first[0]
        ups = [shape(f"upsample.{i}.weight") for i in range(0, 20, 2) if shape(f"upsample.{i}.weight")]
        if len(ups) == 1 and ups[0][0] == 9 * nf:
            scale = 3
        elif all(u[0] == 4 * nf for u in ups):
            scale = 2 ** len(ups)
        else:
            return None
        kw = dict(num_in_ch=first[1], num_out_ch=shape("conv_last.weight")[0], num_feat=nf,
                  num_block=_count(state, r"^body\.(\d+)\.conv1\."), upscale=scale,
                  res_scale=0.1 if nf >= 256 else 1)
        return {"arch": "edsr", "kwargs": kw, "scale": scale}
    if first and shape("upconv1.weight") and shape("conv_hr.weight"):
        nf = first[0]
        scale = 4 if shape("upconv2.weight") else {4: 2, 9: 3}.get(shape("upconv1.weight")[0] // nf)
        if scale is None:
            return None
        kw = dict(num_in_ch=first[1], num_out_ch=shape("conv_last.weight")[0], num_feat=nf,
                  num_block=_count(state, r"^body\.(\d+)\.conv1\."), upscale=scale)
        return {"arch": "msrresnet", "kwargs": kw, "scale": scale}
    if shape("conv0_0.weight") and shape("linear1.weight"):
        c0 = shape("conv0_0.weight")
        kw = dict(num_in_ch=c0[1], num_feat=c0[0], input_size=256 if shape("conv5_0.weight") else 128)
        return {"arch": "vgg_discriminator", "kwargs": kw, "scale": None}
    if shape("conv0.weight") and shape("conv1.weight_orig") and shape("conv9.weight"):
        c0 = shape("conv0.weight")
        return {"arch": "unet_discriminator_sn", "kwargs": dict(num_in_ch=c0[1], num_feat=c0[0]),
                "scale": None}
    return None


def describe_guess(guess: dict | None) -> str:
    """``"RRDBNet(num_in_ch=3, ..., num_grow_ch=32)"`` for a :func:`guess_architecture` result."""
    if guess is None:
        return "no architecture srlib knows"
    names = {"rrdbnet": "RRDBNet", "edsr": "EDSR", "msrresnet": "MSRResNet",
             "vgg_discriminator": "VGGStyleDiscriminator", "unet_discriminator_sn": "UNetDiscriminatorSN"}
    args = ", ".join(f"{k}={v}" for k, v in guess["kwargs"].items())
    return f"{names.get(guess['arch'], guess['arch'])}({args})"


# ============================================================================================
# Loading into a model
# ============================================================================================
@dataclass
class LoadReport:
    """What :func:`load_weights` did: keys the model lacks, keys the file lacks, shape clashes."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, file, model
    loaded: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def _first(items, n=5) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def compare_state_dict(model: nn.Module, state: dict) -> LoadReport:
    """Compare a state dict with ``model.state_dict()`` key by key and shape by shape."""
    own = model.state_dict()
    rep = LoadReport()
    rep.missing = [k for k in own if k not in state]
    rep.unexpected = [k for k in state if k not in own]
    rep.mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape))
                      for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    return rep


def mismatch_message(model: nn.Module, rep: LoadReport, state: dict, source="weights") -> str:
    """A WeightsError message: one summary line (what to do), then the details."""
    guess = guess_architecture(state)
    parts = []
    if rep.missing:
        parts.append(f"{len(rep.missing)} missing")
    if rep.unexpected:
        parts.append(f"{len(rep.unexpected)} unexpected")
    if rep.mismatched:
        parts.append(f"{len(rep.mismatched)} of a different shape")
    head = (f"{source} do not fit {type(model).__name__}: {', '.join(parts)} keys; "
            f"the file looks like {describe_guess(guess)}")
    if guess is not None:
        head += ": build that model (or pass those sizes) and load again"
    lines = [head]
    if rep.missing:
        lines.append(f"  missing from the file ({len(rep.missing)}): {_first(rep.missing)}")
    if rep.unexpected:
        lines.append(f"  unexpected in the file ({len(rep.unexpected)}): {_first(rep.unexpected)}")
    if rep.mismatched:
        shown = [f"{k} file {list(a)} vs model {list(b)}" for k, a, b in rep.mismatched]
        lines.append(f"  shape mismatches ({len(rep.mismatched)}): {_first(shown, 3)}")
    return "\n".join(lines)


def load_weights(model: nn.Module, path_or_state, strict: bool = True) -> LoadReport:
    """Load a checkpoint file (or an already-read state dict) into ``model``.

    ``strict=True``: every key must be present on both sides with the same shape, otherwise a
    :class:`WeightsError` lists missing / unexpected keys and shape clashes (first few and
    counts) and names the architecture and sizes the file does fit. ``strict=False``: loads the
    keys that match in name and shape, leaves the rest of the model as it is, and returns the
    report so the caller can see what was skipped.
    """
    if isinstance(path_or_state, dict):
        state, _ = select_params(path_or_state, "state dict")
        state, source = normalize_state_dict(state), "weights"
    else:
        state, source = read_state_dict(path_or_state), f"weights in '{path_or_state}'"
    rep = compare_state_dict(model, state)
    if strict and not rep.ok:
        raise WeightsError(mismatch_message(model, rep, state, source))
    bad = {k for k, _, _ in rep.mismatched}
    usable = {k: v for k, v in state.items() if k not in bad and k not in rep.unexpected}
    model.load_state_dict(usable, strict=False)
    rep.loaded = len(usable)
    return rep


# ============================================================================================
# Official files
# ============================================================================================
@dataclass(frozen=True)
class OfficialFile:
    """One official pretrained file.

    ``sha256`` is the full hex digest, or (``sha256_prefix=True``) the prefix the official file
    name carries; None when neither is published (the file is then downloaded unverified, with
    a warning). ``hub=True`` files live in torch hub's cache (``torch.hub.get_dir()/checkpoints``),
    where torchvision and lpips look for them.
    """

    url: str
    filename: str
    arch: str
    kwargs: dict
    sha256: str | None
    sha256_prefix: bool = False
    hub: bool = False
    note: str = ""


_GDRIVE = "https://drive.google.com/uc?export=download&id="
_REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download/"
_RRDB_X4 = dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)

OFFICIAL: dict[str, OfficialFile] = {
    "RRDB_ESRGAN_x4": OfficialFile(
        _REAL_ESRGAN + "v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth", "rrdbnet", _RRDB_X4, "ff704c30", True,
        note="ESRGAN's RRDB_ESRGAN_x4.pth (Wang et al. 2018) converted to BasicSR names"),
    "RRDB_PSNR_x4": OfficialFile(
        _GDRIVE + "1swaV5iBMFfg-DL6ZyiARztbhutDCWXMM",
        "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth", "rrdbnet", _RRDB_X4, "150ff491", True,
        note="ESRGAN's PSNR-oriented RRDB_PSNR_x4.pth converted to BasicSR names (BasicSR model zoo, "
             "Google Drive)"),
    "RealESRGAN_x4plus": OfficialFile(
        _REAL_ESRGAN + "v0.1.0/RealESRGAN_x4plus.pth", "RealESRGAN_x4plus.pth", "rrdbnet", _RRDB_X4,
        "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        note="Real-ESRGAN generator (Wang et al. 2021); weights under 'params_ema'"),
    "RealESRNet_x4plus": OfficialFile(
        _REAL_ESRGAN + "v0.1.1/RealESRNet_x4plus.pth", "RealESRNet_x4plus.pth", "rrdbnet", _RRDB_X4,
        "a820b9bde89a874d7599d545567308ce6c128fc8754a53208eda016d40aa81df",
        note="Real-ESRNet: the same RRDBNet trained with L1 only, before the GAN stage"),
    "RealESRGAN_x4plus_netD": OfficialFile(
        _REAL_ESRGAN + "v0.2.2.3/RealESRGAN_x4plus_netD.pth", "RealESRGAN_x4plus_netD.pth",
        "unet_discriminator_sn", dict(num_in_ch=3, num_feat=64, skip_connection=True), None,
        note="Real-ESRGAN U-Net discriminator; weights under 'params'; no published checksum"),
    "EDSR_Mx4": OfficialFile(
        _GDRIVE + "1bCK6cFYU01uJudLgUUe-jgx-tZ3ikOWn", "EDSR_Mx4_f64b16_DIV2K_official-0c287733.pth",
        "edsr", dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4, res_scale=1),
        "0c287733e70d1b8b8fc5885613ecbe451e5f3010bcae0307612ef5e4aa08dd5f",
        note="EDSR baseline x4 (Lim et al. 2017) from the BasicSR model zoo (Google Drive)"),
    "EDSR_Lx4": OfficialFile(
        _GDRIVE + "1GCi30YYCzgMCcgheGWGusP9aWKOAy5vl", "EDSR_Lx4_f256b32_DIV2K_official-76ee1c8f.pth",
        "edsr", dict(num_in_ch=3, num_out_ch=3, num_feat=256, num_block=32, upscale=4, res_scale=0.1),
        "76ee1c8f48813f46024bee8d2700f417f6b2db070e899954ff1552fbae343e93",
        note="EDSR x4, 256 x 32 (the CSD teacher size) from the BasicSR model zoo (Google Drive)"),
    "vgg19": OfficialFile(
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "vgg19-dcbb9e9d.pth",
        "torchvision.vgg19", {}, "dcbb9e9d", True, hub=True,
        note="torchvision VGG19 (ImageNet) for perceptual losses"),
    "alexnet": OfficialFile(
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "alexnet-owt-7be5be79.pth",
        "torchvision.alexnet", {}, "7be5be79", True, hub=True,
        note="torchvision AlexNet (ImageNet), the LPIPS backbone"),
}


def default_cache_dir() -> Path:
    """``<root>/weights``, root = ``$SRLIB_CACHE`` if set, else ``~/.cache/srlib`` (:mod:`srlib.paths`)."""
    from .paths import weights_dir

    return weights_dir()


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _check_expected(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    s = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", s):
        raise ValueError(f"sha256 must be 8 to 64 hex digits (a full digest or a prefix), got {sha256!r}")
    return s


def hash_matches(digest: str, expected: str | None) -> bool:
    """True when ``digest`` equals ``expected`` (64 hex) or starts with it (a shorter prefix)."""
    return expected is None or digest.startswith(expected)


_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def check_url(url: str) -> str:
    """Refuse anything but ``https://`` (``http://`` only to the local machine, for tests)."""
    parts = urllib.parse.urlsplit(str(url))
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme == "https" and host:
        return url
    if scheme == "http" and host in _LOOPBACK_HOSTS:
        return url
    if scheme == "http":
        raise DownloadError(f"refusing to download {url}: plain http can be altered on the way; use the "
                            f"https:// address")
    raise DownloadError(f"refusing to download {url!r}: only https:// URLs are fetched (got "
                        f"{scheme + '://' if scheme else 'no scheme'}); for a local file, pass its path "
                        f"instead of downloading it")


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL :func:`check_url` accepts (no https -> http downgrade)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open_url(url: str, timeout: float):
    opener = urllib.request.build_opener(_SafeRedirect)
    return opener.open(urllib.request.Request(url, headers={"User-Agent": "srlib"}), timeout=timeout)


def download(url: str, dest, sha256: str | None = None, *, timeout: float = 60.0,
             progress: bool = True, chunk: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its length and SHA-256 (full digest or prefix).

    Only ``https://`` URLs are accepted (``http://`` only to 127.0.0.1 / localhost, for tests;
    ``file:``, ``data:``, ``ftp:`` are refused), redirects included. The body streams into a
    temporary file in ``dest``'s folder while being hashed; on any failure (network error, HTTP
    error, a connection cut off before the announced ``Content-Length`` or in the middle of a
    chunked body, wrong checksum, a web page instead of the file) the temporary file is deleted,
    ``dest`` is left untouched, and :class:`DownloadError` says why in one line. On success the
    file is renamed onto ``dest`` in one step (``os.replace``); its permissions follow the umask.
    A temporary file left by a killed download of the same ``dest`` is removed on the next one.
    """
    from .atomic import atomic_open, make_dirs

    check_url(url)
    expected = _check_expected(sha256)
    dest = Path(dest)
    make_dirs(dest.parent)
    h = hashlib.sha256()
    received = 0
    with atomic_open(dest, "wb", suffix=".part") as out:
        try:
            resp = _open_url(url, timeout)
        except DownloadError:
            raise
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DownloadError(f"download of {url} failed: {reason}. Check the network, or download "
                                f"the file by hand and save it as '{dest}'") from None
        with resp:
            ctype = resp.headers.get("Content-Type", "")
            if ctype.startswith("text/html") and not url.endswith((".html", ".htm")):
                raise DownloadError(
                    f"{url} returned a web page instead of the file (Google Drive asks for a "
                    f"confirmation on large files): open the URL in a browser, save the file as "
                    f"'{dest}', and it will be verified on next use")
            try:
                total = int(resp.headers.get("Content-Length") or 0) or None
            except ValueError:
                total = None
            if resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
                total = None  # the length counts compressed bytes (urllib does not decompress, but be safe)
            bar = None
            if progress:
                from tqdm.auto import tqdm
                bar = tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False)
            try:
                while block := resp.read(chunk):
                    out.write(block)
                    h.update(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
            except (OSError, http.client.HTTPException) as exc:
                if isinstance(exc, http.client.IncompleteRead):
                    detail = "the connection closed before the end of the file"
                else:
                    detail = str(exc) or type(exc).__name__
                raise DownloadError(f"download of {url} was interrupted ({detail}); nothing was saved: "
                                    f"try again") from None
            finally:
                if bar is not None:
                    bar.close()
        if total is not None and received != total:
            raise DownloadError(
                f"download of {url} was cut off: received {received:,} of the {total:,} bytes the "
                f"server announced; nothing was saved: try again")
        digest = h.hexdigest()
        if not hash_matches(digest, expected):
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {expected}{'...' if len(expected) < 64 else ''}, "
                f"got {digest}. The file was not saved; the server may have changed it or the "
                f"transfer was corrupted")
        if expected is None:
            warnings.warn(f"{dest.name}: no published checksum, saved unverified (sha256 {digest}, "
                          f"{received:,} bytes)", stacklevel=2)
    return dest


_verified: dict[tuple, str] = {}


def verify_file(path, sha256: str | None) -> str:
    """Hash ``path`` (cached per path, size and mtime) and raise WeightsError if it does not match."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _verified.get(key) or sha256_file(path)
    expected = _check_expected(sha256)
    if not hash_matches(digest, expected):
        raise WeightsError(
            f"'{path}' does not match its published sha256 ({expected}): it is damaged or a "
            f"different file. Delete it and fetch again")
    _verified[key] = digest
    return digest


def cache_path(name: str, cache_dir=None) -> Path:
    """Where :func:`fetch` keeps the official file ``name``."""
    entry = _entry(name)
    if cache_dir is not None:
        return Path(cache_dir) / entry.filename
    if entry.hub:
        return Path(torch.hub.get_dir()) / "checkpoints" / entry.filename
    return default_cache_dir() / entry.filename


def _entry(name: str) -> OfficialFile:
    if name not in OFFICIAL:
        raise WeightsError(f"unknown official weights {name!r}; known: {', '.join(OFFICIAL)}")
    return OFFICIAL[name]


def fetch(name: str, cache_dir=None, *, progress: bool = True) -> Path:
    """Path of the verified official file ``name``, downloading it only when it is not cached.

    A cached file is checked against its SHA-256 (once per process) and never re-downloaded.
    """
    entry = _entry(name)
    dest = cache_path(name, cache_dir)
    if not dest.is_file():
        download(entry.url, dest, entry.sha256, progress=progress)
    verify_file(dest, entry.sha256)
    return dest


def build_official(name: str, cache_dir=None) -> nn.Module:
    """Build the srlib model of an official generator / discriminator and load its weights."""
    from . import archs

    entry = _entry(name)
    classes = {"rrdbnet": archs.RRDBNet, "edsr": archs.EDSR, "msrresnet": archs.MSRResNet,
               "unet_discriminator_sn": archs.UNetDiscriminatorSN,
               "vgg_discriminator": archs.VGGStyleDiscriminator}
    if entry.arch not in classes:
        raise WeightsError(f"{name} is a {entry.arch} backbone; load it through srlib.features")
    model = classes[entry.arch](**entry.kwargs)
    load_weights(model, fetch(name, cache_dir))
    return model


# ============================================================================================
# Archives
# ============================================================================================
def _safe_member(name: str, dest: Path, archive) -> Path:
    p = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or p.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in p.parts:
        raise DownloadError(f"refusing to extract '{archive}': member '{name}' has an absolute path "
                            f"or '..' and would be written outside '{dest}'")
    target = (dest / p).resolve()
    if target != dest and dest not in target.parents:
        raise DownloadError(f"refusing to extract '{archive}': member '{name}' resolves outside '{dest}'")
    return target


def _check_link(name: str, link: str, dest: Path, archive, hard: bool) -> None:
    base = dest if hard else (dest / PurePosixPath(name)).parent
    target = (base / link).resolve() if not os.path.isabs(link) else Path(link).resolve()
    if os.path.isabs(link) or (target != dest and dest not in target.parents):
        raise DownloadError(f"refusing to extract '{archive}': link '{name}' -> '{link}' points "
                            f"outside '{dest}'")


def extract_archive(path, dest) -> Path:
    """Extract a zip or tar (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) archive into ``dest``.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    names resolving outside ``dest``, symbolic or hard links pointing outside ``dest`` and
    device / FIFO members make the whole archive refused with :class:`DownloadError`.
    """
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                _safe_member(info.filename, dest, path)
                if stat.S_ISLNK(info.external_attr >> 16):
                    _check_link(info.filename, zf.read(info).decode("utf-8", "replace"), dest, path, False)
            zf.extractall(dest)
        return dest
    try:
        tf = tarfile.open(path)
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"'{path}' is not a zip or tar archive ({exc}); download it again") from None
    with tf:
        members = tf.getmembers()
        for m in members:
            _safe_member(m.name, dest, path)
            if m.issym() or m.islnk():
                _check_link(m.name, m.linkname, dest, path, m.islnk())
            elif not (m.isfile() or m.isdir()):
                raise DownloadError(f"refusing to extract '{path}': member '{m.name}' is a device or FIFO")
        try:
            tf.extractall(dest, members=members, filter="data")
        except TypeError:  # Python without extraction filters; members were checked above
            tf.extractall(dest, members=members)
        except tarfile.FilterError as exc:
            raise DownloadError(f"refusing to extract '{path}': {exc}") from None
    return dest


__all__ = [
    "OFFICIAL", "OfficialFile", "LoadReport", "read_state_dict", "select_params", "normalize_state_dict",
    "convert_esrgan_keys", "esrgan_naming", "guess_architecture", "describe_guess", "compare_state_dict",
    "load_weights", "download", "fetch", "cache_path", "default_cache_dir", "verify_file",
    "sha256_file", "hash_matches", "extract_archive", "build_official",
]
