"""Solution to notebook 02, exercise 1: the relativistic average discriminator and generator losses
of ESRGAN (Eq. 1-2; Jolicoeur-Martineau 2018), checked against srlib.losses as the notebook's check
cell does: values and gradients, and the chance value log 2.

Run it: ``python notebooks/solutions/02_relativistic.py`` (tests/test_solutions.py runs it).
"""

import math

import torch
import torch.nn.functional as F

from srlib.losses import relativistic_d_loss, relativistic_g_loss


def my_ragan_d_loss(real_logits, fake_logits):
    """Mean of the two terms of L_D^Ra.

    D_Ra(x_r, x_f) = sigmoid(C(x_r) - E[C(x_f)]); L_D = -E log D_Ra(x_r, x_f) - E log(1 - D_Ra(x_f, x_r)).
    With -log sigmoid(z) = softplus(-z) and -log(1 - sigmoid(z)) = softplus(z). The other side's mean
    is a constant in each term (detached), as current BasicSR computes it.
    """
    real_rel = real_logits - fake_logits.mean().detach()
    fake_rel = fake_logits - real_logits.mean().detach()
    return 0.5 * (F.softplus(-real_rel).mean() + F.softplus(fake_rel).mean())


def my_ragan_g_loss(real_logits, fake_logits):
    """Mean of the two terms of L_G^Ra = -E log(1 - D_Ra(x_r, x_f)) - E log D_Ra(x_f, x_r).

    The generator cannot change the real logits: they are constants (detached); the fakes' mean
    in the real term does carry gradient to the generator.
    """
    real_logits = real_logits.detach()
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    return 0.5 * (F.softplus(real_rel).mean() + F.softplus(-fake_rel).mean())


def value_and_grads(fn, real, fake):
    r, f = real.clone().requires_grad_(), fake.clone().requires_grad_()
    loss = fn(r, f)
    loss.backward()
    grads = [x.grad if x.grad is not None else torch.zeros_like(x) for x in (r, f)]
    return [loss.detach(), *grads]


if __name__ == "__main__":
    gen = torch.Generator().manual_seed(0)
    real_l, fake_l = 3 * torch.randn(16, 1, generator=gen), 3 * torch.randn(16, 1, generator=gen) - 1
    same = all(torch.allclose(a, b, atol=1e-6)
               for mine, ref in ((my_ragan_d_loss, relativistic_d_loss), (my_ragan_g_loss, relativistic_g_loss))
               for a, b in zip(value_and_grads(mine, real_l, fake_l), value_and_grads(ref, real_l, fake_l)))
    chance = abs(float(my_ragan_d_loss(torch.zeros(4, 1), torch.zeros(4, 1))) - math.log(2)) < 1e-6
    # hand value: real logits 2, fake logits 0 -> real term softplus(-2), fake term softplus(-2)
    hand = abs(float(my_ragan_d_loss(torch.full((3, 1), 2.0), torch.zeros(3, 1)))
               - math.log1p(math.exp(-2.0))) < 1e-6
    assert same and chance and hand, (same, chance, hand)
    print("check holds: relativistic D and G losses (values and gradients) match srlib; equal logits give log 2")
