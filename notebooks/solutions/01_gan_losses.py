"""Solution to notebook 01, exercise 1: the BCE discriminator loss from logits (stable) and the
LSGAN generator loss, checked against srlib.gan_toy as the notebook's check cell does.

Run it: ``python notebooks/solutions/01_gan_losses.py`` (tests/test_solutions.py runs it).
"""

import torch
import torch.nn.functional as F

from srlib import gan_toy


def my_d_loss_bce(real_logits, fake_logits):
    """-E log sigmoid(real) - E log(1 - sigmoid(fake)).

    -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l): no overflow and no
    log(0) for logits of any size (sigmoid(-40) underflows to 0 in float32, and its log to -inf).
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def my_g_loss_lsgan(fake_scores):
    """LSGAN generator loss (Mao et al. 2017, Eq. 2, c = 1): 0.5 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake_scores - 1.0).pow(2).mean()


if __name__ == "__main__":
    gen = torch.Generator().manual_seed(0)
    real_l, fake_l = torch.randn(64, 1, generator=gen) * 30, torch.randn(64, 1, generator=gen) * 30
    ok_d = torch.allclose(my_d_loss_bce(real_l, fake_l), gan_toy.discriminator_loss("vanilla", real_l, fake_l),
                          atol=1e-5)
    ok_g = torch.allclose(my_g_loss_lsgan(fake_l), gan_toy.generator_loss("lsgan", fake_l), atol=1e-5)
    # hand value: logits 0 give D = 1/2, so the BCE loss is 2 log 2
    zero = torch.zeros(4, 1)
    ok_hand = abs(float(my_d_loss_bce(zero, zero)) - 2 * torch.log(torch.tensor(2.0)).item()) < 1e-6
    assert ok_d and ok_g and ok_hand, (ok_d, ok_g, ok_hand)
    print("check holds: BCE discriminator loss and LSGAN generator loss match srlib")
