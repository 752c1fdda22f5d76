"""Losses of the course, one idea per file; each docstring cites its paper and equation.

- :mod:`.pixel`: L1, L2, Charbonnier.
- :mod:`.perceptual`: VGG19 perceptual and Gram/style losses (Johnson 2016, ESRGAN).
- :mod:`.gan`: vanilla / minimax, LSGAN, hinge, WGAN and relativistic average GAN losses.
- :mod:`.wavelet`: orthonormal Haar DWT and PDD's wavelet loss.
- :mod:`.contrastive`: CSD's contrastive loss.
- :mod:`.distance`: PDD's inter- and intra-model pairwise distance losses.
- :mod:`.semantic`: discriminator-feature (semantic self-distillation) loss.
"""

from .contrastive import CSD_LAYER_WEIGHTS, ContrastiveLoss, contrastive_ratio
from .distance import (PDD_INTER_WEIGHTS, PDD_INTRA_WEIGHTS, PairwiseDistanceLoss,
                       inter_model_loss, intra_model_loss)
from .gan import (GAN_KINDS, bce_fake, bce_real, d_loss, g_loss, relativistic_d_loss,
                  relativistic_g_loss)
from .perceptual import PerceptualLoss, feature_distance, gram_matrix
from .pixel import (CharbonnierLoss, L1Loss, MSELoss, charbonnier_loss, l1_loss, mse_loss,
                    reduce_loss)
from .semantic import literal_semantic_loss, semantic_loss
from .wavelet import PDD_WAVELET_WEIGHTS, WaveletLoss, haar_dwt, haar_idwt, wavelet_loss

__all__ = [
    "CSD_LAYER_WEIGHTS", "ContrastiveLoss", "contrastive_ratio",
    "PDD_INTER_WEIGHTS", "PDD_INTRA_WEIGHTS", "PairwiseDistanceLoss", "inter_model_loss",
    "intra_model_loss",
    "GAN_KINDS", "bce_fake", "bce_real", "d_loss", "g_loss", "relativistic_d_loss",
    "relativistic_g_loss",
    "PerceptualLoss", "feature_distance", "gram_matrix",
    "CharbonnierLoss", "L1Loss", "MSELoss", "charbonnier_loss", "l1_loss", "mse_loss", "reduce_loss",
    "semantic_loss", "literal_semantic_loss",
    "PDD_WAVELET_WEIGHTS", "WaveletLoss", "haar_dwt", "haar_idwt", "wavelet_loss",
]
