"""Small GANs for notebook 01 (GAN basics): 2-D points and 32 x 32 images.

- ``MLPGenerator`` / ``MLPDiscriminator``: fully connected nets for the toy mixture of
  Gaussians of Goodfellow et al. 2014 ("Generative Adversarial Nets", Sec. 3, Eq. 1) and of
  the mode-collapse demos (Metz et al. 2017). The discriminator returns a logit; the loss
  (BCE / non-saturating / least squares) lives in ``srlib.losses``.
- ``DCGANGenerator`` / ``DCGANDiscriminator``: the DCGAN recipe (Radford et al. 2016,
  "Unsupervised Representation Learning with Deep Convolutional GANs", Sec. 3 and Fig. 1)
  scaled to 32 x 32: strided (transposed) 4x4 convolutions instead of pooling, BatchNorm in
  both nets, ReLU in G with Tanh at the output, LeakyReLU(0.2) in D. Images are in [-1, 1]
  (map [0, 1] data with ``2 * x - 1``), as the paper's Tanh output requires.

``spectral_norm=True`` wraps every weight layer of a discriminator in spectral normalisation
(Miyato et al. 2018, "Spectral Normalization for GANs", Eq. 8: ``W / sigma(W)``), which bounds
its Lipschitz constant; as in that paper, the SN DCGAN discriminator drops BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm as _sn


def _maybe_sn(layer: nn.Module, use: bool) -> nn.Module:
    return _sn(layer) if use else layer


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> point (N, 2). ``depth`` hidden layers of ``hidden`` units with ReLU."""

    def __init__(self, z_dim: int = 2, hidden: int = 128, depth: int = 3, out_dim: int = 2):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1 hidden layer, got {depth}")
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        width_in = z_dim
        for _ in range(depth):
            layers += [nn.Linear(width_in, hidden), nn.ReLU(inplace=True)]
            width_in = hidden
        layers.append(nn.Linear(hidden, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """point (N, 2) -> logit (N, 1). ``depth`` hidden layers with LeakyReLU(0.2)."""

    def __init__(self, hidden: int = 128, depth: int = 3, spectral_norm: bool = False,
                 in_dim: int = 2):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1 hidden layer, got {depth}")
        layers: list[nn.Module] = []
        width_in = in_dim
        for _ in range(depth):
            layers += [_maybe_sn(nn.Linear(width_in, hidden), spectral_norm),
                       nn.LeakyReLU(0.2, inplace=True)]
            width_in = hidden
        layers.append(_maybe_sn(nn.Linear(hidden, 1), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DCGANGenerator(nn.Module):
    """z (N, z_dim) or (N, z_dim, 1, 1) -> image (N, channels, 32, 32) in [-1, 1].

    1x1 -> 4x4 (ngf*4) -> 8x8 (ngf*2) -> 16x16 (ngf) -> 32x32 (channels), each step a 4x4
    transposed convolution; BN + ReLU between, Tanh at the end. Weights start from
    N(0, 0.02) and BN scales from N(1, 0.02) (Radford et al. 2016, Sec. 4).
    """

    def __init__(self, z_dim: int = 64, ngf: int = 64, channels: int = 3):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """image (N, channels, 32, 32) in [-1, 1] -> logit (N, 1).

    32 -> 16 (ngf) -> 8 (ngf*2) -> 4 (ngf*4) with 4x4 stride-2 convs and LeakyReLU(0.2), then
    a 4x4 valid conv to one logit. BN on the inner layers unless ``spectral_norm`` is set.
    """

    def __init__(self, ngf: int = 64, channels: int = 3, spectral_norm: bool = False):
        super().__init__()
        sn = spectral_norm

        def norm(c):
            return nn.Identity() if sn else nn.BatchNorm2d(c)

        self.net = nn.Sequential(
            _maybe_sn(nn.Conv2d(channels, ngf, 4, 2, 1, bias=sn), sn), nn.LeakyReLU(0.2, inplace=True),
            _maybe_sn(nn.Conv2d(ngf, ngf * 2, 4, 2, 1, bias=sn), sn), norm(ngf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            _maybe_sn(nn.Conv2d(ngf * 2, ngf * 4, 4, 2, 1, bias=sn), sn), norm(ngf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            _maybe_sn(nn.Conv2d(ngf * 4, 1, 4, 1, 0, bias=sn), sn),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (32, 32):
            raise ValueError(f"DCGANDiscriminator expects 32x32 images, got {tuple(x.shape[-2:])}")
        return self.net(x).flatten(1)


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02); BN weight ~ N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
