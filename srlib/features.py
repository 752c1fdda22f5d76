"""Feature backbones for perceptual losses: VGG19 with layers addressed by name, offline first.

Perceptual, style, contrastive (CSD) and pairwise-distance (PDD) losses all compare images
in the feature space of an ImageNet-trained VGG19 (Simonyan & Zisserman 2015). This module
builds torchvision's VGG19 ``features`` stack, names every module the way the SR literature
does (``conv1_1``, ``relu1_1``, ..., ``pool5``), cuts it after the deepest layer a loss asks
for, and returns the requested activations as a dict.

Where the weights come from (``weights=``):

- ``"imagenet"``: torchvision's ``vgg19-dcbb9e9d.pth`` from the torch hub cache
  (``torch.hub.get_dir()/checkpoints/``). Nothing is ever downloaded: when the file is absent,
  :class:`~srlib.errors.BackboneUnavailableError` says which file, where to put it and where
  to fetch it on a machine with internet.
- ``"random"``: a seeded stand-in with torchvision's VGG initialisation (Kaiming-normal,
  fan-out, zero bias). Deterministic for a seed; the global RNG is left untouched. Random
  conv features still carry local edge/texture statistics, so perceptual losses built on them
  behave sensibly at small scale, but they are not the features the papers used.
- ``"auto"``: ``"imagenet"`` when the file is cached, else ``"random"``, and says which.
- a path to a ``.pth`` file: a torchvision VGG19 state dict (``features.N.*`` keys) or a bare
  ``features`` state dict (``N.*`` keys).

The chosen backbone is recorded as ``VGGFeatures.backbone`` (``"vgg19-imagenet"``,
``"vgg19-random(seed=0)"``, ...) so that every table can say which features it used.

Taps named ``conv*`` are taken BEFORE their ReLU, which is what ESRGAN's "perceptual loss
before activation" (Wang et al. 2018, Sec. 3.3) and BasicSR's ``conv5_4`` default mean.
torchvision's VGG uses in-place ReLUs that would overwrite such a tap; here every ReLU is
built non-inplace so a conv output is never modified after it is recorded.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from .errors import BackboneUnavailableError, WeightsError

log = logging.getLogger(__name__)

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's configuration "E" (VGG19): channels per conv, "M" for a 2x2 max-pool.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def _vgg19_layer_names() -> tuple[str, ...]:
    names, block, conv = [], 1, 1
    for item in _VGG19_CFG:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return tuple(names)


#: Names of the 37 modules of ``torchvision.models.vgg19().features``, in order.
VGG19_LAYER_NAMES = _vgg19_layer_names()


def hub_checkpoint_path(filename: str) -> Path:
    """Where torch hub keeps ``filename``: ``torch.hub.get_dir()/checkpoints/filename``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def backbone_status() -> dict[str, dict]:
    """What pretrained backbones are in the local torch hub cache, for notebooks to print.

    Returns ``{"vgg19": {...}, "alexnet": {...}}``, each with ``file``, ``path`` (where the file
    is or must go), ``cached`` (bool) and ``url`` (where to fetch it with internet access).
    AlexNet is the backbone of LPIPS (``lpips.LPIPS(net="alex")``).
    """
    status = {}
    for name, file, url in (("vgg19", VGG19_FILE, VGG19_URL), ("alexnet", ALEXNET_FILE, ALEXNET_URL)):
        path = hub_checkpoint_path(file)
        status[name] = {"file": file, "path": str(path), "cached": path.is_file(), "url": url}
    return status


def _missing_vgg19_error() -> BackboneUnavailableError:
    path = hub_checkpoint_path(VGG19_FILE)
    return BackboneUnavailableError(
        f"ImageNet VGG19 weights {VGG19_FILE} are not cached: expected at {path}. "
        f"On a machine with internet, download {VGG19_URL} and copy it to {path} "
        f"(or set TORCH_HOME). Without it, use weights='random' (a seeded stand-in) or "
        f"weights='auto', which falls back to it and records the choice."
    )


def _build_layers(n_modules: int) -> list[nn.Module]:
    """The first ``n_modules`` modules of VGG19 ``features``, ReLUs not in place."""
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            # Built on the meta device: the weights are filled by the caller (random init or a
            # state dict), so PyTorch's default init would be wasted work.
            conv = nn.Conv2d(in_ch, item, kernel_size=3, padding=1, device="meta")
            layers += [conv.to_empty(device="cpu"), nn.ReLU(inplace=False)]
            in_ch = item
        if len(layers) >= n_modules:
            break
    return layers[:n_modules]


