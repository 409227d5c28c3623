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
    records: Records, *, val_fraction: float = 0.2, seed: int = 20240611
) -> dict[str, str]:
    """Patient -> "train" | "val", never splitting a patient's two eyes.

    Stratified on each patient's rarest positive class so that the small classes
    (H, A, M, C, G: ~170-260 eyes each) land in validation in proportion.
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
        for i, p in enumerate(pids):
            split[p] = "val" if i < n_val else "train"
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


def augment(img: np.ndarray, rng: np.random.Generator, cfg: dict) -> np.ndarray:
    """Flips, small rotation/scale/shift and brightness/contrast on a uint8 RGB picture.

    Photometric changes come before the gray branch's equalisation, as a real darker or
    flatter photo would.
    """
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
    b = rng.uniform(-cfg.get("brightness", 0.2), cfg.get("brightness", 0.2)) * 255
    c = rng.uniform(1 - cfg.get("contrast", 0.2), 1 + cfg.get("contrast", 0.2))
    f = img.astype(np.float32)
    f = (f - f.mean()) * c + f.mean() + b
    return np.clip(f, 0, 255).astype(np.uint8)


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
            pics.append(to_branch_rgb(img, spec.branch, spec.equalize))
        yield b, normalize(np.stack(pics), spec.mean, spec.std), labels[idx]
