"""Discriminators of the SR GANs, as BasicSR / Real-ESRGAN define them.

- ``VGGStyleDiscriminator``: the SRGAN / ESRGAN critic (Ledig et al. 2017, Fig. 4;
  Wang et al. 2018). Five stages of (3x3 conv, 4x4 stride-2 conv) with BN and LeakyReLU(0.2)
  halve a 128 x 128 input to 4 x 4 (six stages for 256 x 256), then Linear(512*16, 100) ->
  LeakyReLU -> Linear(100, 1) gives one logit per image. 14,499,401 parameters at 128 / 64.
- ``UNetDiscriminatorSN``: Real-ESRGAN's U-Net critic (Wang et al. 2021, "Real-ESRGAN:
  Training Real-World Blind Super-Resolution with Pure Synthetic Data", Sec. 3.3, Fig. 6).
  Three stride-2 downsampling convs, three bilinear-upsampling convs with skip connections,
  two extra convs and a 1-channel output: a realness logit per pixel. All inner convs use
  spectral normalisation (Miyato et al. 2018) via ``torch.nn.utils.spectral_norm``, so the
  state dict holds ``weight_orig``, ``weight_u`` and ``weight_v`` like the official file.
  4,376,897 parameters (``weight_u``/``weight_v`` are buffers, not counted).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm


class VGGStyleDiscriminator(nn.Module):
    """VGG-style discriminator for 128 x 128 or 256 x 256 inputs.

    Args:
        num_in_ch: image channels (3). num_feat: base width (64); stages use 1, 2, 4, 8, 8 times it.
        input_size: 128 or 256; the input must have exactly this size.
    """

    def __init__(self, num_in_ch: int, num_feat: int, input_size: int = 128):
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"VGGStyleDiscriminator input_size must be 128 or 256, not {input_size!r}")
        self.input_size = input_size
        f = num_feat
        self.conv0_0 = nn.Conv2d(num_in_ch, f, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(f, f, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(f, affine=True)
        self.conv1_0 = nn.Conv2d(f, f * 2, 3, 1, 1, bias=False)
        self.bn1_0 = nn.BatchNorm2d(f * 2, affine=True)
        self.conv1_1 = nn.Conv2d(f * 2, f * 2, 4, 2, 1, bias=False)
        self.bn1_1 = nn.BatchNorm2d(f * 2, affine=True)
        self.conv2_0 = nn.Conv2d(f * 2, f * 4, 3, 1, 1, bias=False)
        self.bn2_0 = nn.BatchNorm2d(f * 4, affine=True)
        self.conv2_1 = nn.Conv2d(f * 4, f * 4, 4, 2, 1, bias=False)
        self.bn2_1 = nn.BatchNorm2d(f * 4, affine=True)
        self.conv3_0 = nn.Conv2d(f * 4, f * 8, 3, 1, 1, bias=False)
        self.bn3_0 = nn.BatchNorm2d(f * 8, affine=True)
        self.conv3_1 = nn.Conv2d(f * 8, f * 8, 4, 2, 1, bias=False)
        self.bn3_1 = nn.BatchNorm2d(f * 8, affine=True)
        self.conv4_0 = nn.Conv2d(f * 8, f * 8, 3, 1, 1, bias=False)
        self.bn4_0 = nn.BatchNorm2d(f * 8, affine=True)
        self.conv4_1 = nn.Conv2d(f * 8, f * 8, 4, 2, 1, bias=False)
        self.bn4_1 = nn.BatchNorm2d(f * 8, affine=True)
        if input_size == 256:
            self.conv5_0 = nn.Conv2d(f * 8, f * 8, 3, 1, 1, bias=False)
            self.bn5_0 = nn.BatchNorm2d(f * 8, affine=True)
            self.conv5_1 = nn.Conv2d(f * 8, f * 8, 4, 2, 1, bias=False)
            self.bn5_1 = nn.BatchNorm2d(f * 8, affine=True)
        self.linear1 = nn.Linear(f * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"VGGStyleDiscriminator was built for {self.input_size}x{self.input_size} inputs "
                f"but got {tuple(x.shape[-2:])}: crop HR patches to {self.input_size} or build it "
                f"with input_size matching your patches"
            )
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        stages = 5 if self.input_size == 256 else 4
        for s in range(1, stages + 1):
            feat = self.lrelu(getattr(self, f"bn{s}_0")(getattr(self, f"conv{s}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{s}_1")(getattr(self, f"conv{s}_1")(feat)))
        feat = feat.flatten(1)
        return self.linear2(self.lrelu(self.linear1(feat)))


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral normalisation (Real-ESRGAN).

    Args:
        num_in_ch: image channels (3). num_feat: base width (64).
        skip_connection: add encoder features to the decoder (True, as Real-ESRGAN).

    Returns a (N, 1, H, W) map of logits; H and W must be multiples of 8.
    """

    def __init__(self, num_in_ch: int, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        self.skip_connection = skip_connection
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, kernel_size=3, stride=1, padding=1)
        self.conv1 = spectral_norm(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(
                f"UNetDiscriminatorSN needs height and width divisible by 8 (three stride-2 "
                f"stages), got {tuple(x.shape[-2:])}: crop the patch"
            )

        def act(t):
            return F.leaky_relu(t, negative_slope=0.2)

        def up(t):
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)