def _random_init_(layers: Iterable[nn.Module], seed: int) -> None:
    """torchvision's VGG init (Kaiming normal, fan_out, relu; zero bias) from a private RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in layers:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)


def _load_features_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a VGG19 state dict and return its ``features`` part with keys like ``"0.weight"``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a tensor file
        raise WeightsError(f"cannot read VGG19 weights from {path}: {exc}. "
                           f"Replace the file (source: {VGG19_URL}).") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict (found {type(state).__name__}); "
                           f"expected torchvision's VGG19 weights ({VGG19_URL}).")
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith("features."):
            out[key[len("features."):]] = value
        elif key.split(".", 1)[0].isdigit():
            out[key] = value
    return out


class VGGFeatures(nn.Module):
    """VGG19 activations by layer name, frozen by default.

    Args:
        layers: a name or names from :data:`VGG19_LAYER_NAMES` (``"conv5_4"``, ``"relu2_2"``,
            ``"pool3"``...). The network is truncated right after the deepest one.
        weights: ``"auto"``, ``"imagenet"``, ``"random"`` or a path to a ``.pth`` file (see the
            module docstring).
        normalize_input: inputs are RGB in [0, 1]; subtract the ImageNet mean and divide by
            its std first, as the pretrained VGG expects (and BasicSR does).
        seed: seed of the random stand-in weights.
        requires_grad: train the backbone too (normally ``False``: a fixed feature space).

    ``forward(x)`` takes ``(N, 3, H, W)`` (or ``(3, H, W)``) and returns ``{name: tensor}`` in
    the order of ``layers``. Gradients flow to ``x`` even when the weights are frozen.
    """

    def __init__(self, layers: str | Iterable[str], weights: str | Path = "auto",
                 normalize_input: bool = True, seed: int = 0, requires_grad: bool = False):
        super().__init__()
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names:
            raise ValueError("VGGFeatures needs at least one layer name, e.g. ['conv5_4']")
        unknown = [n for n in names if n not in VGG19_LAYER_NAMES]
        if unknown:
            raise ValueError(f"unknown VGG19 layer name(s) {unknown}; valid names are "
                             f"{', '.join(VGG19_LAYER_NAMES)}")
        self.layers = list(dict.fromkeys(names))
        self._index = {n: VGG19_LAYER_NAMES.index(n) for n in self.layers}
        depth = max(self._index.values()) + 1
        self.features = nn.Sequential(*_build_layers(depth))
        self.backbone = self._load_weights(weights, seed)
        self.normalize_input = normalize_input
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.trainable = requires_grad
        for p in self.features.parameters():
            p.requires_grad_(requires_grad)
        if not requires_grad:
            self.eval()

    def _load_weights(self, weights: str | Path, seed: int) -> str:
        choice = weights
        if isinstance(weights, str) and weights == "auto":
            if hub_checkpoint_path(VGG19_FILE).is_file():
                choice = "imagenet"
                _say_once(f"VGG19 backbone: ImageNet weights from {hub_checkpoint_path(VGG19_FILE)}",
                          warn=False)
            else:
                choice = "random"
                _say_once(f"VGG19 backbone: ImageNet weights not cached "
                          f"({hub_checkpoint_path(VGG19_FILE)}); using random weights "
                          f"(seed={seed}). Perceptual-loss results are then not the papers' "
                          f"features; see srlib.features.backbone_status().", warn=True)
        if choice == "random":
            _random_init_(self.features, seed)
            return f"vgg19-random(seed={seed})"
        if choice == "imagenet":
            path = hub_checkpoint_path(VGG19_FILE)
            if not path.is_file():
                raise _missing_vgg19_error()
            self._load_file(path)
            return "vgg19-imagenet"
        if isinstance(choice, (str, Path)) and str(choice).endswith((".pth", ".pt")):
            path = Path(choice).expanduser()
            if not path.is_file():
                raise BackboneUnavailableError(
                    f"VGG19 weight file {path} does not exist; pass an existing .pth file or "
                    f"weights='imagenet' / 'random' / 'auto'.")
            self._load_file(path)
            return f"vgg19-file({path.name})"
        raise ValueError(f"unknown weights={weights!r}; use 'auto', 'imagenet', 'random' or a "
                         f"path to a .pth file")

    def _load_file(self, path: Path) -> None:
        state = _load_features_state(path)
        own = self.features.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise WeightsError(f"{path} lacks VGG19 features weights {missing[:4]}"
                               f"{' ...' if len(missing) > 4 else ''}; is it a VGG19 state dict?")
        bad = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
        if bad:
            k = bad[0]
            raise WeightsError(f"{path}: weight {k!r} has shape {tuple(state[k].shape)}, VGG19 "
                               f"needs {tuple(own[k].shape)}; is it a VGG19 state dict?")
        self.features.load_state_dict({k: state[k].float() for k in own})

    def train(self, mode: bool = True) -> "VGGFeatures":
        # A frozen backbone stays in eval mode even inside a model switched to training.
        return super().train(mode and self.trainable)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"VGGFeatures expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGGFeatures expects RGB images of shape (N, 3, H, W) in [0, 1], "
                             f"got shape {tuple(x.shape)}")
        if self.normalize_input:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = {i: n for n, i in self._index.items()}
        found = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                found[wanted[i]] = x
        return {n: found[n] for n in self.layers}


_said: set[str] = set()


def _say_once(message: str, warn: bool) -> None:
    """Log (or warn) a backbone choice once per process."""
    if message in _said:
        return
    _said.add(message)
    if warn:
        warnings.warn(message, stacklevel=4)
    else:
        log.info(message)
