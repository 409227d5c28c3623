"""ODIR-5K loading: labels, the patient-level split, a uint8 image cache, augmentation.

The cache holds every image once, already fundus-cropped and resized with the same
functions inference uses (:mod:`ml.preprocess`), as one .npy in ``ml/.cache/`` (git-
ignored; the images themselves never enter the repository).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ml import CLASSES
from ml.preprocess import (
    InputSpec,
    crop_fundus,
    decode_image,
    normalize,
    resize_square,
    to_branch_rgb,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPLIT = REPO_ROOT / "ml" / "configs" / "split_odir5k.csv"
CACHE_DIR = REPO_ROOT / "ml" / ".cache"


def default_odir_dir() -> Path:
    """``$ODIR_DIR`` or ``../shared/data/odir5k`` beside the repository."""
    env = os.environ.get("ODIR_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "odir5k"


@dataclass
class Records:
    filenames: list[str]
    patient_ids: list[str]
    eye_labels: np.ndarray  # (n, 8) float32, eye_N..eye_O
    patient_labels: np.ndarray  # (n, 8) float32, patient_N..patient_O (the official ones)

    def subset(self, idx: np.ndarray) -> Records:
        return Records(
            [self.filenames[i] for i in idx],
            [self.patient_ids[i] for i in idx],
            self.eye_labels[idx],
            self.patient_labels[idx],
        )


def read_labels(path: str | Path) -> Records:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return Records(
        [r["filename"] for r in rows],
        [str(r["patient_id"]) for r in rows],
        np.array([[float(r[f"eye_{c}"]) for c in CLASSES] for r in rows], dtype=np.float32),
        np.array([[float(r[f"patient_{c}"]) for c in CLASSES] for r in rows], dtype=np.float32),
    )


def make_split(
    records: Records,
    *,
    val_fraction: float = 0.2,
    calib_fraction: float = 0.125,
    seed: int = 20240611,
) -> dict[str, str]:
    """Patient -> "train" | "calib" | "val", never splitting a patient's two eyes.

    Stratified on each patient's rarest positive class so that the small classes
    (H, A, M, C, G: ~170-260 eyes each) land in each part in proportion. "val" is what
    results are reported on; "calib" is held out of training for everything that is
    chosen on data (the checkpoint, the probability calibration, the thresholds), so the
    reported numbers never saw the choices made on them. The validation patients are
    the same as in the two-way split of earlier bundles (same seed, same order).
    """
    freq = records.patient_labels.sum(axis=0)
    key_of: dict[str, int] = {}
    for pid, lab in zip(records.patient_ids, records.patient_labels, strict=True):
        pos = np.flatnonzero(lab)
        key_of[pid] = int(pos[np.argmin(freq[pos])]) if len(pos) else -1
    rng = np.random.default_rng(seed)
    split: dict[str, str] = {}
    for key in sorted(set(key_of.values())):
        pids = sorted(p for p, k in key_of.items() if k == key)
        rng.shuffle(pids)
        n_val = round(len(pids) * val_fraction)
        n_cal = round(len(pids) * calib_fraction)
        for i, p in enumerate(pids):
            split[p] = "val" if i < n_val else ("calib" if i < n_val + n_cal else "train")
    return split


def write_split(split: dict[str, str], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "split"])
        for pid in sorted(split, key=lambda p: (len(p), p)):
            w.writerow([pid, split[pid]])


def read_split(path: str | Path) -> dict[str, str]:
    with open(path, newline="") as fh:
        return {r["patient_id"]: r["split"] for r in csv.DictReader(fh)}


def load_or_make_split(records: Records, path: str | Path = DEFAULT_SPLIT) -> dict[str, str]:
    path = Path(path)
    if path.is_file():
        split = read_split(path)
        missing = set(records.patient_ids) - set(split)
        if missing:
            raise ValueError(
                f"{len(missing)} patients of the labels are not in the split file {path}"
            )
        return split
    split = make_split(records)
    write_split(split, path)
    return split


def load_image_file(path: str | Path) -> np.ndarray:
    return decode_image(Path(path).read_bytes())


def build_cache(
    odir_dir: Path, records: Records, size: int, cache_dir: Path = CACHE_DIR
) -> np.ndarray:
    """uint8 (n, size, size, 3) RGB, cropped + resized; built once, then memory-mapped."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"odir5k_rgb{size}_{len(records.filenames)}.npy"
    names = cache_dir / f"odir5k_rgb{size}_{len(records.filenames)}.txt"
    if target.is_file() and names.is_file() and names.read_text().split("\n") == records.filenames:
        return np.load(target, mmap_mode="r")
    from tqdm import tqdm

    arr = np.zeros((len(records.filenames), size, size, 3), dtype=np.uint8)
    for i, fn in enumerate(tqdm(records.filenames, desc=f"caching {size}px", mininterval=5)):
        arr[i] = resize_square(crop_fundus(load_image_file(odir_dir / "images" / fn)), size)
    tmp = target.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(target)
    names.write_text("\n".join(records.filenames))
    return np.load(target, mmap_mode="r")


