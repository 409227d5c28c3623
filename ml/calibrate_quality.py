"""Calibrate and check the quality gate: ``python -m ml.calibrate_quality [--odir DIR] [--out JSON]``.

Three sets, all built here so the numbers can be reproduced:

* real: the ODIR-5K images (nearly all gradable): the false-reject rate must be <= 2%;
* degraded: a copy of each sampled real image, degraded one way, each way at a strength
  that makes the photo ungradable: Gaussian blur (sigma 1-2% of the side), dark (x0.10-0.25),
  overexposed (washed out: 255 - (255 - x) * 0.10-0.30, inside the field), off-centre (fundus shifted 30-45% of the frame, or a 45-60%
  window cut from one side), each of which must be caught (>= 95%);
* non-fundus: scikit-image's sample photographs (face, cat, coffee, rocket, documents,
  textures, microscopy, ...), each also as random crops and flips; must be caught (>= 95%).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from ml.data import default_odir_dir, load_image_file
from ml.quality import THRESHOLDS, decide, measure

NON_FUNDUS = [
    "astronaut", "brick", "camera", "chelsea", "checkerboard", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page",
    "rocket", "text", "cell", "stereo_motorcycle", "shepp_logan_phantom", "binary_blobs",
]  # fmt: skip
# Left out on purpose: retina (a fundus) and microaneurysms (a 102 px crop of one).


def _to_rgb_uint8(a: np.ndarray) -> np.ndarray:
    if isinstance(a, tuple):
        a = a[0]
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = (255 * (a - a.min()) / max(1e-9, float(a.max() - a.min()))).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def non_fundus_images(variants: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    import skimage.data as skd

    out: list[tuple[str, np.ndarray]] = []
    for name in NON_FUNDUS:
        img = _to_rgb_uint8(getattr(skd, name)())
        out.append((name, img))
        h, w = img.shape[:2]
        for _ in range(variants):
            f = rng.uniform(0.5, 0.95)
            ch, cw = max(64, int(h * f)), max(64, int(w * f))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            v = img[y : y + ch, x : x + cw]
            if rng.random() < 0.5:
                v = v[:, ::-1]
            if min(v.shape[:2]) < 200:
                v = cv2.resize(v, None, fx=2, fy=2)
            out.append((name, np.ascontiguousarray(v)))
    return out


def degrade(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    side = max(h, w)
    if kind == "blur":
        return cv2.GaussianBlur(img, (0, 0), sigmaX=rng.uniform(0.01, 0.02) * side)
    if kind == "dark":
        return (img.astype(np.float32) * rng.uniform(0.10, 0.25)).astype(np.uint8)
    if kind == "overexposed":
        # Washed out: everything pushed towards white, detail and colour compressed.
        # Only the lit field is washed out: the camera's black margin stays black.
        keep = rng.uniform(0.10, 0.30)
        field = img.max(axis=2, keepdims=True) > 20
        washed = (255 - (255 - img.astype(np.float32)) * keep).astype(np.uint8)
        return np.where(field, washed, img)
    if kind == "off_centre":
        if rng.random() < 0.5:
            # Camera pointed beside the pupil: the round field slides out of the frame.
            ang = rng.uniform(0, 2 * np.pi)
            d = rng.uniform(0.30, 0.45) * side
            m = np.array([[1, 0, d * np.cos(ang)], [0, 1, d * np.sin(ang)]], dtype=np.float32)
            return cv2.warpAffine(img, m, (w, h), borderValue=(0, 0, 0))
        # Zoomed in on one part of the retina: no round edge on most sides.
        f = rng.uniform(0.45, 0.60)
        ch, cw = int(h * f), int(w * f)
        corner = rng.integers(0, 4)
        y = 0 if corner < 2 else h - ch
        x = 0 if corner % 2 == 0 else w - cw
        y = int(np.clip(y + rng.integers(-h // 10, h // 10), 0, h - ch))
        x = int(np.clip(x + rng.integers(-w // 10, w // 10), 0, w - cw))
        return np.ascontiguousarray(cv2.resize(img[y : y + ch, x : x + cw], (w, h)))
    raise ValueError(kind)


DEGRADATIONS = ("blur", "dark", "overexposed", "off_centre")
EXPECTED = {
    "blur": "blurred",
    "dark": "too_dark",
    "overexposed": "overexposed",
    "off_centre": "poor_field",
}


def collect(odir: Path, n_real: int, n_degraded: int, variants: int, seed: int) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    names = sorted(p.name for p in (odir / "images").glob("*.jpg"))
    real_names = (
        names
        if n_real <= 0 or n_real >= len(names)
        else list(rng.choice(names, n_real, replace=False))
    )
    rows: dict[str, list] = {"real": [], "degraded": [], "non_fundus": []}
    deg_names = set(
        rng.choice(real_names, min(n_degraded, len(real_names)), replace=False).tolist()
    )
    for i, fn in enumerate(real_names):
        img = load_image_file(odir / "images" / fn)
        rows["real"].append((fn, measure(img)))
        if fn in deg_names:
            kind = DEGRADATIONS[i % len(DEGRADATIONS)]
            rows["degraded"].append((f"{kind}:{fn}", measure(degrade(img, kind, rng))))
    for name, img in non_fundus_images(variants, rng):
        rows["non_fundus"].append((name, measure(img)))
    return rows


def camera_look(m: dict[str, float]) -> str:
    """A coarse "camera look" from the field's own colour and exposure: ODIR-5K names no camera,
    and the looks are what differs between cameras (pale/bluish optics, dim flashes)."""
    if m["brightness"] < 45:
        return "dark"
    if m["brightness"] > 140:
        return "bright"
    if m["redness"] < 0.45:
        return "pale/bluish"
    return "standard"


def report(rows: dict[str, list], thresholds: dict[str, float] | None = None) -> dict:
    t = thresholds or THRESHOLDS
    out: dict = {}
    real = [(n, decide(m, t)) for n, m in rows["real"]]
    rejected = [(n, [i.code for i in iss]) for n, iss in real if iss]
    out["real"] = {
        "n": len(real),
        "false_reject_rate": len(rejected) / max(1, len(real)),
        "by_look": _by_look(rows["real"], t),
        "reasons": dict(Counter(c for _, cs in rejected for c in cs)),
        "examples": rejected[:15],
    }
    per_kind: dict[str, list[int]] = {}
    right_reason: dict[str, int] = Counter()
    for n, m in rows["degraded"]:
        kind = n.split(":")[0]
        codes = [i.code for i in decide(m, t)]
        per_kind.setdefault(kind, []).append(int(bool(codes)))
        right_reason[kind] += int(EXPECTED[kind] in codes)
    out["degraded"] = {
        k: {
            "n": len(v),
            "caught_rate": float(np.mean(v)),
            "expected_reason_rate": right_reason[k] / len(v),
        }
        for k, v in per_kind.items()
    }
    caught_all = [c for v in per_kind.values() for c in v]
    out["degraded_overall_caught_rate"] = float(np.mean(caught_all)) if caught_all else float("nan")
    nf = [(n, [i.code for i in decide(m, t)]) for n, m in rows["non_fundus"]]
    out["non_fundus"] = {
        "n": len(nf),
        "caught_rate": float(np.mean([bool(c) for _, c in nf])) if nf else float("nan"),
        "as_no_fundus_rate": float(np.mean(["no_fundus" in c for _, c in nf]))
        if nf
        else float("nan"),
        "missed": sorted({n for n, c in nf if not c}),
    }
    out["thresholds"] = t
    return out


def _by_look(real: list, t: dict[str, float]) -> dict[str, dict]:
    looks: dict[str, list[bool]] = {}
    for _, m in real:
        looks.setdefault(camera_look(m), []).append(bool(decide(m, t)))
    return {
        look: {"n": len(v), "false_reject_rate": float(np.mean(v))}
        for look, v in sorted(looks.items())
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--odir", type=Path, default=None, help="ODIR folder (default ../shared/data/odir5k)"
    )
    ap.add_argument("--n-real", type=int, default=0, help="real images to use (0 = all)")
    ap.add_argument("--n-degraded", type=int, default=1200)
    ap.add_argument("--variants", type=int, default=12, help="random crops per non-fundus photo")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("ml/quality_calibration.json"))
    ap.add_argument(
        "--dump", type=Path, default=None, help="also write every image's metrics (JSON)"
    )
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    rows = collect(
        args.odir or default_odir_dir(), args.n_real, args.n_degraded, args.variants, args.seed
    )
    if args.dump:
        args.dump.write_text(json.dumps(rows))
    res = report(rows)
    res["seconds"] = time.monotonic() - t0
    args.out.write_text(json.dumps(res, indent=2))
    print(
        f"real images: {res['real']['n']}, false rejects {100 * res['real']['false_reject_rate']:.2f}% "
        f"{res['real']['reasons']}"
    )
    for look, v in res["real"]["by_look"].items():
        print(f"  look {look:12s} n={v['n']:5d} false rejects {100 * v['false_reject_rate']:.2f}%")
    for k, v in res["degraded"].items():
        print(
            f"degraded {k:12s} n={v['n']:4d} caught {100 * v['caught_rate']:.1f}% "
            f"(with the expected reason {100 * v['expected_reason_rate']:.1f}%)"
        )
    print(f"degraded overall caught {100 * res['degraded_overall_caught_rate']:.1f}%")
    nf = res["non_fundus"]
    print(
        f"non-fundus n={nf['n']} caught {100 * nf['caught_rate']:.1f}% (as no_fundus "
        f"{100 * nf['as_no_fundus_rate']:.1f}%), missed: {nf['missed']}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
