"""Heatmaps without a backward pass: the class activation map equals Grad-CAM at the last
feature map, for every class, on the shipped colour branch's architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.gradcam import class_activation_maps, gradcam, overlay_png
from ml.model import create_model


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = create_model(pretrained=False).eval()
    # A trained-looking head: random rows with both signs, so ReLU matters.
    with torch.no_grad():
        m.classifier.weight.normal_(0, 0.05)
    return m


def test_cam_from_the_feature_map_equals_autograd_grad_cam(model: torch.nn.Module) -> None:
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 3, 256, 256)).astype(np.float32))
    with torch.inference_mode():
        feats = model.forward_features(x).numpy()
    w = model.classifier.weight.detach().numpy()
    for classes in ([0, 1, 2], [7, 3, 5]):
        reference = gradcam(model, x, classes)
        fast = class_activation_maps(feats, w, classes)
        assert fast.shape == reference.shape == (3, 8, 8)
        assert np.allclose(fast, reference, atol=1e-4)
        assert fast.min() >= 0 and fast.max() <= 1


def test_overlay_is_a_png_of_the_fundus(model: torch.nn.Module) -> None:
    cam = np.zeros((10, 10), np.float32)
    cam[2, 7] = 1
    png = overlay_png(np.full((320, 320, 3), 120, np.uint8), cam)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
