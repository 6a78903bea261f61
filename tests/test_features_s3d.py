"""S3D: torchvision's exact state-dict layout, strict loading, the 1024-d embedding."""

import pytest
import torch
from safetensors.torch import save_file

from videobert.features import S3D
from videobert.features.s3d import NUM_PARAMETERS

# Shapes from torchvision.models.video.s3d (module path -> weight shape), spot-checking every level
# of nesting: stem separable conv, plain conv, inception branches, the classifier.
TORCHVISION_SHAPES = {
    "features.0.0.0.weight": (64, 3, 1, 7, 7),
    "features.0.1.0.weight": (64, 64, 7, 1, 1),
    "features.0.1.1.running_var": (64,),
    "features.2.0.weight": (64, 64, 1, 1, 1),
    "features.3.0.0.weight": (192, 64, 1, 3, 3),
    "features.5.branch0.0.weight": (64, 192, 1, 1, 1),
    "features.5.branch1.1.0.0.weight": (128, 96, 1, 3, 3),
    "features.5.branch2.1.1.0.weight": (32, 32, 3, 1, 1),
    "features.5.branch3.1.0.weight": (32, 192, 1, 1, 1),
    "features.15.branch3.1.1.num_batches_tracked": (),
    "features.15.branch1.1.1.1.bias": (384,),
    "classifier.1.weight": (400, 1024, 1, 1, 1),
    "classifier.1.bias": (400,),
}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = S3D().eval()
    for module in m.modules():  # non-trivial BatchNorm statistics, so loading must carry them
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return m


def test_parameter_count_and_layout(model):
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMETERS == 8_320_048
    state = model.state_dict()
    assert len(state) == 464  # 77 convs without bias + 77 BatchNorms x 5 + classifier weight and bias
    for key, shape in TORCHVISION_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    convs = [m for m in model.features.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(convs) == 77 and all(c.bias is None for c in convs)
    bn = model.features[0][0][1]
    assert (bn.eps, bn.momentum) == (0.001, 0.001)


def test_embed_is_the_mean_of_the_last_block(model):
    clips = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        features = model.embed(clips)
        direct = model.features(clips).mean(dim=(2, 3, 4))
    assert features.shape == (2, 1024)
    torch.testing.assert_close(features, direct, atol=1e-5, rtol=1e-4)  # embed runs channels_last_3d: other sum order
    with pytest.raises(ValueError, match=r"clips \[n, 3, T, H, W\]"):
        model.embed(torch.randn(3, 8, 64, 64))


def test_batchnorm_folded_copy_gives_the_same_features_and_logits():
    torch.manual_seed(1)
    model = S3D().eval()
    for module in model.modules():  # every BatchNorm parameter and statistic away from its default
        if isinstance(module, torch.nn.BatchNorm3d):
            for tensor, low, high in ((module.running_mean, -0.2, 0.2), (module.running_var, 0.3, 2.0),
                                      (module.weight.data, 0.5, 1.5), (module.bias.data, -0.2, 0.2)):
                tensor.uniform_(low, high)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = model.with_batchnorm_folded()
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in folded.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched
    clips = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(folded.embed(clips), model.embed(clips), atol=1e-5, rtol=1e-4)
        x = torch.randn(1, 3, 16, 224, 224)
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-4)


def test_forward_gives_kinetics_logits(model):
    with torch.no_grad():
        assert model(torch.randn(1, 3, 16, 224, 224)).shape == (1, 400)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_from_file_round_trip(tmp_path, model, suffix):
    path = tmp_path / f"s3d{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), path)
    else:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded = S3D.from_file(path)
    assert not loaded.training
    clips = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.embed(clips), model.embed(clips))


def test_from_file_rejects_mismatched_files(tmp_path, model):
    state = model.state_dict()
    broken = dict(state)
    broken.pop("features.5.branch0.0.weight")
    broken["features.0.0.0.weight"] = torch.zeros(32, 3, 1, 7, 7)
    broken["head.weight"] = torch.zeros(3)
    torch.save(broken, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad.pth: not a torchvision S3D state dict: 1 missing key\(s\) "
                                         r"\['features.5.branch0.0.weight'\], 1 unexpected key\(s\) \['head.weight'\], "
                                         r"1 shape mismatch"):
        S3D.from_file(tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="junk.pth: cannot read S3D weights"):
        S3D.from_file(tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        S3D.from_file(tmp_path / "missing.pth")


def test_checkpoint_wrapped_state_dict_and_other_class_count(tmp_path):
    model = S3D(num_classes=7)
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    assert S3D.from_file(tmp_path / "ckpt.pth").classifier[1].out_channels == 7
