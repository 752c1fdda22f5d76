"""CSD contrastive loss: pull the student towards the teacher, push it from bad images.

Wang, Lin, Qu, Wu, Zhang, Xie & Yao, "Towards Compact Single Image Super-Resolution via
Contrastive Self-distillation" (IJCAI 2021, arXiv:2105.11683). A slim student (the leading
channels of the teacher's weights) is trained jointly with the teacher. Besides L1 to the
ground truth, the student gets a contrastive loss in VGG19 feature space (paper Eq. 3):

    L_CL = sum_j lambda_j * d(phi_j(Y_S), phi_j(Y_T)) / sum_k d(phi_j(Y_S), phi_j(Y_neg^k))

with d the L1 distance (mean absolute difference), Y_T the teacher output (positive; a
constant for this loss), and Y_neg^k the negatives: bicubic-upsampled LR images of the batch.
The total student objective (Eq. 4) is ``L1(Y_S, Y) + lambda_TL L1(Y_T, Y) + lambda_CL L_CL``.

Official code (``ContrastLoss``): layers ``relu1_1, relu2_1, relu3_1, relu4_1, relu5_1``
with weights ``1/32, 1/16, 1/8, 1/4, 1``; every negative is compared with every student
image; the denominator is ``mean(sum_k |phi(neg_k) - phi(Y_S)|)`` (= the sum over k of the
L1 distances); ``1e-7`` is added to it; the teacher is detached (``--contrast_t_detach`` in
the official training command).

Input range. The official trainer works in 0..255 (``rgb_range=255``) and feeds those tensors
to VGG19 as they are: no ImageNet mean/std normalisation, values up to 255. A VGG whose
convolutions have non-zero biases (any ImageNet VGG) is not scale-equivariant, so the loss of
the same images in [0, 1] and in [0, 255] differs (by about 1.3x for ImageNet weights). Two
options choose what VGG sees:

- ``use_input_norm=True, input_range=1.0`` (the DEFAULT of this class): [0, 1] images
  normalised with the ImageNet mean/std, the input torchvision's VGG was trained on;
- ``use_input_norm=False, input_range=255.0`` (:data:`OFFICIAL_CSD_INPUT`): the official
  code's input, literally. The CSD recipe (:mod:`srlib.recipes.csd`) uses this one.

With the seeded random stand-in (zero biases, ReLU, max-pooling) the features are positively
homogeneous in the input, so ``input_range`` alone does not change the loss there; the
normalisation (a shift) does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..features import VGGFeatures

CSD_LAYER_WEIGHTS = {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8,
                     "relu4_1": 1 / 4, "relu5_1": 1.0}

#: What VGG19 sees in the official CSD code: 0..255 tensors without ImageNet normalisation.
OFFICIAL_CSD_INPUT = {"use_input_norm": False, "input_range": 255.0}


def contrastive_ratio(student: torch.Tensor, teacher: torch.Tensor, negatives: torch.Tensor,
                      eps: float = 1e-7) -> torch.Tensor:
    """``L1(student, teacher) / (sum_k L1(student, negatives[k]) + eps)`` for one feature layer.

    ``student``, ``teacher``: ``(N, ...)``. ``negatives``: ``(K, ...)`` shared by the whole
    batch (each compared with every student sample, as in CSD) or ``(N, K, ...)`` per sample.
    The teacher and negatives are treated as constants.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"contrastive loss: student shape {tuple(student.shape)} differs from "
                         f"teacher shape {tuple(teacher.shape)}")
    if negatives.dim() == student.dim():
        if negatives.shape[1:] != student.shape[1:]:
            raise ValueError(f"negatives {tuple(negatives.shape)} do not match the student "
                             f"{tuple(student.shape)}: expected (K,{', '.join(map(str, student.shape[1:]))})")
        negs = negatives.detach().unsqueeze(1)                      # (K, 1, ...)
    elif negatives.dim() == student.dim() + 1 and negatives.shape[0] == student.shape[0] \
            and negatives.shape[2:] == student.shape[1:]:
        negs = negatives.detach().transpose(0, 1)                   # (K, N, ...)
    else:
        raise ValueError(f"negatives must have shape (K, {', '.join(map(str, student.shape[1:]))}) "
                         f"or (N, K, ...) matching the student {tuple(student.shape)}, "
                         f"got {tuple(negatives.shape)}")
    if negs.shape[0] == 0:
        raise ValueError("contrastive loss needs at least one negative")
    d_pos = (student - teacher.detach()).abs().mean()
    d_neg = (negs - student.unsqueeze(0)).abs().mean(dim=tuple(range(1, negs.dim()))).sum()
    return d_pos / (d_neg + eps)


