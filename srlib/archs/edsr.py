"""EDSR (Lim et al. 2017, "Enhanced Deep Residual Networks for Single Image Super-Resolution",
Sec. 3.1-3.2, Fig. 3) as BasicSR's ``edsr_arch.py``, with channel splitting for CSD.

Structure: subtract the DIV2K mean and multiply by ``img_range`` -> conv_first -> residual
blocks without BN (``x + res_scale * conv2(relu(conv1(x)))``) -> conv_after_body (+ long skip)
-> sub-pixel upsampler -> conv_last -> undo the normalisation. Baseline 64 features x 16
blocks x4 has 1,517,571 parameters; the paper's large model (256 x 32, res_scale 0.1)
has 43,089,923.

Channel splitting (Wang et al. 2021, "Towards Compact Single Image Super-Resolution via
Contrastive Self-distillation", Sec. 3.1, Fig. 2): a student of width ``w`` (e.g. 0.25) is
not a separate network but the leading slice of the teacher's weights. Every convolution of
the student uses ``weight[:out*w, :in*w]`` and ``bias[:out*w]``; the three image channels
going in (conv_first's input) and coming out (conv_last's output) are never sliced. Training
the student therefore trains the shared leading slice, and the student is stored for free
inside the teacher's state dict.

The upsampler needs care. PixelShuffle(r) turns input channel ``c*r*r + k`` into sub-pixel
``k`` of output channel ``c``: the channel axis is feature-major. Taking the *leading*
``r*r*C*w`` output channels of the conv before the shuffle therefore gives exactly the leading
``C*w`` shuffled feature maps, each with all r*r sub-pixel positions. So the student's
upsampled features are the first ``C*w`` channels of the teacher's feature space, consistent
with every other sliced layer, and the slicing is the plain leading slice (the choice of the
official CSD code). Slicing "the leading C*w channels of each sub-pixel group" instead would
mix sub-pixels of different teacher channels and break this correspondence.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .arch_util import ResidualBlockNoBN, Upsample, make_layer


class EDSR(nn.Module):
    """EDSR with a channel-splitting width multiplier.

    Args:
        num_in_ch, num_out_ch: image channels (3). num_feat: width (64 baseline, 256 large).
        num_block: residual blocks (16 baseline, 32 large). upscale: 2^n or 3.
        res_scale: residual scaling (1 baseline, 0.1 large). img_range: 255, the range the
            official weights were trained in. rgb_mean: DIV2K mean, subtracted before conv_first.

    ``forward(x, width=1.0)`` takes (N, C, H, W) in [0, 1] and returns the upscaled image in
    [0, 1] (not clamped). ``width < 1`` runs the channel-split student on the leading slices.
    The mean is a non-persistent buffer: it follows ``.to(device)`` but is not in the state
    dict, exactly as BasicSR's key set.
    """

    def __init__(self, num_in_ch: int, num_out_ch: int, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4, res_scale: float = 1, img_range: float = 255.0,
                 rgb_mean: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)):
        super().__init__()
        if len(rgb_mean) != num_in_ch or num_in_ch != num_out_ch:
            raise ValueError(
                f"EDSR normalises its input with a per-channel mean: rgb_mean has {len(rgb_mean)} "
                f"values, num_in_ch={num_in_ch}, num_out_ch={num_out_ch}; they must agree"
            )
        self.num_feat = num_feat
        self.upscale = upscale
        self.img_range = img_range
        self.register_buffer("mean", torch.tensor(rgb_mean, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat,
                               res_scale=res_scale, pytorch_init=True)
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    # ---- channel splitting -------------------------------------------------------------
    def width_channels(self, width: float) -> int:
        """Feature channels of the student at ``width``; must be a whole number >= 1."""
        width = float(width)
        ch = self.num_feat * width
        if not (0.0 < width <= 1.0) or abs(ch - round(ch)) > 1e-6 or round(ch) < 1:
            raise ValueError(
                f"width {width} is not usable with num_feat={self.num_feat}: it must be in (0, 1] "
                f"and num_feat * width must be a whole number (e.g. 0.25 for 64 of 256 channels)"
            )
        return int(round(ch))

    def _layers(self, width: float):
        """Yield ``(layer_name, weight_slice, bias_slice)`` for every conv, in forward order.

        The single place where the slicing rule lives; ``forward`` and ``num_params`` both
        use it, so the count and the computation cannot disagree.
        """
        c = self.width_channels(width)
        yield "first", self.conv_first.weight[:c], self.conv_first.bias[:c]
        for block in self.body:
            yield "block1", block.conv1.weight[:c, :c], block.conv1.bias[:c]
            yield "block2", block.conv2.weight[:c, :c], block.conv2.bias[:c]
        yield "after_body", self.conv_after_body.weight[:c, :c], self.conv_after_body.bias[:c]
        for i in range(0, len(self.upsample), 2):
            conv, shuffle = self.upsample[i], self.upsample[i + 1]
            r2 = shuffle.upscale_factor ** 2
            # leading r*r*c outputs == leading c channels after the shuffle (see module doc)
            yield "up", conv.weight[: r2 * c, :c], conv.bias[: r2 * c]
        yield "last", self.conv_last.weight[:, :c], self.conv_last.bias

    def sliced_parameters(self, width: float = 1.0) -> list[torch.Tensor]:
        """The parameter views the student of this width uses (views of the shared weights)."""
        out: list[torch.Tensor] = []
        for _, w, b in self._layers(width):
            out += [w, b]
        return out

    def num_params(self, width: float = 1.0) -> int:
        """Parameters of the width-``width`` student (its leading slices); 1.0 gives the full count."""
        return sum(t.numel() for t in self.sliced_parameters(width))

    def extract(self, width: float) -> "EDSR":
        """A standalone EDSR of ``num_feat * width`` channels holding copies of the leading slices.

        This is how a channel-split student is deployed: a plain, smaller network (contiguous
        weights, no slicing at run time) whose output equals ``self(x, width)``.
        """
        c = self.width_channels(width)
        first = self.body[0] if len(self.body) else None
        student = EDSR(self.conv_first.in_channels, self.conv_last.out_channels, num_feat=c,
                       num_block=len(self.body), upscale=self.upscale,
                       res_scale=first.res_scale if first is not None else 1,
                       img_range=self.img_range,
                       rgb_mean=tuple(float(v) for v in self.mean.flatten()))
        convs = [m for m in student.modules() if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            for conv, (_, w, b) in zip(convs, self._layers(width), strict=True):
                conv.weight.copy_(w)
                conv.bias.copy_(b)
        return student.to(self.conv_first.weight.device)

    # ---- forward -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, width: float = 1.0) -> torch.Tensor:
        mean = self.mean.to(dtype=x.dtype)
        feat = (x - mean) * self.img_range
        layers = self._layers(width)
        shuffles = [m for m in self.upsample if isinstance(m, nn.PixelShuffle)]

        def conv(inp):
            _, w, b = next(layers)
            return F.conv2d(inp, w, b, padding=1)

        feat = conv(feat)
        res = feat
        for block in self.body:
            res = res + conv(F.relu(conv(res))) * block.res_scale
        res = conv(res) + feat
        for shuffle in shuffles:
            res = shuffle(conv(res))
        out = conv(res)
        return out / self.img_range + mean
