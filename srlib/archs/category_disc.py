"""Category-aware discriminators for semantic SR by self-distillation (notebook 04).

Park (2024), "Semantic Super-Resolution via Self-Distillation and Adversarial Learning" (IEEE
Access 12:2361-2370, doi:10.1109/ACCESS.2023.3349023) uses the GAN discriminator itself as the
semantic feature extractor of the generator's loss, in place of an ImageNet VGG. Two networks:

- :class:`CategoryDiscriminator`: one shared convolutional **trunk** and one real/fake **head
  per category** (text, photos, textures, ...). Head ``k`` answers "is this a real HR image of
  category ``k``?". The trunk is trained by every head, so its features must serve all
  categories; the proposed method's semantic loss compares SR and HR through these trunk
  features (:mod:`srlib.losses.semantic`).
- :class:`MultiDiscriminator`: the "multi-class GAN" baseline of the paper's table: one whole
  discriminator per category (no shared trunk), each trained only on its own category.

Trunk (both): ``num_stages`` stages of (3x3 conv, LeakyReLU 0.2, 4x4 stride-2 conv, LeakyReLU
0.2), widths ``num_feat * min(2**s, 8)``, the stage layout of the SRGAN / ESRGAN VGG-style
critic but without batch norm (the semantic loss compares SR and HR features computed in
separate forward passes, which batch statistics would couple) and with spectral normalisation
(Miyato et al. 2018, arXiv:1802.05957) on every layer for a stable game without BN. The
feature of stage ``s`` is the output of its stride-2 conv, shape
``(N, num_feat * min(2**s, 8), H / 2**(s+1), W / 2**(s+1))``.

Head: global average pooling of the last stage, then ``Linear(C_last, num_categories)``: row
``k`` of the weight is category ``k``'s head. Averaging then a linear map equals the mean of a
1x1-conv logit map (a patch discriminator averaged over positions), so the network is fully
convolutional and takes any input size divisible by ``2**num_stages``. The spectral norms'
power iterations are run to convergence at construction (:func:`settle_spectral_norm`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from .spectral import settle_spectral_norm


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return spectral_norm(module) if enabled else module


def _check_labels(labels: torch.Tensor, n: int, k: int) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != n:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a 1-D tensor of {n} category indices (one per image), "
                         f"got {shape}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be integer category indices, got dtype {labels.dtype}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"labels must lie in [0, {k - 1}] for {k} categories, got values "
                         f"{int(labels.min())}..{int(labels.max())}")
    return labels.long()


class DiscTrunk(nn.Module):
    """The convolutional trunk: ``forward(x) -> [feature of stage 0, ..., stage S-1]``."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 32, num_stages: int = 4,
                 use_sn: bool = True):
        super().__init__()
        if num_stages < 1 or num_feat < 1:
            raise ValueError(f"num_stages and num_feat must be >= 1, got {num_stages}, {num_feat}")
        self.num_stages = num_stages
        self.channels = [num_feat * min(2 ** s, 8) for s in range(num_stages)]
        stages, c_in = [], num_in_ch
        for c in self.channels:
            stages.append(nn.Sequential(
                _sn(nn.Conv2d(c_in, c, 3, 1, 1), use_sn), nn.LeakyReLU(0.2, inplace=True),
                _sn(nn.Conv2d(c, c, 4, 2, 1), use_sn), nn.LeakyReLU(0.2, inplace=True)))
            c_in = c
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"the discriminator expects images (N, C, H, W), got {tuple(x.shape)}")
        div = 2 ** self.num_stages
        if x.shape[-1] % div or x.shape[-2] % div:
            raise ValueError(f"input {tuple(x.shape[-2:])} is not divisible by 2**num_stages = {div}; "
                             f"crop HR patches to a multiple of {div}")
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class CategoryDiscriminator(nn.Module):
    """A shared trunk with one real/fake head per category.

    Args:
        num_categories: number of heads K (1 gives an ordinary unconditional discriminator).
        num_in_ch: image channels. num_feat: width of the first stage. num_stages: depth.
        use_sn: spectral normalisation on every conv and on the heads.

    ``forward(x)`` returns the logits of every head, ``(N, K)``; ``forward(x, labels)`` the
    logit of each image's own category head, ``(N, 1)``; with ``return_features=True`` it
    returns ``(logits, features)`` where ``features`` is the list of the trunk's stage outputs
    (see the module doc for their shapes). :meth:`features` returns the trunk features only.
    """

    def __init__(self, num_categories: int, num_in_ch: int = 3, num_feat: int = 32,
                 num_stages: int = 4, use_sn: bool = True):
        super().__init__()
        if num_categories < 1:
            raise ValueError(f"num_categories must be >= 1, got {num_categories}")
        self.num_categories = num_categories
        self.trunk = DiscTrunk(num_in_ch, num_feat, num_stages, use_sn)
        self.heads = _sn(nn.Linear(self.trunk.channels[-1], num_categories), use_sn)
        if use_sn:
            settle_spectral_norm(self)

    @property
    def feature_channels(self) -> list[int]:
        return list(self.trunk.channels)

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The trunk's stage outputs (``labels`` is accepted for a uniform interface, unused)."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                return_features: bool = False):
        feats = self.trunk(x)
        logits = self.heads(feats[-1].mean(dim=(2, 3)))
        if labels is not None:
            labels = _check_labels(labels, x.shape[0], self.num_categories).to(logits.device)
            logits = logits.gather(1, labels.view(-1, 1))
        return (logits, feats) if return_features else logits


