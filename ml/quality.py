"""Gradeability gate: cheap checks (< 50 ms on CPU) run inside the upload request.

Works on the decoded, *uncropped* RGB image. Everything is measured on a copy whose
longest side is 256 px, so the cost does not grow with the camera's resolution.
The thresholds were calibrated by ``python -m ml.calibrate_quality`` on the ODIR-5K
images, degraded copies of them and non-fundus photographs (see ml/MODEL_CARD.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

WORK_SIDE = 256

# Calibrated thresholds (ml/calibrate_quality.py writes the evidence beside the run).
THRESHOLDS: dict[str, float] = {
    "min_fundus_fraction": 0.20,  # bright blob / frame area
    "min_redness": 0.36,  # mean R / (R + G + B) inside the blob: fundus is orange-red
    "min_chroma": 0.25,  # mean |R - B| / brightness inside the blob: rejects gray documents
    # Inside a clean camera aperture (a centred circle to within a few per cent) the colour only
    # has to be "not gray": pale, bluish cameras fall below the orange-red bars above.
    "min_redness_aperture": 0.33,
    "min_chroma_aperture": 0.09,
    "max_aperture_residual": 0.04,
    "max_brightness_aperture": 190.0,  # brighter and pale is a washed-out photo, not a pale camera
    "min_disc_fill": 0.85,  # blob area / its fitted circle's area (face, scene: no circle)
    "max_edge_fraction": 0.75,  # blob boundary lying on the frame edge (no black margin)
    "max_centre_offset": 0.15,  # fitted circle centre distance from the frame centre / radius
    "max_circle_residual": 0.12,  # median distance of the aperture edge from its circle / radius
    "min_sharpness": 0.45,  # fine / coarse detail of the green channel at a fixed scale
    "min_brightness": 33.0,  # mean luma inside the blob
    "max_brightness": 200.0,
    "max_saturated_fraction": 0.25,  # pixels with all channels > 245, inside the blob
    "min_side": 128.0,
}

MESSAGES: dict[str, str] = {
    "no_fundus": "no_fundus: this does not look like a fundus photograph; photograph the back of the eye "
    "through the pupil with the fundus camera or adaptor",
    "blurred": "blurred: hold the camera still, refocus on the optic disc and retake",
    "too_dark": "too_dark: the photo is too dark; increase the flash or illumination, dilate the pupil if "
    "allowed, and retake",
    "overexposed": "overexposed: the photo is washed out; reduce the flash or illumination and retake",
    "poor_field": "poor_field: the fundus is off-centre or cut off; centre the pupil so the whole round "
    "field is in the frame and retake",
    "too_small": "too_small: the image resolution is too low; send the original photo, not a thumbnail",
}


@dataclass(frozen=True)
class QualityIssue:
    code: str
    message: str


@dataclass(frozen=True)
class QualityResult:
    gradable: bool
    issues: tuple[QualityIssue, ...]
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "gradable": self.gradable,
            "issues": [asdict(i) for i in self.issues],
            "metrics": {k: float(v) for k, v in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> QualityResult:
        """The inverse of :meth:`to_dict`: the upload's result, carried to the worker."""
        return cls(
            gradable=bool(data["gradable"]),
            issues=tuple(QualityIssue(i["code"], i["message"]) for i in data.get("issues", [])),
            metrics={k: float(v) for k, v in data.get("metrics", {}).items()},
        )


def _fit_circle(points: np.ndarray) -> tuple[float, float, float] | None:
    """Least-squares (Kasa) circle through boundary points: (cx, cy, r)."""
    if len(points) < 12:
        return None
    x = points[:, 0].astype(np.float64)
    y = points[:, 1].astype(np.float64)
    a = np.column_stack([x, y, np.ones_like(x)])
    b = x * x + y * y
    try:
        sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    except np.linalg.LinAlgError:
        return None
    cx, cy = sol[0] / 2, sol[1] / 2
    r2 = sol[2] + cx * cx + cy * cy
    if r2 <= 0:
        return None
    return float(cx), float(cy), float(np.sqrt(r2))


