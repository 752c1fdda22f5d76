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
L1 distances); ``1e-7`` is added to it. Note: the official code feeds VGG without ImageNet
normalisation; here ``use_input_norm=True`` by default (our inputs are [0, 1] images), pass
``False`` to follow it literally.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..features import VGGFeatures

CSD_LAYER_WEIGHTS = {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8,
                     "relu4_1": 1 / 4, "relu5_1": 1.0}


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
    """

    def __init__(self, layer_weights: dict[str, float] | None = None, weights: str | Path = "auto",
                 use_input_norm: bool = True, seed: int = 0, eps: float = 1e-7,
                 backbone: VGGFeatures | None = None):
        super().__init__()
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
        s_feats = self.vgg(student)
        with torch.no_grad():
            t_feats = self.vgg(teacher.detach())
            n_feats = self.vgg(flat_negs.detach())
        loss = student.new_zeros(())
        for name, w in self.layer_weights.items():
            negs = n_feats[name]
            if negatives.dim() == 5:
                negs = negs.reshape(n, k, *negs.shape[1:])
            loss = loss + w * contrastive_ratio(s_feats[name], t_feats[name], negs, self.eps)
        return loss