def _geometric(img: np.ndarray, rng: np.random.Generator, cfg: dict) -> np.ndarray:
    size = img.shape[0]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < cfg.get("vflip", 0.5):
        img = img[::-1]
    angle = rng.uniform(-cfg.get("rotate", 15), cfg.get("rotate", 15))
    scale = rng.uniform(1 - cfg.get("scale", 0.1), 1 + cfg.get("scale", 0.1))
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    m[:, 2] += rng.uniform(-cfg.get("shift", 0.05), cfg.get("shift", 0.05), size=2) * size
    img = cv2.warpAffine(
        np.ascontiguousarray(img), m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0
    )
    p_fov = cfg.get("fov", 0.0)
    if p_fov and rng.random() < p_fov:
        # Another camera's field: a smaller circle, or the circle cut at the top and bottom
        # by a wide sensor (the ODIR frames have both).
        if rng.random() < 0.5:
            circle = np.zeros((size, size), np.uint8)
            r = int(size * 0.5 * rng.uniform(0.8, 1.0))
            cv2.circle(circle, (size // 2, size // 2), r, 1, thickness=-1)
            img = img * circle[:, :, None]
        else:
            cut = int(size * rng.uniform(0.04, 0.16))
            img = img.copy()
            img[:cut], img[size - cut :] = 0, 0
    return img


def _photometric(img: np.ndarray, rng: np.random.Generator, cfg: dict) -> np.ndarray:
    lit = img.max(axis=2) > 12
    # Gamma, exposure, contrast and a per-channel gain (a camera's white balance) are one
    # monotone curve per channel: applied as a 256-entry lookup table, not in float.
    v = np.arange(256, dtype=np.float32) / 255
    if cfg.get("gamma"):
        v = v ** np.float32(np.exp(rng.uniform(-cfg["gamma"], cfg["gamma"])))
    b = rng.uniform(-cfg.get("brightness", 0.2), cfg.get("brightness", 0.2))
    c = rng.uniform(1 - cfg.get("contrast", 0.2), 1 + cfg.get("contrast", 0.2))
    gains = 1 + rng.uniform(-cfg.get("color_gain", 0.0), cfg.get("color_gain", 0.0), size=3)
    mean = float(v[img[lit]].mean()) if lit.any() else 0.5
    curve = ((v - mean) * c + mean) * (1 + b)
    luts = np.clip(np.outer(gains, curve) * 255, 0, 255).astype(np.uint8)  # (3, 256)
    out = np.empty_like(img)
    for ch in range(3):
        out[:, :, ch] = luts[ch][img[:, :, ch]]
    sat = cfg.get("saturation", 0.0)
    hue = cfg.get("hue", 0)
    if (sat or hue) and rng.random() < 0.6:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        if hue:
            shift = int(rng.integers(-hue, hue + 1))
            hsv[:, :, 0] = ((hsv[:, :, 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        if sat:
            f = np.float32(rng.uniform(1 - sat, 1 + sat))
            hsv[:, :, 1] = np.clip(hsv[:, :, 1] * f, 0, 255).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    p_vig = cfg.get("vignette", 0.0)
    if p_vig and rng.random() < p_vig:
        size = out.shape[0]
        yy, xx = np.ogrid[0:size, 0:size]
        cy, cx = size / 2 + rng.uniform(-0.1, 0.1, size=2) * size
        r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / (size / 2) ** 2
        fall = (1 - rng.uniform(0.2, 0.6) * np.clip(r2, 0, 1.5)).astype(np.float32)
        out = (out * fall[:, :, None]).astype(np.uint8)
    out[~lit] = 0  # the black margin stays black, as on a real camera
    return out


def _motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hand-held camera moving during the exposure: a line kernel at a random angle."""
    length = max(3, int(round(rng.uniform(3, 9) * img.shape[0] / 448)))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
    line = np.asarray(cv2.warpAffine(kernel, rot, (length, length)), dtype=np.float32)
    return cv2.filter2D(img, -1, line / max(float(line.sum()), 1e-6))


def _sharpen(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A phone's or a camera's own unsharp mask: edges and noise amplified."""
    sigma = rng.uniform(0.8, 2.0) * img.shape[0] / 448
    amount = rng.uniform(0.4, 1.5)
    soft = cv2.GaussianBlur(img, (0, 0), sigma)
    return cv2.addWeighted(img, 1 + amount, soft, -amount, 0)


def _optical(img: np.ndarray, rng: np.random.Generator, cfg: dict) -> np.ndarray:
    size = img.shape[0]
    if rng.random() < cfg.get("blur", 0.0):
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2) * size / 288)
    if rng.random() < cfg.get("motion_blur", 0.0):
        img = _motion_blur(img, rng)
    if rng.random() < cfg.get("sharpen", 0.0):
        img = _sharpen(img, rng)
    if rng.random() < cfg.get("downscale", 0.0):
        small = max(32, int(size * rng.uniform(cfg.get("downscale_min", 0.5), 0.85)))
        img = cv2.resize(
            cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA),
            (size, size),
            interpolation=cv2.INTER_LINEAR,
        )
    if rng.random() < cfg.get("noise", 0.0):
        noise = rng.normal(0, rng.uniform(2, 8), img.shape).astype(np.float32)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    if rng.random() < cfg.get("jpeg", 0.0):
        q = int(rng.integers(int(cfg.get("jpeg_min_quality", 25)), 90))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
        if decoded is not None:
            img = decoded
    return np.ascontiguousarray(img)


def augment(img: np.ndarray, rng: np.random.Generator, cfg: dict) -> np.ndarray:
    """Training augmentation on a cached uint8 RGB square (before the branch transform).

    Geometry (flips, rotation, scale, shift, another camera's field of view), then the
    photometric differences between cameras (gamma, exposure, contrast, colour gain,
    saturation, hue, vignetting), then optics and transport (defocus and motion blur, a
    camera's sharpening, a low-resolution sensor, noise, JPEG recompression). All of it comes before the gray branch's
    equalisation and the colour branch's contrast normalisation, as a real photo would.
    Keys missing from ``cfg`` are off, except the geometric and exposure defaults.
    """
    img = _geometric(img, rng, cfg)
    img = _photometric(img, rng, cfg)
    return _optical(img, rng, cfg)


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    spec: InputSpec,
    *,
    batch_size: int,
    order: np.ndarray,
    start: int = 0,
    aug: dict | None = None,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (batch_index, float32 NCHW, labels) from ``order``, starting at batch ``start``."""
    n_batches = (len(order) + batch_size - 1) // batch_size
    for b in range(start, n_batches):
        idx = order[b * batch_size : (b + 1) * batch_size]
        pics = []
        for i in idx:
            img = np.asarray(images[i])
            if aug is not None and rng is not None:
                img = augment(img, rng, aug)
            pics.append(to_branch_rgb(img, spec))
        yield b, normalize(np.stack(pics), spec.mean, spec.std), labels[idx]
