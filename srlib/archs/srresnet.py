"""MSRResNet: BasicSR's "modified SRResNet" (the SRGAN generator of Ledig et al. 2017,
"Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
Fig. 4, with batch norm removed as in EDSR).

conv_first + LeakyReLU(0.1) -> 16 residual blocks (conv-ReLU-conv) -> sub-pixel upsampling
(x4: two conv + PixelShuffle(2) steps; x2/x3: one) -> conv_hr -> conv_last, plus a
bilinear upsampling of the input added to the output (the network learns the residual over
bilinear). Default x4 model: 1,517,571 parameters, as BasicSR's ``MSRResNet``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .arch_util import ResidualBlockNoBN, default_init_weights, make_layer


class MSRResNet(nn.Module):
    """SRResNet without batch norm.

    Args:
        num_in_ch, num_out_ch: image channels (3). num_feat: width (64).
        num_block: residual blocks (16). upscale: 2, 3 or 4.

    Input and output are (N, C, H, W) in [0, 1]; output is ``net(x) + bilinear(x)``.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_block: int = 16, upscale: int = 4):
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f"MSRResNet supports upscale 2, 3 or 4, not {upscale!r}")
        if num_in_ch != num_out_ch:
            raise ValueError("MSRResNet adds a bilinear copy of its input to the output, so "
                             f"num_in_ch ({num_in_ch}) must equal num_out_ch ({num_out_ch})")
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat)
        if upscale in (2, 3):
            self.upconv1 = nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        default_init_weights([self.conv_first, self.upconv1, self.conv_hr, self.conv_last], 0.1)
        if upscale == 4:
            default_init_weights(self.upconv2, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return out + base