def measure(rgb: np.ndarray) -> dict[str, float]:
    """All gate metrics for one RGB uint8 image (no decisions)."""
    h0, w0 = rgb.shape[:2]
    scale = WORK_SIDE / max(h0, w0)
    small = cv2.resize(
        rgb, (max(1, round(w0 * scale)), max(1, round(h0 * scale))), interpolation=cv2.INTER_AREA
    )
    h, w = small.shape[:2]
    m: dict[str, float] = {"min_side": float(min(h0, w0))}

    bright = small.max(axis=2)
    # The black margin is ~0-10; a dim fundus may itself peak at ~25, so the cut between
    # field and margin follows the image's own brightness instead of a fixed 20.
    cut = float(np.clip(0.25 * np.percentile(bright, 99), 8, 20))
    mask = (bright > cut).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        m.update(
            fundus_fraction=0.0,
            redness=0.0,
            chroma=0.0,
            disc_fill=0.0,
            edge_fraction=1.0,
            circle_residual=1.0,
            centre_offset=1.0,
            sharpness=0.0,
            brightness=float(small.mean()),
            saturated_fraction=0.0,
        )
        return m
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    blob = labels == best
    area = float(blob.sum())
    m["fundus_fraction"] = area / (h * w)

    px = small[blob].astype(np.float32)
    r, g, b = px[:, 0].mean(), px[:, 1].mean(), px[:, 2].mean()
    m["redness"] = float(r / max(1.0, r + g + b))
    luma = 0.299 * px[:, 0] + 0.587 * px[:, 1] + 0.114 * px[:, 2]
    m["brightness"] = float(luma.mean())
    # Red-blue separation relative to brightness, so a dim fundus keeps its colour score.
    m["chroma"] = float(np.abs(px[:, 0] - px[:, 2]).mean() / max(20.0, m["brightness"]))
    m["saturated_fraction"] = float((px.min(axis=1) > 245).mean())

    # Field: fit a circle to the blob's boundary where it is NOT the frame edge, i.e. the
    # camera's round aperture; a frame filled edge to edge has no such boundary.
    contours, _ = cv2.findContours(blob.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = (
        np.concatenate([c.reshape(-1, 2) for c in contours]) if contours else np.zeros((0, 2), int)
    )
    on_edge = (pts[:, 0] <= 1) | (pts[:, 1] <= 1) | (pts[:, 0] >= w - 2) | (pts[:, 1] >= h - 2)
    m["edge_fraction"] = float(on_edge.mean()) if len(pts) else 1.0
    circle = _fit_circle(pts[~on_edge])
    if circle is None or circle[2] < 0.15 * min(h, w) or circle[2] > 2.0 * max(h, w):
        m["disc_fill"] = 0.0
        m["centre_offset"] = 1.0
        m["circle_residual"] = 1.0
    else:
        cx, cy, rad = circle
        free = pts[~on_edge].astype(np.float64)
        # How round the aperture edge is: a camera's field stop is a circle to within a
        # pixel or two; the outline of a face or an object on a dark background is not.
        m["circle_residual"] = float(
            np.median(np.abs(np.hypot(free[:, 0] - cx, free[:, 1] - cy) - rad)) / rad
        )
        m["disc_fill"] = float(min(1.0, area / (np.pi * rad * rad)))
        m["centre_offset"] = float(np.hypot(cx - w / 2, cy - h / 2) / rad)

    # Focus: gradient energy of the green channel (best vessel contrast) inside an eroded
    # blob, measured after resizing the blob's bounding box to a fixed 256 px so that the
    # number does not depend on the camera resolution or on how much black margin it has.
    x, y, bw, bh = stats[best, :4]
    green = rgb[..., 1]
    x0, y0 = int(x / scale), int(y / scale)
    x1, y1 = int(np.ceil((x + bw) / scale)), int(np.ceil((y + bh) / scale))
    crop = cv2.resize(green[y0:y1, x0:x1], (256, 256), interpolation=cv2.INTER_AREA).astype(
        np.float32
    )
    inner = cv2.resize(
        blob[y : y + bh, x : x + bw].astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST
    )
    inner = cv2.erode(inner, np.ones((15, 15), np.uint8)).astype(bool)
    if inner.sum() < 100:
        m["sharpness"] = 0.0
    else:
        # Fine detail (vessel edges, nerve-fibre texture) relative to coarse detail (disc,
        # large vessels). Blur removes the first far more than the second, while a hazy
        # but sharp photo (cataract) loses both alike, so the ratio separates the two much
        # better than raw Laplacian energy does (calibration: ml/calibrate_quality.py).
        s2 = cv2.GaussianBlur(crop, (0, 0), 2)
        s6 = cv2.GaussianBlur(crop, (0, 0), 6)
        fine = float(np.abs(crop - s2)[inner].mean())
        coarse = float(np.abs(s2 - s6)[inner].mean())
        m["sharpness"] = fine / max(1e-3, coarse)
    return m


def decide(m: dict[str, float], t: dict[str, float] | None = None) -> tuple[QualityIssue, ...]:
    """Turn metrics into issues; the order of the checks decides which reason is given."""
    t = THRESHOLDS if t is None else t
    codes: list[str] = []
    if m["min_side"] < t["min_side"]:
        codes.append("too_small")
    round_field = (
        m["disc_fill"] >= t["min_disc_fill"] and m["edge_fraction"] <= t["max_edge_fraction"]
    )
    washed_out = (
        m["brightness"] > t["max_brightness"]
        or m["saturated_fraction"] > t["max_saturated_fraction"]
    )
    clean_aperture = (
        m["disc_fill"] >= 0.9
        and m["circle_residual"] <= t["max_aperture_residual"]
        and m["centre_offset"] <= t["max_centre_offset"]
        and m["brightness"] <= t["max_brightness_aperture"]
    )
    fundus_colour = (m["redness"] >= t["min_redness"] and m["chroma"] >= t["min_chroma"]) or (
        clean_aperture
        and m["redness"] >= t["min_redness_aperture"]
        and m["chroma"] >= t["min_chroma_aperture"]
    )
    # A frame lit edge to edge with no round aperture anywhere: a scene, a face or a
    # document, unless it is strongly fundus-coloured (a photo zoomed into the retina).
    filled_frame = (m["edge_fraction"] > 0.85 and m["disc_fill"] < t["min_disc_fill"]) or m[
        "circle_residual"
    ] > t["max_circle_residual"]
    strongly_fundus = m["redness"] >= 0.45 and m["chroma"] >= 0.5
    # Lit edge to edge around a whole round shape far off-centre: an object in a scene (a coffee
    # cup). A fundus shifted in the frame is cut by the frame edge, so its circle is not filled.
    scene_off_centre = (
        m["edge_fraction"] > 0.85
        and m["disc_fill"] >= t["min_disc_fill"]
        and 0.25 < m["centre_offset"] < 1.0
    )
    if washed_out and round_field:
        # Over-exposure bleaches the colour, so the colour test must not run first.
        codes.append("overexposed")
    elif (
        m["fundus_fraction"] < t["min_fundus_fraction"]
        or not fundus_colour
        or (filled_frame and not strongly_fundus)
        or scene_off_centre
    ):
        codes.append("no_fundus")
    else:
        if m["brightness"] < t["min_brightness"]:
            codes.append("too_dark")
        elif washed_out:
            codes.append("overexposed")
        if (
            m["edge_fraction"] > t["max_edge_fraction"]
            or m["centre_offset"] > t["max_centre_offset"]
            or m["disc_fill"] < t["min_disc_fill"]
        ):
            codes.append("poor_field")
        if m["sharpness"] < t["min_sharpness"] and "too_dark" not in codes:
            codes.append("blurred")
    return tuple(QualityIssue(c, MESSAGES[c]) for c in codes)


def assess_quality(rgb: np.ndarray) -> QualityResult:
    """Is this photo gradable? Reasons a health worker can act on if not."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("assess_quality expects an RGB uint8 array of shape (H, W, 3)")
    m = measure(rgb)
    issues = decide(m)
    return QualityResult(gradable=not issues, issues=issues, metrics=m)
