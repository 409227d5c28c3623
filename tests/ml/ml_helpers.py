"""Helpers shared by the ml tests: drawn fundus images, encoding, data locations."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
WEIGHTS_DIR = REPO_ROOT / "ml" / "weights" / "default"


def odir_dir() -> Path:
    """``$ODIR_DIR`` or ``../shared/data/odir5k`` beside the repository (CI has it)."""
    env = os.environ.get("ODIR_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "odir5k"


def synthetic_fundus(
    width: int = 768, height: int = 576, *, seed: int = 0, centre: tuple[float, float] | None = None
) -> np.ndarray:
    """A camera-like frame: black margin, orange-red round field with a radial falloff, a
    bright optic disc, a darker macula, branching vessels and fine texture."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    cx, cy = centre or (width / 2, height / 2)
    r = 0.46 * min(width, height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    d = np.hypot(xx - cx, yy - cy) / r
    field = d <= 1.0
    fall = np.clip(1.0 - 0.45 * d**2, 0, 1)
    base = np.array([205, 95, 40], np.float32)
    img[field] = (base * fall[..., None])[field]
    # Optic disc and macula.
    dx, dy = cx + 0.35 * r, cy - 0.05 * r
    disc = np.exp(-(((xx - dx) ** 2 + (yy - dy) ** 2) / (2 * (0.09 * r) ** 2)))
    img += disc[..., None] * np.array([50, 120, 90], np.float32)
    mac = np.exp(-(((xx - cx + 0.15 * r) ** 2 + (yy - cy) ** 2) / (2 * (0.12 * r) ** 2)))
    img *= 1 - 0.35 * mac[..., None]
    out = np.clip(img, 0, 255).astype(np.uint8)
    # Vessels: random walks out of the disc, thinning with distance.
    for k in range(14):
        ang = 2 * np.pi * k / 14 + rng.normal(0, 0.2)
        x, y = dx, dy
        width_px = 5.0
        for _ in range(60):
            ang += rng.normal(0, 0.12)
            nx, ny = x + np.cos(ang) * r / 45, y + np.sin(ang) * r / 45
            cv2.line(
                out,
                (int(x), int(y)),
                (int(nx), int(ny)),
                (120, 25, 20),
                max(1, int(width_px)),
                cv2.LINE_AA,
            )
            x, y, width_px = nx, ny, width_px * 0.975
    noise = rng.normal(0, 4, out.shape).astype(np.float32)
    out = np.clip(out.astype(np.float32) + noise * field[..., None], 0, 255).astype(np.uint8)
    out[~field] = 0
    return out


def encode(rgb: np.ndarray, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **kw)
    return buf.getvalue()
