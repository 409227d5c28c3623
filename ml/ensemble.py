"""The inference API the Celery workers call.

    ens = Ensemble.load("ml/weights/default")          # once per worker process
    preds = ens.predict([left_bytes, right_bytes])     # both branches batched over all eyes

Each branch runs once per batch of eyes, in the runtime the bundle's config names for the
device (``runtime: {cpu: onnx, cuda: torch}``; PyTorch is the fallback everywhere). The
colour branch's run also returns its last feature map, so the heatmaps are class activation
maps made from it with a small matrix product (:mod:`ml.gradcam`), and only for eyes that
have a finding. ``probabilities`` are the branches' mean sigmoid through the bundle's
per-class calibration; ``thresholds`` are the one refer decision's (:mod:`ml.calibration`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from ml import CLASSES
from ml.calibration import Calibration
from ml.decision import Decision, eye_findings, strongest
from ml.gradcam import class_activation_maps, overlay_png
from ml.model import create_model
from ml.preprocess import (
    ImageError,
    InputSpec,
    crop_fundus,
    decode_image,
    normalize,
    resize_square,
    to_branch_rgb,
)
from ml.quality import QualityResult, assess_quality
from ml.runtimes import OnnxRunner, OpenVinoRunner, Runner, TorchRunner

RUNTIMES = ("torch", "onnx", "openvino")


@dataclass
class EyePrediction:
    probabilities: dict[str, float]  # calibrated ensemble probability, by class letter
    branch_probabilities: dict[str, dict[str, float]]  # {"color": {...}, "gray": {...}}
    quality: QualityResult
    model_version: str
    heatmap_png: bytes | None
    top_class: str
    heatmap_class: str | None = None  # the class the heatmap explains
    flagged: tuple[str, ...] = ()  # the findings named (empty: the eye is not flagged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (the heatmap is left out; store it as a file)."""
        return {
            "probabilities": self.probabilities,
            "branch_probabilities": self.branch_probabilities,
            "quality": self.quality.to_dict(),
            "model_version": self.model_version,
            "top_class": self.top_class,
            "heatmap_class": self.heatmap_class,
            "flagged": list(self.flagged),
        }


