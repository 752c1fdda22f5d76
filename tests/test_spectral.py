"""srlib.archs.spectral: settling spectral norms equals that many training forwards, and converges."""

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import spectral_norm

from srlib.archs.spectral import settle_spectral_norm


def _conv_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(spectral_norm(nn.Conv2d(3, 8, 3, 1, 1)), nn.LeakyReLU(0.2),
                         spectral_norm(nn.Conv2d(8, 16, 4, 2, 1)), nn.LeakyReLU(0.2),
                         nn.Conv2d(16, 4, 3, 1, 1),  # not normalised: left alone
                         nn.Flatten(), spectral_norm(nn.Linear(4 * 4 * 4, 2)))


def test_settling_equals_the_same_number_of_training_forwards():
    a = _conv_net()
    b = copy.deepcopy(a)
    a.train()
    with torch.no_grad():
        for _ in range(7):
            a(torch.zeros(1, 3, 8, 8))  # each training forward runs one power iteration
    assert settle_spectral_norm(b, iterations=7) == 3
    for (na, ta), (nb, tb) in zip(a.named_buffers(), b.named_buffers()):
        assert na == nb
        torch.testing.assert_close(ta, tb, rtol=1e-5, atol=1e-6)
    for la, lb in zip(a.modules(), b.modules()):
        if hasattr(la, "weight_orig"):
            torch.testing.assert_close(la.weight, lb.weight, rtol=1e-5, atol=1e-6)
    # parameters untouched
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_settled_estimate_is_the_largest_singular_value_of_the_reshaped_weight():
    net = _conv_net(1)
    settle_spectral_norm(net, iterations=300)
    for m in net.modules():
        if hasattr(m, "weight_orig"):
            mat = m.weight_orig.detach().reshape(m.weight_orig.shape[0], -1)
            sigma = torch.linalg.matrix_norm(mat, ord=2)
            assert float(torch.dot(m.weight_u, mat @ m.weight_v)) == pytest.approx(float(sigma), rel=1e-4)
            assert float(torch.linalg.matrix_norm(m.weight.reshape(mat.shape), ord=2)) == pytest.approx(1.0, rel=1e-4)


def test_zero_iterations_changes_nothing_and_negative_is_an_error():
    net = _conv_net(2)
    before = {k: v.clone() for k, v in net.named_buffers()}
    settle_spectral_norm(net, iterations=0)
    assert all(torch.equal(before[k], v) for k, v in net.named_buffers())
    with pytest.raises(ValueError, match="iterations"):
        settle_spectral_norm(net, iterations=-1)
