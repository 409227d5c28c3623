"""Heatmaps for the timm EfficientNet: class activation maps, and their PNG overlay.

The network ends in its last feature map F (after ``conv_head``/``bn2``, 10x10 at 320 px),
global average pooling and one linear layer, so the logit of class c is
``z_c = sum_k w_ck * mean(F_k) + b_c``. Grad-CAM (Selvaraju et al. 2017) weights F_k by the
spatially averaged gradient of z_c, which is exactly ``w_ck / (h * w)``: Grad-CAM at this
layer *is* the class activation map (Zhou et al. 2016), ``ReLU(sum_k w_ck F_k)``, up to a
positive factor that the [0, 1] normalisation removes. :func:`class_activation_maps` needs
no backward pass, only the feature map the runtime already computed and a small matrix
product; :func:`gradcam` is the autograd version, kept as the reference the tests compare
against.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn


def gradcam(model: nn.Module, x: torch.Tensor, class_idx: Sequence[int]) -> np.ndarray:
    """(N, 3, H, W) input, one class per image -> (N, h, w) maps in [0, 1]."""
    model.eval()
    with torch.enable_grad():
        feats = model.forward_features(x)
        logits = model.forward_head(feats)
        # Summing the chosen logits keeps one backward pass for the whole batch; samples do
        # not interact in eval mode (BatchNorm uses running statistics).
        target = logits[torch.arange(len(class_idx)), torch.as_tensor(list(class_idx))].sum()
        (grads,) = torch.autograd.grad(target, feats)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * feats).sum(dim=1)).detach().float().cpu().numpy()
    return _unit_range(cam)


def _unit_range(cam: np.ndarray) -> np.ndarray:
    flat = cam.reshape(len(cam), -1)
    lo, hi = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
    return ((flat - lo) / np.maximum(hi - lo, 1e-8)).reshape(cam.shape).astype(np.float32)


def class_activation_maps(
    features: np.ndarray, classifier_weight: np.ndarray, class_idx: Sequence[int]
) -> np.ndarray:
    """(N, C, h, w) last feature maps, (classes, C) classifier rows -> (N, h, w) in [0, 1]."""
    w = classifier_weight[np.asarray(list(class_idx))]  # (N, C)
    cam = np.einsum("nc,nchw->nhw", w.astype(np.float32), features.astype(np.float32))
    return _unit_range(np.maximum(cam, 0.0))


def overlay_png(rgb: np.ndarray, cam: np.ndarray, *, side: int = 320, alpha: float = 0.45) -> bytes:
    """Blend a JET-coloured map over the (cropped, square) fundus picture; PNG bytes."""
    base = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    heat = cv2.resize(cam.astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
    heat_u8 = np.clip(heat * 255, 0, 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(heat_u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    # Only colour the fundus itself: the black margin stays black and readable.
    field = (base.max(axis=2) > 20)[:, :, None]
    blend = np.where(field, (1 - alpha) * base + alpha * colour, base).astype(np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(blend, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