def _content_version(weights_dir: Path, files: Sequence[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        h.update(hashlib.sha256((weights_dir / name).read_bytes()).digest())
    return "lite0-" + h.hexdigest()[:12]


class _Branch:
    def __init__(self, name: str, spec: InputSpec, runner: Runner) -> None:
        self.name, self.spec, self.runner = name, spec, runner

    def run(self, x: np.ndarray, *, features: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Sigmoid probabilities (float64) and, if asked, the last feature map."""
        logits, feats = self.runner.run(x, features=features)
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64))), feats


def _pick_runtime(config: dict, wd: Path, device: torch.device, asked: str) -> str:
    if asked != "auto":
        if asked not in RUNTIMES:
            raise ValueError(f"unknown runtime {asked!r}; one of {RUNTIMES}")
        return asked
    if device.type != "cpu":
        return str((config.get("runtime") or {}).get(device.type, "torch"))
    has_onnx = all("onnx" in b and (wd / b["onnx"]).is_file() for b in config["branches"].values())
    wanted = str((config.get("runtime") or {}).get("cpu", "onnx" if has_onnx else "torch"))
    if wanted == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError:
            wanted = "onnx"  # the bundle's second choice; both read the same ONNX file
    return wanted if has_onnx or wanted == "torch" else "torch"


class Ensemble:
    """Load once per process; ``predict`` is thread-compatible but not re-entrant."""

    version: str
    thresholds: dict[str, float]

    def __init__(
        self,
        weights_dir: Path,
        config: dict,
        branches: dict[str, _Branch],
        cam_branch: str,
        cam_weight: np.ndarray,
        decision: Decision,
        version: str,
        device: torch.device,
        runtime: str,
    ) -> None:
        self.weights_dir = weights_dir
        self.config = config
        self.branches = branches
        self.cam_branch = cam_branch
        self.cam_weight = cam_weight  # (classes, channels) classifier rows of the CAM branch
        self.decision = decision
        self.thresholds = decision.thresholds
        self.version = version
        self.device = device
        self.runtime = runtime
        # Bundles before format 2 have no calibration and no weights: their plain mean
        # sigmoid is used as is.
        self.calibration = Calibration.from_config(config.get("calibration"))
        given = config.get("weights") or {}
        self.weights = {b: float(given.get(b, 1 / len(branches))) for b in branches}

    def ensemble_probabilities(self, branch_probs: Mapping[str, np.ndarray]) -> np.ndarray:
        """(n, 8) calibrated probabilities from the branches' sigmoids: their weighted mean
        (weights from the bundle), then the bundle's per-class calibration (what the
        thresholds were chosen on)."""
        mean = np.sum([self.weights[b] * p for b, p in branch_probs.items()], axis=0)
        return self.calibration.apply(mean)

    @classmethod
    def load(
        cls,
        weights_dir: str | Path,
        device: str = "auto",
        threads: int | None = None,
        *,
        runtime: str = "auto",
    ) -> Ensemble:
        """Read a bundle written by ``python -m ml.export``.

        ``runtime``: "auto" (the bundle's choice for the device, PyTorch where it has
        none), "torch", "onnx" or "openvino". Raises FileNotFoundError naming the path.
        """
        wd = Path(weights_dir)
        cfg_path = wd / "config.yaml"
        if not wd.is_dir():
            raise FileNotFoundError(f"model weights folder not found: {wd.resolve()}")
        if not cfg_path.is_file():
            raise FileNotFoundError(f"model config not found: {cfg_path.resolve()}")
        config = yaml.safe_load(cfg_path.read_text())
        if tuple(config["classes"]) != CLASSES:
            raise ValueError(f"{cfg_path}: class order {config['classes']} != {CLASSES}")
        thr_path = wd / "thresholds.json"
        if not thr_path.is_file():
            raise FileNotFoundError(f"decision thresholds not found: {thr_path.resolve()}")
        decision = Decision.from_json(json.loads(thr_path.read_text()))

        dev = torch.device(
            "cuda"
            if device == "auto" and torch.cuda.is_available()
            else ("cpu" if device == "auto" else device)
        )
        if threads:
            torch.set_num_threads(threads)
        runtime = _pick_runtime(config, wd, dev, runtime)

        files = ["config.yaml", "thresholds.json"]
        branches: dict[str, _Branch] = {}
        cam_branch, cam_weight = "", np.zeros((0, 0), np.float32)
        for name, b in config["branches"].items():
            i = b["input"]
            spec = InputSpec(
                branch=name,
                size=int(i["size"]),
                mean=tuple(i["mean"]),
                std=tuple(i["std"]),
                equalize=i.get("equalize", "hist"),
                contrast=i.get("contrast", "none"),
                field_mask=bool(i.get("field_mask", False)),
            )
            wpath = wd / b["weights"]
            if not wpath.is_file():
                raise FileNotFoundError(f"branch weights not found: {wpath.resolve()}")
            files.append(b["weights"])
            onnx_path = wd / b["onnx"] if "onnx" in b else None
            if onnx_path is not None and onnx_path.is_file():
                # Hash every file of the bundle whichever runtime runs it, so the version
                # names the bundle rather than the way this process happens to use it.
                files.append(b["onnx"])
            state = {k: v.float() for k, v in load_file(str(wpath)).items()}
            runner: Runner
            if runtime == "torch":
                model = create_model(b["arch"], pretrained=False)
                model.load_state_dict(state)
                runner = TorchRunner(model, dev)
            elif onnx_path is None or not onnx_path.is_file():
                raise FileNotFoundError(
                    f"{wd}: runtime {runtime!r} asked for but the bundle has no ONNX file for {name}"
                )
            elif runtime == "openvino":
                runner = OpenVinoRunner(onnx_path, threads)
            else:
                runner = OnnxRunner(onnx_path, threads)
            branches[name] = _Branch(name, spec, runner)
            if (name == "color" or not cam_branch) and runner.has_features:
                cam_branch, cam_weight = name, state["classifier.weight"].numpy()
        version = _content_version(wd, files)
        return cls(wd, config, branches, cam_branch, cam_weight, decision, version, dev, runtime)

    def _as_rgb(self, item: bytes | np.ndarray) -> np.ndarray:
        if isinstance(item, (bytes, bytearray, memoryview)):
            return decode_image(bytes(item))
        arr = np.asarray(item)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ImageError("unsupported_mode", "Arrays must be RGB uint8 with shape (H, W, 3).")
        return arr

    def _run_branches(
        self, crops: Sequence[np.ndarray], *, features: bool, batch_size: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        resized: dict[int, list[np.ndarray]] = {}
        out: dict[str, np.ndarray] = {}
        feats: np.ndarray | None = None
        for name, br in self.branches.items():
            s = br.spec
            if s.size not in resized:
                resized[s.size] = [resize_square(c, s.size) for c in crops]
            pics = np.stack([to_branch_rgb(r, s) for r in resized[s.size]])
            want = features and name == self.cam_branch
            parts, fparts = [], []
            for i in range(0, len(pics), batch_size):
                p, f = br.run(normalize(pics[i : i + batch_size], s.mean, s.std), features=want)
                parts.append(p)
                if f is not None:
                    fparts.append(f)
            out[name] = np.concatenate(parts)
            if fparts:
                feats = np.concatenate(fparts)
        return out, feats

    def branch_probabilities(
        self, rgbs: Sequence[np.ndarray], *, cropped: bool = False, batch_size: int = 32
    ) -> dict[str, np.ndarray]:
        """(n, 8) sigmoid outputs per branch for decoded RGB images (evaluation uses this)."""
        crops = list(rgbs) if cropped else [crop_fundus(im) for im in rgbs]
        return self._run_branches(crops, features=False, batch_size=batch_size)[0]

    def predict(
        self,
        images: Sequence[bytes | np.ndarray],
        *,
        heatmaps: bool = True,
        quality: Sequence[QualityResult | None] | None = None,
        thresholds: Sequence[Mapping[str, float]] | Mapping[str, float] | None = None,
        batch_size: int = 64,
    ) -> list[EyePrediction]:
        """Probabilities, quality, findings and a heatmap per flagged image.

        ``quality``: the upload's quality results, so the gate is not run twice (``None``
        entries are assessed here). ``thresholds``: the triage's thresholds, one mapping for
        all images or one per image (risk factors differ between patients); the bundle's
        by default. A heatmap is made for each eye with a finding, explaining the finding
        that is furthest above its naming threshold (:mod:`ml.decision`). Raises :class:`ImageError` for bytes that
        cannot be decoded; ungradable photos are still scored.
        """
        if not images:
            return []
        rgbs = [self._as_rgb(im) for im in images]
        given = list(quality) if quality is not None else [None] * len(rgbs)
        qual = [
            q if q is not None else assess_quality(im) for q, im in zip(given, rgbs, strict=True)
        ]
        crops = [crop_fundus(im) for im in rgbs]
        want = heatmaps and bool(self.cam_branch)
        branch_probs, feats = self._run_branches(crops, features=want, batch_size=batch_size)
        mean = self.ensemble_probabilities(branch_probs)
        per_image = (
            [thresholds] * len(rgbs)
            if thresholds is None or isinstance(thresholds, Mapping)
            else list(thresholds)
        )

        top = [CLASSES[int(np.argmax(p))] for p in mean]
        found: list[tuple[str, ...]] = []
        cam_classes: list[str | None] = []
        for p, thr in zip(mean, per_image, strict=True):
            probs = {c: float(p[j]) for j, c in enumerate(CLASSES)}
            d = self.decision.moved(thr)
            _hits, named = eye_findings(
                probs,
                d.thresholds,
                disease_weight=d.disease_weight,
                name_thresholds=d.name_thresholds,
            )
            found.append(named)
            cam_classes.append(strongest(probs, named, d.name_thresholds))
        pngs: list[bytes | None] = [None] * len(rgbs)
        if want and feats is not None:
            idx = [i for i, c in enumerate(cam_classes) if c is not None]
            if idx:
                cams = class_activation_maps(
                    feats[idx], self.cam_weight, [CLASSES.index(str(cam_classes[i])) for i in idx]
                )
                for i, cam in zip(idx, cams, strict=True):
                    pngs[i] = overlay_png(crops[i], cam)

        return [
            EyePrediction(
                probabilities={c: float(mean[i, j]) for j, c in enumerate(CLASSES)},
                branch_probabilities={
                    b: {c: float(p[i, j]) for j, c in enumerate(CLASSES)}
                    for b, p in branch_probs.items()
                },
                quality=qual[i],
                model_version=self.version,
                heatmap_png=pngs[i],
                top_class=top[i],
                heatmap_class=cam_classes[i] if pngs[i] is not None else None,
                flagged=found[i],
            )
            for i in range(len(rgbs))
        ]
