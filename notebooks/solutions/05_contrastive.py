"""Solution to notebook 05, exercise 1: one layer of CSD's contrastive loss (Wang et al. 2021,
Eq. 3), checked against srlib.losses.contrastive_ratio on random features (as the notebook's
check cell does) and on a hand-computed example.

Run it: ``python notebooks/solutions/05_contrastive.py`` (tests/test_solutions.py runs it).
"""

import torch

from srlib.losses import contrastive_ratio


def my_contrastive(fs, ft, fn, eps=1e-7):
    """``d(fs, ft) / (sum_k d(fs, fn[k]) + eps)`` with ``d`` the mean absolute difference.

    ``fs``, ``ft``: (N, ...) student and teacher features; ``fn``: (K, ...) negative features,
    each compared with every student sample (the official code repeats them over the batch).
    The teacher and the negatives are targets: no gradient flows into them.
    """
    d_pos = (fs - ft.detach()).abs().mean()
    d_neg = sum((fs - fn[k].detach().unsqueeze(0)).abs().mean() for k in range(fn.shape[0]))
    return d_pos / (d_neg + eps)


if __name__ == "__main__":
    # hand value: one sample, one feature: |1 - 2| / (|1 - 3| + |1 - 5|) = 1/6
    s, t, n = torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[3.0], [5.0]])
    assert abs(my_contrastive(s, t, n, eps=0.0).item() - 1 / 6) < 1e-7

    g = torch.Generator().manual_seed(0)
    fs, ft, fn = (torch.rand(3, 8, 5, 5, generator=g), torch.rand(3, 8, 5, 5, generator=g),
                  torch.rand(4, 8, 5, 5, generator=g))
    assert torch.allclose(my_contrastive(fs, ft, fn), contrastive_ratio(fs, ft, fn), rtol=1e-5)
    # more negatives: the denominator is a sum, so duplicating every negative halves the loss
    assert torch.allclose(my_contrastive(fs, ft, torch.cat([fn, fn])), my_contrastive(fs, ft, fn) / 2, rtol=1e-5)
    print("check holds: my_contrastive equals srlib's contrastive_ratio")
