"""Haar DWT (hand-computed sub-bands, perfect reconstruction, energy) and the PDD wavelet loss."""

import pytest
import torch

from srlib.losses import WaveletLoss, haar_dwt, haar_idwt, wavelet_loss


def test_2x2_block_subbands_by_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)  # a=1 b=2 / c=3 d=4
    ll, hl, lh, hh = (t.item() for t in haar_dwt(x))
    assert ll == pytest.approx((1 + 2 + 3 + 4) / 2)      # 5
    assert hl == pytest.approx((-1 + 2 - 3 + 4) / 2)     # 1: right minus left
    assert lh == pytest.approx((-1 - 2 + 3 + 4) / 2)     # 2: bottom minus top
    assert hh == pytest.approx((1 - 2 - 3 + 4) / 2)      # 0


def test_4x4_edges_land_in_the_expected_bands():
    vertical_edge = torch.tensor([[0.0, 1.0, 1.0, 1.0]] * 4).view(1, 1, 4, 4)
    ll, hl, lh, hh = haar_dwt(vertical_edge)
    assert torch.allclose(ll[0, 0], torch.tensor([[1.0, 2.0], [1.0, 2.0]]))
    assert torch.allclose(hl[0, 0], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert torch.all(lh == 0) and torch.all(hh == 0)
    horizontal_edge = vertical_edge.transpose(2, 3)
    ll, hl, lh, hh = haar_dwt(horizontal_edge)
    assert torch.allclose(lh[0, 0], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert torch.all(hl == 0) and torch.all(hh == 0)
    checker = torch.tensor([[1.0, -1.0] * 2, [-1.0, 1.0] * 2] * 2).view(1, 1, 4, 4)
    ll, hl, lh, hh = haar_dwt(checker)
    assert torch.allclose(hh, torch.full((1, 1, 2, 2), 2.0))
    assert torch.all(ll == 0) and torch.all(hl == 0) and torch.all(lh == 0)


def test_channels_are_transformed_independently():
    x = torch.rand(2, 3, 4, 6)
    bands = haar_dwt(x)
    for c in range(3):
        single = haar_dwt(x[:, c:c + 1])
        for b, s in zip(bands, single):
            assert torch.allclose(b[:, c:c + 1], s)


def test_perfect_reconstruction_and_energy_preservation():
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    bands = haar_dwt(x)
    assert all(b.shape == (2, 3, 4, 3) for b in bands)
    assert torch.allclose(haar_idwt(*bands), x, atol=1e-12)
    energy = sum(b.pow(2).sum() for b in bands)
    assert torch.allclose(energy, x.pow(2).sum())


def test_wavelet_loss_hand_value_and_weights():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    target = torch.zeros_like(pred)
    # |LL| = 5, |[HL, LH]| mean = (1 + 2) / 2, |HH| = 0 -> 5 + 0.1 * 1.5 + 0.01 * 0
    assert wavelet_loss(pred, target).item() == pytest.approx(5.15)
    assert wavelet_loss(pred, target, weights=(0.0, 0.0, 1.0)).item() == pytest.approx(0.0)
    assert WaveletLoss(loss_weight=0.5)(pred, target).item() == pytest.approx(2.575)
    # A constant offset lives only in LL: offset 0.1 -> LL differs by 0.2 everywhere.
    t = torch.rand(1, 3, 4, 4)
    assert wavelet_loss(t + 0.1, t).item() == pytest.approx(0.2, rel=1e-5)
    assert wavelet_loss(t, t).item() == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="even"):
        haar_dwt(torch.zeros(1, 3, 5, 4))
    with pytest.raises(ValueError, match="differs"):
        wavelet_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 6))
