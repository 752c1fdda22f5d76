"""Gram matrix and the VGG perceptual / style loss on a deterministic random backbone."""

import pytest
import torch

from srlib.features import VGGFeatures
from srlib.losses import PerceptualLoss, gram_matrix


@pytest.fixture(scope="module")
def vgg():
    return VGGFeatures(["conv1_2", "conv2_2", "relu2_2"], weights="random", seed=0)


def test_gram_matrix_of_1x2x1x2_by_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # channels [1, 2] and [3, 4]
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    assert torch.allclose(gram_matrix(x)[0], expected)
    with pytest.raises(ValueError):
        gram_matrix(torch.zeros(2, 2))


def test_zero_for_identical_positive_otherwise(vgg):
    loss = PerceptualLoss({"conv2_2": 1.0}, backbone=vgg, style_weight=1.0)
    x = torch.rand(2, 3, 16, 16)
    percep, style = loss(x, x.clone())
    assert percep.item() == 0.0 and style.item() == 0.0
    percep, style = loss(x, (x + 0.1 * torch.randn_like(x)).clamp(0, 1))
    assert percep.item() > 0 and style.item() > 0


def test_matches_hand_computation_from_features(vgg):
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    fx, fy = vgg(x), vgg(y)
    loss = PerceptualLoss({"conv1_2": 0.1, "conv2_2": 1.0}, backbone=vgg, perceptual_weight=2.0,
                          style_weight=3.0)
    percep, style = loss(x, y)
    want_p = 2.0 * (0.1 * (fx["conv1_2"] - fy["conv1_2"]).abs().mean()
                    + 1.0 * (fx["conv2_2"] - fy["conv2_2"]).abs().mean())
    want_s = 3.0 * sum(w * (gram_matrix(fx[k]) - gram_matrix(fy[k])).abs().mean()
                       for k, w in {"conv1_2": 0.1, "conv2_2": 1.0}.items())
    assert percep.item() == pytest.approx(want_p.item(), rel=1e-5)
    assert style.item() == pytest.approx(want_s.item(), rel=1e-5)
    assert loss.total(x, y).item() == pytest.approx((want_p + want_s).item(), rel=1e-5)
    l2 = PerceptualLoss({"conv2_2": 1.0}, backbone=vgg, criterion="l2")(x, y)[0]
    assert l2.item() == pytest.approx((fx["conv2_2"] - fy["conv2_2"]).pow(2).mean().item(), rel=1e-5)
    fro = PerceptualLoss({"conv2_2": 1.0}, backbone=vgg, criterion="fro")(x, y)[0]
    assert fro.item() == pytest.approx(torch.norm(fx["conv2_2"] - fy["conv2_2"]).item(), rel=1e-5)


def test_layer_weights_scale_linearly(vgg):
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    one = PerceptualLoss({"conv2_2": 1.0}, backbone=vgg)(x, y)[0]
    three = PerceptualLoss({"conv2_2": 3.0}, backbone=vgg)(x, y)[0]
    other = PerceptualLoss({"conv1_2": 1.0}, backbone=vgg)(x, y)[0]
    both = PerceptualLoss({"conv2_2": 1.0, "conv1_2": 1.0}, backbone=vgg)(x, y)[0]
    assert three.item() == pytest.approx(3 * one.item(), rel=1e-6)
    assert both.item() == pytest.approx(one.item() + other.item(), rel=1e-6)


def test_before_relu_differs_from_after_relu(vgg):
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    pre = PerceptualLoss({"conv2_2": 1.0}, backbone=vgg)(x, y)[0]
    post = PerceptualLoss({"relu2_2": 1.0}, backbone=vgg)(x, y)[0]
    # |relu(a) - relu(b)| <= |a - b| element-wise, with equality only where both are positive.
    assert post.item() < pre.item()


def test_gradient_reaches_prediction_only(vgg):
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    y = torch.rand(1, 3, 8, 8, requires_grad=True)
    PerceptualLoss({"conv2_2": 1.0}, backbone=vgg)(x, y)[0].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is None


def test_own_backbone_records_choice_and_errors(monkeypatch, tmp_path):
    loss = PerceptualLoss({"conv1_1": 1.0}, weights="random", seed=2)
    assert loss.backbone == "vgg19-random(seed=2)"
    assert not any(p.requires_grad for p in loss.parameters())
    shared = VGGFeatures(["conv1_1"], weights="random")
    with pytest.raises(ValueError, match="conv5_4"):
        PerceptualLoss({"conv5_4": 1.0}, backbone=shared)
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss({"conv1_1": 1.0}, backbone=shared, criterion="l3")
    with pytest.raises(ValueError, match="differs"):
        PerceptualLoss({"conv1_1": 1.0}, backbone=shared)(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 4, 4))
