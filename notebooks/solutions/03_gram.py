"""Solution to notebook 03, exercise 1: the normalised Gram matrix, checked against
srlib.losses.gram_matrix on VGG features (as the notebook's check cell does) and on a tiny
hand-computed example, and for its invariance to shuffling positions.

Run it: ``python notebooks/solutions/03_gram.py`` (tests/test_solutions.py runs it).
"""

import numpy as np
import torch

from srlib.data import load_images
from srlib.features import VGGFeatures
from srlib.losses import gram_matrix


def my_gram(features):
    """(N, C, H, W) features -> (N, C, C): G[c, c'] = sum_hw F[c, hw] F[c', hw] / (C H W)."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.einsum("ncp,ndp->ncd", f, f) / (c * h * w)


if __name__ == "__main__":
    # hand value: one image, 2 channels, 1 x 2 positions: F = [[1, 2], [3, 4]] -> F F^T / 4
    tiny = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    want = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.allclose(my_gram(tiny), want)

    img = load_images("photos", "test", n=1)["astronaut"]
    crop = np.ascontiguousarray(img[100:132, 200:232])
    vgg = VGGFeatures(["conv2_2"], weights="random", seed=0)
    with torch.no_grad():
        feats = vgg(torch.from_numpy(crop).permute(2, 0, 1).float().div(255).unsqueeze(0))["conv2_2"]
    perm = torch.randperm(feats.shape[-2] * feats.shape[-1], generator=torch.Generator().manual_seed(0))
    shuffled = feats.flatten(2)[..., perm].reshape(feats.shape)
    assert torch.allclose(my_gram(feats), gram_matrix(feats), rtol=1e-4, atol=1e-6)
    assert torch.allclose(my_gram(shuffled), my_gram(feats), rtol=1e-4, atol=1e-6)
    print("check holds: my_gram equals srlib's gram_matrix and ignores the order of positions")