class ContrastiveLoss(nn.Module):
    """CSD contrastive loss on VGG19 features (see the module docstring).

    ``forward(student_sr, teacher_sr, negatives)`` with images ``(N, 3, H, W)`` and negatives
    ``(K, 3, H, W)`` or ``(N, K, 3, H, W)``, all in [0, 1].

    Args:
        layer_weights: VGG19 layer -> weight (default :data:`CSD_LAYER_WEIGHTS`).
        weights: VGG19 weights (``"auto"``, ``"imagenet"``, ``"random"``, a path).
        use_input_norm: normalise with the ImageNet mean/std before VGG (default ``True``).
        input_range: multiply the [0, 1] images by this before VGG (default ``1.0``); the
            official code's input is ``use_input_norm=False, input_range=255.0``
            (:data:`OFFICIAL_CSD_INPUT`). Normalisation expects [0, 1] images, so
            ``use_input_norm=True`` with another range is refused.
        seed: seed of the random stand-in. eps: added to the denominator (1e-7, official).
        backbone: a ready :class:`~srlib.features.VGGFeatures` (its ``normalize_input`` wins).
    """

    def __init__(self, layer_weights: dict[str, float] | None = None, weights: str | Path = "auto",
                 use_input_norm: bool = True, seed: int = 0, eps: float = 1e-7,
                 backbone: VGGFeatures | None = None, input_range: float = 1.0):
        super().__init__()
        input_range = float(input_range)
        if not input_range > 0:
            raise ValueError(f"input_range must be positive (1.0 for [0, 1] images, 255.0 for the "
                             f"official code's 0..255), got {input_range}")
        if use_input_norm and input_range != 1.0:
            raise ValueError(f"use_input_norm=True normalises [0, 1] images with the ImageNet "
                             f"mean/std; it cannot be combined with input_range={input_range}. "
                             "Use use_input_norm=False, input_range=255.0 for the official CSD input")
        self.input_range = input_range
        self.layer_weights = dict(layer_weights if layer_weights is not None else CSD_LAYER_WEIGHTS)
        if backbone is None:
            backbone = VGGFeatures(list(self.layer_weights), weights=weights,
                                   normalize_input=use_input_norm, seed=seed)
        missing = [k for k in self.layer_weights if k not in backbone.layers]
        if missing:
            raise ValueError(f"the backbone does not provide layers {missing}")
        self.vgg = backbone
        self.eps = eps

    @property
    def backbone(self) -> str:
        return self.vgg.backbone

    def forward(self, student: torch.Tensor, teacher: torch.Tensor,
                negatives: torch.Tensor) -> torch.Tensor:
        if negatives.dim() == 5:
            n, k = negatives.shape[:2]
            flat_negs = negatives.reshape(n * k, *negatives.shape[2:])
        else:
            flat_negs = negatives
        r = self.input_range
        s_feats = self.vgg(student * r if r != 1.0 else student)
        with torch.no_grad():
            t_feats = self.vgg(teacher.detach() * r)
            n_feats = self.vgg(flat_negs.detach() * r)
        loss = student.new_zeros(())
        for name, w in self.layer_weights.items():
            negs = n_feats[name]
            if negatives.dim() == 5:
                negs = negs.reshape(n, k, *negs.shape[1:])
            loss = loss + w * contrastive_ratio(s_feats[name], t_feats[name], negs, self.eps)
        return loss
