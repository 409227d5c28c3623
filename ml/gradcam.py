"""Grad-CAM (Selvaraju et al. 2017) for the timm EfficientNet, and its PNG overlay.

Own implementation: the network's last feature map (after ``conv_head``/``bn2``, 7x7 at
224 px) weighted by the spatially averaged gradient of the chosen logit. It needs
gradients, so it runs outside ``torch.inference_mode()``, on the colour branch only.
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
        feats = model.forward_features(x)  # type: ignore[operator]
        logits = model.forward_head(feats)  # type: ignore[operator]
        # Summing the chosen logits keeps one backward pass for the whole batch; samples do
        # not interact in eval mode (BatchNorm uses running statistics).
        target = logits[torch.arange(len(class_idx)), torch.as_tensor(list(class_idx))].sum()
        (grads,) = torch.autograd.grad(target, feats)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * feats).sum(dim=1)).detach()
    flat = cam.flatten(1)
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    cam = ((flat - lo) / (hi - lo).clamp_min(1e-8)).view_as(cam)
    return cam.numpy()


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
