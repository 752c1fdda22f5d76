"""CSD contrastive, PDD pairwise-distance and semantic (discriminator-feature) losses."""

import math

import pytest
import torch

from srlib.features import VGGFeatures
from srlib.losses import (CSD_LAYER_WEIGHTS, ContrastiveLoss, PairwiseDistanceLoss,
                          contrastive_ratio, gram_matrix, inter_model_loss, intra_model_loss,
                          semantic_loss)


# --- CSD ------------------------------------------------------------------------------------

def test_contrastive_ratio_by_hand():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[1.0, 1.0]])
    negs = torch.tensor([[2.0, 2.0], [4.0, 4.0]])            # K = 2 shared negatives
    # d(s, t) = 1; sum_k d(s, neg_k) = 2 + 4
    assert contrastive_ratio(s, t, negs).item() == pytest.approx(1 / 6)
    # The same negatives given per sample: (N, K, ...).
    assert contrastive_ratio(s, t, negs.unsqueeze(0)).item() == pytest.approx(1 / 6)
    # More (farther) negatives lower the loss; a student on the teacher gives 0.
    more = torch.cat([negs, torch.tensor([[6.0, 6.0]])])
    assert contrastive_ratio(s, t, more).item() == pytest.approx(1 / 12)
    assert contrastive_ratio(t, t, negs).item() == 0.0


def test_shared_negatives_compared_with_every_student_sample():
    s = torch.tensor([[0.0], [2.0]])
    t = torch.tensor([[1.0], [1.0]])
    negs = torch.tensor([[4.0]])
    # d_pos = mean(|0-1|, |2-1|) = 1; d_neg = mean(|4-0|, |4-2|) = 3
    assert contrastive_ratio(s, t, negs).item() == pytest.approx(1 / 3)


def test_contrastive_gradients_only_to_student():
    s = torch.rand(2, 4, requires_grad=True)
    t = torch.rand(2, 4, requires_grad=True)
    n = torch.rand(3, 4, requires_grad=True)
    contrastive_ratio(s, t, n).backward()
    assert s.grad is not None and t.grad is None and n.grad is None


def test_contrastive_module_sums_weighted_layers():
    vgg = VGGFeatures(["relu1_1", "relu2_1"], weights="random", seed=0)
    w = {"relu1_1": 0.5, "relu2_1": 2.0}
    loss = ContrastiveLoss(layer_weights=w, backbone=vgg)
    s, t, negs = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8)
    fs, ft, fn = vgg(s), vgg(t), vgg(negs)
    want = sum(wk * contrastive_ratio(fs[k], ft[k], fn[k]) for k, wk in w.items())
    assert loss(s, t, negs).item() == pytest.approx(want.item(), rel=1e-5)
    per_sample = negs.unsqueeze(0).expand(2, -1, -1, -1, -1)
    assert loss(s, t, per_sample).item() == pytest.approx(want.item(), rel=1e-5)
    assert loss(t, t, negs).item() == 0.0
    assert CSD_LAYER_WEIGHTS == {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8,
                                 "relu4_1": 1 / 4, "relu5_1": 1.0}
    with pytest.raises(ValueError, match="negatives"):
        contrastive_ratio(torch.rand(2, 4), torch.rand(2, 4), torch.rand(3, 5))


# --- PDD ------------------------------------------------------------------------------------

def test_inter_model_loss_by_hand():
    s_t, g_t = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2), torch.zeros(1, 1, 1, 2)
    s_s, g_s = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2), torch.zeros(1, 1, 1, 2)
    # Gram(s_t - g_t) = (1 + 4) / 2 = 2.5; Gram(s_s - g_s) = 1 / 2; || 2.5 - 0.5 ||_F = 2
    assert inter_model_loss(s_t, g_t, s_s, g_s).item() == pytest.approx(2.0)
    # Same model difference on both domains -> 0.
    assert inter_model_loss(s_t, g_t, s_t + 3, g_t + 3).item() == 0.0


