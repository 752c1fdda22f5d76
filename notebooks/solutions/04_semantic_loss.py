"""Solution to notebook 04, exercise 1: the semantic (discriminator feature-matching) loss,
checked against srlib.losses.semantic_loss on a category-aware discriminator (as the notebook's
check cell does), on a hand-computed example, and for having no gradient through HR.

Run it: ``python notebooks/solutions/04_semantic_loss.py`` (tests/test_solutions.py runs it).
"""

import torch

from srlib.archs.category_disc import CategoryDiscriminator
from srlib.losses import semantic_loss


def my_semantic_loss(features, sr, hr, weights):
    """sum_s weights[s] * mean |features(sr)[s] - features(hr)[s]|, no gradient through hr.

    SR and HR go through ``features`` in one call, so a network whose forward pass changes its
    state (spectral norm's power iteration in training mode) compares both with the same weights.
    """
    n = sr.shape[0]
    feats = features(torch.cat([sr, hr.detach()]))
    return sum(w * (f[:n] - f[n:].detach()).abs().mean() for w, f in zip(weights, feats))


if __name__ == "__main__":
    # hand value: features = [x, 2x]; |1-0|, |2-4| -> 1.5; doubled -> 3; 0.5 * 1.5 + 2 * 3 = 6.75
    sr = torch.tensor([[[[1.0, 2.0]]]])
    hr = torch.tensor([[[[0.0, 4.0]]]])
    assert abs(float(my_semantic_loss(lambda x: [x, 2 * x], sr, hr, [0.5, 2.0])) - 6.75) < 1e-6

    torch.manual_seed(0)
    D = CategoryDiscriminator(3, num_feat=8, num_stages=3).eval()
    hr_t = torch.rand(4, 3, 32, 32)
    sr_t = (hr_t + 0.05 * torch.randn(hr_t.shape)).clamp(0, 1).requires_grad_(True)
    hr_t.requires_grad_(True)
    w = [1.0, 1.0, 1.0]
    mine = my_semantic_loss(D.features, sr_t, hr_t, w)
    ref = semantic_loss(D.features, sr_t, hr_t, w)
    m, r = mine.item(), ref.item()
    assert abs(m - r) <= 1e-5 * max(1.0, abs(r)), (m, r)
    mine.backward()
    assert hr_t.grad is None and sr_t.grad.abs().sum() > 0
    print(f"check holds: yours {m:.6f}, srlib {r:.6f}; no gradient through HR")