class MultiDiscriminator(nn.Module):
    """One independent discriminator per category (the "multi-class GAN" baseline).

    ``discs[k]`` is a :class:`CategoryDiscriminator` with a single head, trained only on
    images of category ``k``. ``forward(x)`` runs every discriminator on every image and
    returns ``(N, K)`` logits; ``forward(x, labels)`` runs each image through its own
    category's discriminator only and returns ``(N, 1)``; ``return_features=True`` (needs
    ``labels``) also returns each image's features from its own discriminator.
    """

    def __init__(self, num_categories: int, num_in_ch: int = 3, num_feat: int = 32,
                 num_stages: int = 4, use_sn: bool = True):
        super().__init__()
        if num_categories < 1:
            raise ValueError(f"num_categories must be >= 1, got {num_categories}")
        self.num_categories = num_categories
        self.discs = nn.ModuleList(CategoryDiscriminator(1, num_in_ch, num_feat, num_stages, use_sn)
                                   for _ in range(num_categories))

    @property
    def feature_channels(self) -> list[int]:
        return self.discs[0].feature_channels

    def _routed(self, x: torch.Tensor, labels: torch.Tensor):
        labels = _check_labels(labels, x.shape[0], self.num_categories).to(x.device)
        logits, feats = None, None
        for k, disc in enumerate(self.discs):
            idx = (labels == k).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            lk, fk = disc(x[idx], return_features=True)
            if logits is None:
                logits = lk.new_zeros((x.shape[0], 1))
                feats = [f.new_zeros((x.shape[0], *f.shape[1:])) for f in fk]
            logits = logits.index_copy(0, idx, lk)
            feats = [f.index_copy(0, idx, g) for f, g in zip(feats, fk)]
        return logits, feats

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        if labels is None:
            raise ValueError("MultiDiscriminator.features needs labels: each image's features "
                             "come from its own category's discriminator")
        return self._routed(x, labels)[1]

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                return_features: bool = False):
        if labels is None:
            if return_features:
                raise ValueError("return_features=True needs labels (one discriminator per category)")
            return torch.cat([d(x) for d in self.discs], dim=1)
        logits, feats = self._routed(x, labels)
        return (logits, feats) if return_features else logits