def test_intra_model_loss_by_hand():
    s_t = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    s_s = torch.zeros(1, 2, 1, 1)
    g_t, g_s = torch.zeros(1, 2, 1, 1), torch.zeros(1, 2, 1, 1)
    # d_S = [1, 0] -> softmax [e, 1]/(1+e); d_G = [0, 0] -> [1/2, 1/2]
    # CE = -1/2 (log p1 + log p2) = log(1 + e) - 1/2
    assert intra_model_loss(s_t, s_s, g_t, g_s).item() == pytest.approx(math.log(1 + math.e) - 0.5, abs=1e-5)
    # Cross-entropy is smallest when the specialist's distance pattern equals the generalist's.
    g_t2 = torch.tensor([2.0, 0.0]).view(1, 2, 1, 1)
    match = intra_model_loss(g_t2, g_s, g_t2, g_s).item()
    for shift in (0.0, 1.0, 3.0):
        other = torch.tensor([shift, 0.0]).view(1, 2, 1, 1)
        assert intra_model_loss(other, g_s, g_t2, g_s).item() >= match - 1e-6


def test_pairwise_module_matches_feature_functions():
    vgg = VGGFeatures(["conv1_2", "conv2_1", "conv2_2"], weights="random", seed=0)
    loss = PairwiseDistanceLoss(inter_weights={"conv2_1": 0.25}, intra_weights={"conv1_2": 0.1,
                                "conv2_2": 1.0}, backbone=vgg, inter_weight=2.0)
    imgs = [torch.rand(2, 3, 8, 8) for _ in range(4)]
    s_t, g_t, s_s, g_s = imgs
    inter, intra = loss(s_t, g_t, s_s, g_s)
    f = [vgg(x) for x in imgs]
    want_inter = 2.0 * 0.25 * torch.linalg.vector_norm(
        gram_matrix(f[0]["conv2_1"] - f[1]["conv2_1"]) - gram_matrix(f[2]["conv2_1"] - f[3]["conv2_1"]))
    want_intra = sum(w * intra_model_loss(f[0][k], f[2][k], f[1][k], f[3][k])
                     for k, w in {"conv1_2": 0.1, "conv2_2": 1.0}.items())
    assert inter.item() == pytest.approx(want_inter.item(), rel=1e-5)
    assert intra.item() == pytest.approx(want_intra.item(), rel=1e-5)
    # Specialist identical to the generalist: no inter-model discrepancy to distil.
    assert loss(g_t, g_t, g_s, g_s)[0].item() == 0.0
    with pytest.raises(ValueError, match="same size"):
        loss(s_t, g_t, s_s[:1], g_s[:1])


def test_pairwise_gradients_reach_specialist_only():
    vgg = VGGFeatures(["conv1_2", "conv2_1"], weights="random", seed=0)
    loss = PairwiseDistanceLoss({"conv2_1": 1.0}, {"conv1_2": 1.0}, backbone=vgg)
    s_t = torch.rand(1, 3, 8, 8, requires_grad=True)
    g_t = torch.rand(1, 3, 8, 8, requires_grad=True)
    inter, intra = loss(s_t, g_t, torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    (inter + intra).backward()
    assert s_t.grad is not None and s_t.grad.abs().sum() > 0 and g_t.grad is None


# --- semantic -------------------------------------------------------------------------------

def test_semantic_loss_by_hand_and_layer_weights():
    sr = torch.tensor([[1.0, 2.0]], requires_grad=True)
    hr = torch.tensor([[0.0, 0.0]], requires_grad=True)
    two_layers = lambda x: [x, 2 * x]  # noqa: E731
    # mean|d| = 1.5 at layer 0, 3 at layer 1
    assert semantic_loss(two_layers, sr, hr).item() == pytest.approx(4.5)
    assert semantic_loss(two_layers, sr, hr, layer_weights=[1.0, 0.0]).item() == pytest.approx(1.5)
    as_dict = lambda x: {"a": x, "b": 2 * x}  # noqa: E731
    loss = semantic_loss(as_dict, sr, hr, layer_weights={"b": 0.5})
    assert loss.item() == pytest.approx(1.5)
    loss.backward()
    assert sr.grad is not None and hr.grad is None
    with pytest.raises(ValueError, match="does not return"):
        semantic_loss(as_dict, sr, hr, layer_weights={"c": 1.0})


def test_semantic_loss_with_a_discriminator_feature_extractor():
    torch.manual_seed(0)
    disc = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.LeakyReLU(0.2),
                               torch.nn.Conv2d(4, 4, 3, stride=2, padding=1))

    def feats(x):
        h1 = disc[1](disc[0](x))
        return [h1, disc[2](h1)]

    hr = torch.rand(2, 3, 8, 8)
    assert semantic_loss(feats, hr.clone(), hr).item() == 0.0
    assert semantic_loss(feats, hr + 0.1, hr).item() > 0
