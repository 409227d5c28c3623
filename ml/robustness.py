"""Robustness to other cameras: ``python -m ml.robustness [--weights DIR] [--out ml/reports/robustness.json]``.

Scores the validation eyes (patients never trained on, thresholds never chosen on them)
through ``Ensemble`` at the shipped thresholds, once as they are and once through each of
several degradations that imitate other cameras, phones and transport. Most are *not* in the
training augmentation, in kind or in strength (motion blur, a colour temperature far beyond
the training hue/gain range, unsharp masking, a lighting gradient, heavy JPEG with chroma
subsampling, a sensor far smaller than the training down-scaling), and every one is applied
to the original 448 px JPEG before the model's own cropping and resizing, as a real upload
would be. Reports, per degradation, the normal and diseased eyes flagged and the refer AUC.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ml.calibration import screening_summary
from ml.data import DEFAULT_SPLIT, default_odir_dir, read_labels, read_split
from ml.ensemble import Ensemble
from ml.preprocess import decode_image


def _jpeg(rgb: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return decode_image(buf.getvalue())


def camera_frame(rgb: np.ndarray) -> np.ndarray:
    """The curated crop as a 2,592 x 1,944 fundus-camera frame, JPEG 90."""
    side = 1800
    frame = np.zeros((1944, 2592, 3), np.uint8)
    y0, x0 = (1944 - side) // 2, (2592 - side) // 2
    frame[y0 : y0 + side, x0 : x0 + side] = cv2.resize(
        rgb, (side, side), interpolation=cv2.INTER_CUBIC
    )
    return _jpeg(frame, 90)


def cold_pale(rgb: np.ndarray) -> np.ndarray:
    """A bluish, pale, washed-out camera (the kind issue 17's quality gate met)."""
    f = rgb.astype(np.float32)
    gray = f.mean(axis=2, keepdims=True)
    f = gray + (f - gray) * 0.55  # desaturated
    f = f * np.array([0.82, 0.95, 1.35], np.float32) + 20
    return np.clip(f, 0, 255).astype(np.uint8)


def warm_dark(rgb: np.ndarray) -> np.ndarray:
    """Under-exposed with a deep orange cast (strong gamma, low exposure)."""
    f = (rgb.astype(np.float32) / 255) ** 1.7 * 255 * 0.75
    f = f * np.array([1.1, 0.85, 0.6], np.float32)
    return np.clip(f, 0, 255).astype(np.uint8)


def motion_blur(rgb: np.ndarray) -> np.ndarray:
    """A hand-held phone adaptor: 7 px linear motion blur at 448 px."""
    k = np.zeros((7, 7), np.float32)
    k[3, :] = 1 / 7
    m = cv2.getRotationMatrix2D((3, 3), 30, 1.0)
    rotated = cv2.warpAffine(k, m, (7, 7))
    return cv2.filter2D(rgb, -1, rotated / rotated.sum())


def phone_pipeline(rgb: np.ndarray) -> np.ndarray:
    """Phone processing: unsharp masking, then JPEG 20 with 4:2:0 chroma."""
    blur = cv2.GaussianBlur(rgb, (0, 0), 2.0)
    sharp = cv2.addWeighted(rgb, 1.8, blur, -0.8, 0)
    return _jpeg(sharp, 20, subsampling=2)


def low_resolution(rgb: np.ndarray) -> np.ndarray:
    """A 160 px sensor, up-scaled again by the app."""
    small = cv2.resize(rgb, (160, 160), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, rgb.shape[1::-1], interpolation=cv2.INTER_CUBIC)


def uneven_light(rgb: np.ndarray) -> np.ndarray:
    """Off-axis illumination: one side of the field 55% darker."""
    h, w = rgb.shape[:2]
    ramp = np.linspace(1.0, 0.45, w, dtype=np.float32)[None, :, None]
    return np.clip(rgb * ramp, 0, 255).astype(np.uint8)


def narrow_field(rgb: np.ndarray) -> np.ndarray:
    """A 30-degree camera: only the central 75% of the field, as a round field of its own."""
    h, w = rgb.shape[:2]
    crop = rgb[int(h * 0.125) : int(h * 0.875), int(w * 0.125) : int(w * 0.875)].copy()
    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.circle(mask, (crop.shape[1] // 2, crop.shape[0] // 2), crop.shape[0] // 2, 1, -1)
    return crop * mask[:, :, None]


def chromatic_aberration(rgb: np.ndarray) -> np.ndarray:
    """A cheap lens: red and blue focused 2 px apart from green (lateral chromatic aberration)."""
    out = rgb.copy()
    h, w = rgb.shape[:2]
    for ch, shift in ((0, 2), (2, -2)):
        m = np.array([[1, 0, shift], [0, 1, shift / 2]], dtype=np.float32)
        out[:, :, ch] = cv2.warpAffine(rgb[:, :, ch], m, (w, h), borderValue=0)
    return out


def barrel_distortion(rgb: np.ndarray) -> np.ndarray:
    """A phone adaptor's wide lens: radial barrel distortion (k1 -0.25 at the field's edge)."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    nx, ny = (xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)
    r2 = nx * nx + ny * ny
    f = 1 + 0.25 * r2  # sample further out: the centre is magnified, the edge compressed
    map_x = nx * f * (w / 2) + w / 2
    map_y = ny * f * (h / 2) + h / 2
    return cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def messenger_forward(rgb: np.ndarray) -> np.ndarray:
    """A photo sent on through a messaging app twice: 1,280 px frame, JPEG 45, then 800 px, JPEG 40."""
    h, w = rgb.shape[:2]
    frame = np.zeros((960, 1280, 3), np.uint8)
    frame[20:940, 180:1100] = cv2.resize(rgb, (920, 920), interpolation=cv2.INTER_CUBIC)
    once = _jpeg(frame, 45)
    return _jpeg(cv2.resize(once, (800, 600), interpolation=cv2.INTER_AREA), 40)


# Since the lite0_color_448_robust fine-tune, the training augmentation has motion blur (3-9 px),
# unsharp masking, down-scaling to 35% and JPEG down to quality 15: the checks below from
# "motion_blur" to "low_resolution_160px" are now at the edge of the training range, not
# outside it. The last three kinds (lens colour fringes, lens distortion, double transport) are
# in no training augmentation.
DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "camera_frame_2592x1944": camera_frame,
    "cold_pale_colour": cold_pale,
    "warm_dark_exposure": warm_dark,
    "motion_blur": motion_blur,
    "phone_sharpen_jpeg20": phone_pipeline,
    "low_resolution_160px": low_resolution,
    "uneven_illumination": uneven_light,
    "narrow_field_30deg": narrow_field,
    "chromatic_aberration": chromatic_aberration,
    "barrel_distortion": barrel_distortion,
    "messenger_forwarded_twice": messenger_forward,
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", type=Path, default=Path("ml/weights/default"))
    ap.add_argument("--limit", type=int, default=0, help="first N validation eyes only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--only", nargs="+", default=None, help="these degradations only (and the clean images)"
    )
    ap.add_argument("--out", type=Path, default=Path("ml/reports/robustness.json"))
    ap.add_argument("--examples", type=Path, default=Path("ml/reports/robustness_examples.jpg"))
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    ens = Ensemble.load(args.weights, threads=args.threads)
    odir = default_odir_dir()
    rec = read_labels(odir / "labels.csv")
    split = read_split(DEFAULT_SPLIT)
    rec = rec.subset(np.array([i for i, p in enumerate(rec.patient_ids) if split[p] == "val"]))
    if args.limit:
        rec = rec.subset(np.arange(min(args.limit, len(rec.filenames))))
    originals = [decode_image((odir / "images" / f).read_bytes()) for f in rec.filenames]
    results: dict[str, dict] = {}
    examples = []
    chosen = {k: v for k, v in DEGRADATIONS.items() if not args.only or k in args.only}
    for name, fn in {"clean": lambda x: x, **chosen}.items():
        probs = []
        for i in range(0, len(originals), 64):
            pics = [fn(im) for im in originals[i : i + 64]]
            if i == 0:
                examples.append(cv2.resize(pics[1], (224, 224), interpolation=cv2.INTER_AREA))
            probs.append(ens.ensemble_probabilities(ens.branch_probabilities(pics)))
        q = np.concatenate(probs)
        results[name] = screening_summary(q, rec.eye_labels, rec.patient_ids, ens.decision)
        r = results[name]
        print(
            f"{name:24s} normal flagged {r['normal_eyes_flagged']:.3f}  diseased flagged "
            f"{r['diseased_eyes_flagged']:.3f}  refer AUC {r['refer_auc_eye']:.3f}",
            flush=True,
        )
    report = {
        "weights": str(args.weights),
        "model_version": ens.version,
        "eyes": len(rec.filenames),
        "machine_load_at_end": os.getloadavg()[0],
        "seconds": time.monotonic() - t0,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    strip = np.concatenate(examples, axis=1)
    cv2.imwrite(str(args.examples), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} and {args.examples}")


if __name__ == "__main__":
    main()
