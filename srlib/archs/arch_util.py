"""Building blocks shared by the generators: initialisation, residual block, upsampler.

Names and behaviour follow BasicSR's ``basicsr/archs/arch_util.py`` so that state-dict keys
line up with the official checkpoints (an ``Upsample`` is an ``nn.Sequential`` whose
convolutions sit at indices 0, 2, ...; a residual block has ``conv1`` and ``conv2``).
"""

from __future__ import annotations

import math

import torch
from torch import nn



@torch.no_grad()
def default_init_weights(modules, scale: float = 1.0, bias_fill: float = 0.0) -> None:
    """Kaiming-normal initialisation scaled by ``scale`` (BasicSR's ``default_init_weights``).

    ESRGAN (Wang et al. 2018, Sec. 3.2 "smaller initialization") scales the He initialisation
    of residual branches by 0.1 so that a deep residual network starts close to identity;
    BasicSR applies the same rule to MSRResNet. BatchNorm layers start at weight 1.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                nn.init.constant_(m.weight, 1.0)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)


def make_layer(block, num_blocks: int, **kwargs) -> nn.Sequential:
    """``num_blocks`` fresh copies of ``block(**kwargs)`` in an ``nn.Sequential`` (keys ``0.``, ``1.``, ...)."""
    return nn.Sequential(*[block(**kwargs) for _ in range(num_blocks)])


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv plus identity, without batch norm (EDSR, Lim et al. 2017, Fig. 2c).

    ``out = x + res_scale * conv2(relu(conv1(x)))``. EDSR removes BN because it normalises away
    the range flexibility SR needs; ``res_scale`` (0.1 in the 256-channel EDSR) keeps a very
    wide residual network stable. ``pytorch_init=False`` uses the 0.1-scaled Kaiming init.
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0, pytorch_init: bool = False):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        if not pytorch_init:
            default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class Upsample(nn.Sequential):
    """Sub-pixel upsampler (Shi et al. 2016): [conv to r^2*C channels, PixelShuffle(r)] per step.

    Scale 2^n uses n steps of r=2; scale 3 one step of r=3 (BasicSR's ``Upsample``).
    """

    def __init__(self, scale: int, num_feat: int):
        layers: list[nn.Module] = []
        if scale >= 1 and (scale & (scale - 1)) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"upscale {scale} is not supported: use a power of two (2, 4, 8) or 3")
        super().__init__(*layers)


def pixel_unshuffle(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Inverse of PixelShuffle: (N, C, H*s, W*s) -> (N, C*s*s, H, W).

    Output channel ``c*s*s + i*s + j`` holds input pixels at offset (i, j) of channel ``c``,
    the layout BasicSR uses to feed x2 / x1 images into the x4 RRDBNet trunk.
    """
    n, c, hh, ww = x.shape
    if hh % scale or ww % scale:
        raise ValueError(
            f"input of size {hh}x{ww} cannot be pixel-unshuffled by {scale}: pad or crop the "
            f"image so that both sides are multiples of {scale}"
        )
    h, w = hh // scale, ww // scale
    return x.view(n, c, h, scale, w, scale).permute(0, 1, 3, 5, 2, 4).reshape(n, c * scale * scale, h, w)


def count_params(module: nn.Module) -> int:
    """Number of parameters as BasicSR reports it: ``sum(p.numel() for p in module.parameters())``.

    Buffers (BatchNorm statistics, spectral-norm ``weight_u``/``weight_v``) are not counted;
    a spectrally normalised layer counts its ``weight_orig``.
    """
    return sum(p.numel() for p in module.parameters())


