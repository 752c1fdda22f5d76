"""VGG19 feature backbone: naming, truncation, pre-ReLU taps, weights sources, freezing."""

import pytest
import torch
import torchvision

from srlib import features
from srlib.errors import BackboneUnavailableError, WeightsError
from srlib.features import VGG19_FILE, VGG19_LAYER_NAMES, VGG19_URL, VGGFeatures, backbone_status


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub dir; returns the checkpoints folder (not created)."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(features, "_said", set())
    return tmp_path / "checkpoints"


def _fake_vgg19_file(path, n_convs=2, seed=123):
    """A torchvision-style state dict holding the first ``n_convs`` convs (what the test needs)."""
    g = torch.Generator().manual_seed(seed)
    state, in_ch = {}, 3
    conv_idx = [i for i, n in enumerate(VGG19_LAYER_NAMES) if n.startswith("conv")][:n_convs]
    outs = [64, 64, 128, 128, 256][:n_convs]
    for idx, out in zip(conv_idx, outs):
        state[f"features.{idx}.weight"] = torch.randn(out, in_ch, 3, 3, generator=g)
        state[f"features.{idx}.bias"] = torch.randn(out, generator=g)
        in_ch = out
    state["classifier.6.bias"] = torch.zeros(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_layer_names_follow_torchvision_indices():
    assert len(VGG19_LAYER_NAMES) == 37
    assert VGG19_LAYER_NAMES[0] == "conv1_1" and VGG19_LAYER_NAMES[1] == "relu1_1"
    assert VGG19_LAYER_NAMES[4] == "pool1" and VGG19_LAYER_NAMES[5] == "conv2_1"
    assert VGG19_LAYER_NAMES[34] == "conv5_4" and VGG19_LAYER_NAMES[36] == "pool5"
    with torch.device("meta"):
        tv = torchvision.models.vgg19(weights=None).features
    ours = VGGFeatures(["pool5"], weights="random").features
    assert len(ours) == len(tv) == 37
    for name, a, b in zip(VGG19_LAYER_NAMES, ours, tv):
        assert type(a) is type(b), name
        assert name[:4] == {torch.nn.Conv2d: "conv", torch.nn.ReLU: "relu",
                            torch.nn.MaxPool2d: "pool"}[type(a)]
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
           {k: v.shape for k, v in tv.state_dict().items()}


def test_truncated_after_deepest_layer():
    m = VGGFeatures(["conv1_1", "relu2_2"], weights="random")
    assert len(m.features) == VGG19_LAYER_NAMES.index("relu2_2") + 1 == 9
    assert isinstance(m.features[-1], torch.nn.ReLU)
    out = m(torch.rand(1, 3, 8, 8))
    assert list(out) == ["conv1_1", "relu2_2"]
    assert out["conv1_1"].shape == (1, 64, 8, 8) and out["relu2_2"].shape == (1, 128, 4, 4)


def test_conv_taps_are_before_relu_and_not_overwritten():
    m = VGGFeatures(["conv1_1", "relu1_1", "conv1_2", "relu1_2"], weights="random", seed=0)
    out = m(torch.rand(2, 3, 12, 12))
    assert (out["conv1_1"] < 0).any() and (out["conv1_2"] < 0).any()
    assert (out["relu1_1"] >= 0).all() and (out["relu1_2"] >= 0).all()
    assert torch.equal(torch.relu(out["conv1_1"]), out["relu1_1"])
    assert torch.equal(torch.relu(out["conv1_2"]), out["relu1_2"])
    assert all(not getattr(mod, "inplace", False) for mod in m.features)


def test_random_weights_deterministic_and_global_rng_untouched():
    torch.manual_seed(7)
    before = torch.get_rng_state()
    a = VGGFeatures(["conv2_1"], weights="random", seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    b = VGGFeatures(["conv2_1"], weights="random", seed=3)
    c = VGGFeatures(["conv2_1"], weights="random", seed=4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    # A shorter network gets the same leading weights (init runs layer by layer).
    short = VGGFeatures(["conv1_1"], weights="random", seed=3)
    assert torch.equal(short.features[0].weight, a.features[0].weight)
    # torchvision's VGG init: Kaiming normal (fan_out) and zero bias.
    w = a.features[5].weight  # conv2_1: 128 x 64 x 3 x 3, fan_out = 128 * 9
    assert torch.all(a.features[5].bias == 0)
    assert abs(w.std().item() - (2 / (128 * 9)) ** 0.5) < 0.002
    assert a.backbone == "vgg19-random(seed=3)"


def test_imagenet_absent_raises_clear_error(hub):
    with pytest.raises(BackboneUnavailableError) as err:
        VGGFeatures(["conv1_1"], weights="imagenet")
    msg = str(err.value)
    assert VGG19_FILE in msg and str(hub / VGG19_FILE) in msg and VGG19_URL in msg
    assert isinstance(err.value, FileNotFoundError)


def test_imagenet_present_loads_exactly_those_weights(hub):
    state = _fake_vgg19_file(hub / VGG19_FILE)
    m = VGGFeatures(["relu1_2"], weights="imagenet")
    assert m.backbone == "vgg19-imagenet"
    assert torch.equal(m.features[0].weight, state["features.0.weight"])
    assert torch.equal(m.features[2].bias, state["features.2.bias"])
    # Deeper layers than the file holds: a WeightsError that names the missing keys.
    with pytest.raises(WeightsError, match="5.weight"):
        VGGFeatures(["conv2_1"], weights="imagenet")


def test_auto_picks_random_then_imagenet(hub):
    with pytest.warns(UserWarning, match="random weights"):
        m = VGGFeatures(["conv1_1"], weights="auto", seed=5)
    assert m.backbone == "vgg19-random(seed=5)"
    state = _fake_vgg19_file(hub / VGG19_FILE, n_convs=1)
    m = VGGFeatures(["conv1_1"], weights="auto")
    assert m.backbone == "vgg19-imagenet"
    assert torch.equal(m.features[0].weight, state["features.0.weight"])


def test_path_to_pth_bare_features_dict_and_bad_files(tmp_path):
    g = torch.Generator().manual_seed(0)
    bare = {"0.weight": torch.randn(64, 3, 3, 3, generator=g), "0.bias": torch.randn(64, generator=g)}
    torch.save(bare, tmp_path / "mine.pth")
    m = VGGFeatures(["relu1_1"], weights=tmp_path / "mine.pth")
    assert torch.equal(m.features[0].weight, bare["0.weight"])
    assert m.backbone == "vgg19-file(mine.pth)"
    torch.save({"0.weight": torch.zeros(32, 3, 3, 3), "0.bias": torch.zeros(32)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="shape"):
        VGGFeatures(["conv1_1"], weights=tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        VGGFeatures(["conv1_1"], weights=tmp_path / "junk.pth")
    with pytest.raises(BackboneUnavailableError):
        VGGFeatures(["conv1_1"], weights=tmp_path / "absent.pth")


def test_frozen_eval_and_gradient_reaches_input():
    m = VGGFeatures(["conv2_2"], weights="random")
    assert all(not p.requires_grad for p in m.parameters())
    m.train()
    assert not m.training
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    m(x)["conv2_2"].pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    trainable = VGGFeatures(["conv1_1"], weights="random", requires_grad=True)
    assert all(p.requires_grad for p in trainable.parameters())


def test_input_normalisation_is_imagenet_mean_std():
    x = torch.rand(2, 3, 6, 6)
    a = VGGFeatures(["conv1_1"], weights="random", normalize_input=True)(x)["conv1_1"]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    b = VGGFeatures(["conv1_1"], weights="random", normalize_input=False)((x - mean) / std)["conv1_1"]
    assert torch.allclose(a, b, atol=1e-6)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="conv5_5"):
        VGGFeatures(["conv5_5"], weights="random")
    with pytest.raises(ValueError, match="weights="):
        VGGFeatures(["conv1_1"], weights="imagenett")
    m = VGGFeatures(["conv1_1"], weights="random")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        m(torch.rand(1, 1, 8, 8))
    assert m(torch.rand(3, 8, 8))["conv1_1"].shape == (1, 64, 8, 8)


def test_backbone_status_reports_cache(hub):
    st = backbone_status()
    assert set(st) == {"vgg19", "alexnet"}
    assert st["vgg19"]["cached"] is False and st["vgg19"]["path"] == str(hub / VGG19_FILE)
    assert st["vgg19"]["url"] == VGG19_URL and st["alexnet"]["file"].startswith("alexnet")
    _fake_vgg19_file(hub / VGG19_FILE, n_convs=1)
    assert backbone_status()["vgg19"]["cached"] is True


def test_forward_equals_torchvision_features_with_same_weights():
    ours = VGGFeatures(["conv2_2", "relu2_2"], weights="random", seed=1, normalize_input=False)
    with torch.device("meta"):
        tv = torchvision.models.vgg19(weights=None).features
    tv = tv.to_empty(device="cpu")[:9]
    tv.load_state_dict(ours.features.state_dict())
    x = torch.rand(1, 3, 10, 10)
    assert torch.allclose(ours(x)["relu2_2"], tv(x), atol=1e-6)
    assert torch.allclose(ours(x)["conv2_2"], tv[:8](x), atol=1e-6)
