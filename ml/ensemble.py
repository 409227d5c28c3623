"""The inference API the Celery workers call.

    ens = Ensemble.load("ml/weights/default")          # once per worker process
    preds = ens.predict([left_bytes, right_bytes])     # both branches batched over all eyes

On CPU the branches run in ONNX Runtime (int8) when the bundle has ``.onnx`` files; on
CUDA, or with ``runtime="torch"``, they run in PyTorch from the fp16 safetensors. The
Grad-CAM heatmap always uses the PyTorch colour model because it needs gradients.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from ml import CLASSES
from ml.gradcam import gradcam, overlay_png
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

DISEASES = tuple(c for c in CLASSES if c != "N")


@dataclass
class EyePrediction:
    probabilities: dict[str, float]  # ensemble mean of the branches' sigmoids, by class letter
    branch_probabilities: dict[str, dict[str, float]]  # {"color": {...}, "gray": {...}}
    quality: QualityResult
    model_version: str
    heatmap_png: bytes | None
    top_class: str
    heatmap_class: str | None = None  # the class the heatmap explains

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (the heatmap is left out; store it as a file)."""
        return {
            "probabilities": self.probabilities,
            "branch_probabilities": self.branch_probabilities,
            "quality": self.quality.to_dict(),
            "model_version": self.model_version,
            "top_class": self.top_class,
            "heatmap_class": self.heatmap_class,
        }


def _content_version(weights_dir: Path, files: Sequence[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        h.update(hashlib.sha256((weights_dir / name).read_bytes()).digest())
    return "lite0-" + h.hexdigest()[:12]


class _Branch:
    def __init__(
        self, name: str, spec: InputSpec, torch_model: torch.nn.Module | None, session: Any | None
    ) -> None:
        self.name, self.spec, self.torch_model, self.session = name, spec, torch_model, session

    def run(self, x: np.ndarray, device: torch.device) -> np.ndarray:
        if self.session is not None:
            logits = self.session.run(None, {"input": x})[0]
            return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        assert self.torch_model is not None
        with torch.inference_mode():
            t = torch.from_numpy(x).to(device)
            return torch.sigmoid(self.torch_model(t).float()).cpu().numpy().astype(np.float64)


class Ensemble:
    """Load once per process; ``predict`` is thread-compatible but not re-entrant on GPU."""

    version: str
    thresholds: dict[str, float]

    def __init__(
        self,
        weights_dir: Path,
        config: dict,
        branches: dict[str, _Branch],
        cam_model: torch.nn.Module | None,
        cam_spec: InputSpec | None,
        thresholds: dict[str, float],
        version: str,
        device: torch.device,
        runtime: str,
    ) -> None:
        self.weights_dir = weights_dir
        self.config = config
        self.branches = branches
        self.cam_model = cam_model
        self.cam_spec = cam_spec
        self.thresholds = thresholds
        self.version = version
        self.device = device
        self.runtime = runtime

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

        ``runtime``: "auto" (ONNX Runtime on CPU when the bundle has ONNX files, else
        PyTorch), "onnx" or "torch". Raises FileNotFoundError naming the missing path.
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
        thresholds = {c: float(v) for c, v in json.loads(thr_path.read_text()).items()}

        dev = torch.device(
            "cuda"
            if device == "auto" and torch.cuda.is_available()
            else ("cpu" if device == "auto" else device)
        )
        if threads:
            torch.set_num_threads(threads)
        has_onnx = all(
            "onnx" in b and (wd / b["onnx"]).is_file() for b in config["branches"].values()
        )
        if runtime == "auto":
            runtime = "onnx" if dev.type == "cpu" and has_onnx else "torch"
        if runtime == "onnx" and not has_onnx:
            raise FileNotFoundError(
                f"{wd}: runtime 'onnx' asked for but the bundle has no ONNX files"
            )

        files = ["config.yaml", "thresholds.json"]
        branches: dict[str, _Branch] = {}
        cam_model: torch.nn.Module | None = None
        cam_spec: InputSpec | None = None
        for name, b in config["branches"].items():
            i = b["input"]
            spec = InputSpec(
                branch=name,
                size=int(i["size"]),
                mean=tuple(i["mean"]),
                std=tuple(i["std"]),
                equalize=i.get("equalize", "hist"),
            )
            wpath = wd / b["weights"]
            if not wpath.is_file():
                raise FileNotFoundError(f"branch weights not found: {wpath.resolve()}")
            files.append(b["weights"])
            need_torch = runtime == "torch" or name == "color"
            model = None
            if need_torch:
                model = create_model(b["arch"], pretrained=False)
                model.load_state_dict({k: v.float() for k, v in load_file(str(wpath)).items()})
                model.eval().to(dev)
            session = None
            if runtime == "onnx":
                import onnxruntime as ort

                so = ort.SessionOptions()
                # No busy-waiting between ops: several worker processes share the cores, and
                # spinning threads would steal them from each other (measured: slower than
                # eager PyTorch on a loaded 2-core machine with spinning on).
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                if threads:
                    so.intra_op_num_threads = threads
                    so.inter_op_num_threads = 1
                session = ort.InferenceSession(
                    str(wd / b["onnx"]), so, providers=["CPUExecutionProvider"]
                )
            if "onnx" in b and (wd / b["onnx"]).is_file():
                # Hash every file of the bundle whichever runtime runs it, so the version
                # names the bundle rather than the way this process happens to use it.
                files.append(b["onnx"])
            branches[name] = _Branch(name, spec, model if runtime == "torch" else None, session)
            if name == "color" or cam_model is None:
                cam_model, cam_spec = model, spec
        version = _content_version(wd, files)
        return cls(wd, config, branches, cam_model, cam_spec, thresholds, version, dev, runtime)

    def _as_rgb(self, item: bytes | np.ndarray) -> np.ndarray:
        if isinstance(item, (bytes, bytearray, memoryview)):
            return decode_image(bytes(item))
        arr = np.asarray(item)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ImageError("unsupported_mode", "Arrays must be RGB uint8 with shape (H, W, 3).")
        return arr

    def branch_probabilities(
        self,
        rgbs: Sequence[np.ndarray],
        *,
        cropped: bool = False,
        batch_size: int = 32,
        _resized: dict[int, list[np.ndarray]] | None = None,
    ) -> dict[str, np.ndarray]:
        """(n, 8) sigmoid outputs per branch for decoded RGB images (evaluation uses this)."""
        crops = list(rgbs) if cropped else [crop_fundus(im) for im in rgbs]
        resized = {} if _resized is None else _resized
        out: dict[str, np.ndarray] = {}
        for name, br in self.branches.items():
            s = br.spec
            if s.size not in resized:
                resized[s.size] = [resize_square(c, s.size) for c in crops]
            pics = np.stack([to_branch_rgb(r, name, s.equalize) for r in resized[s.size]])
            parts = [
                br.run(normalize(pics[i : i + batch_size], s.mean, s.std), self.device)
                for i in range(0, len(pics), batch_size)
            ]
            out[name] = np.concatenate(parts)
        return out

    def predict(
        self, images: Sequence[bytes | np.ndarray], *, heatmaps: bool = True
    ) -> list[EyePrediction]:
        """Probabilities, quality and (optionally) a Grad-CAM PNG per image.

        Raises :class:`ImageError` for bytes that cannot be decoded; ungradable photos are
        still scored, and their ``quality`` says why they should be retaken.
        """
        if not images:
            return []
        rgbs = [self._as_rgb(im) for im in images]
        quality = [assess_quality(im) for im in rgbs]
        crops = [crop_fundus(im) for im in rgbs]
        resized: dict[int, list[np.ndarray]] = {}
        branch_probs = self.branch_probabilities(crops, cropped=True, _resized=resized)
        mean = np.mean(list(branch_probs.values()), axis=0)

        top = [CLASSES[int(np.argmax(p))] for p in mean]
        cam_classes: list[str] = []
        for p, t in zip(mean, top, strict=True):
            # Explain the most probable disease that passes its threshold; if none does,
            # explain the top class (usually N: "where the model saw a normal retina").
            flagged = [c for c in DISEASES if p[CLASSES.index(c)] >= self.thresholds.get(c, 0.5)]
            cam_classes.append(max(flagged, key=lambda c: p[CLASSES.index(c)]) if flagged else t)
        pngs: list[bytes | None] = [None] * len(rgbs)
        if heatmaps and self.cam_model is not None and self.cam_spec is not None:
            s = self.cam_spec
            pics = resized.get(s.size) or [resize_square(c, s.size) for c in crops]
            x = torch.from_numpy(
                normalize(
                    np.stack([to_branch_rgb(r, s.branch, s.equalize) for r in pics]), s.mean, s.std
                )
            ).to(self.device)
            cams = gradcam(self.cam_model, x, [CLASSES.index(c) for c in cam_classes])
            pngs = [overlay_png(c, cam) for c, cam in zip(crops, cams, strict=True)]

        out = []
        for i in range(len(rgbs)):
            out.append(
                EyePrediction(
                    probabilities={c: float(mean[i, j]) for j, c in enumerate(CLASSES)},
                    branch_probabilities={
                        b: {c: float(p[i, j]) for j, c in enumerate(CLASSES)}
                        for b, p in branch_probs.items()
                    },
                    quality=quality[i],
                    model_version=self.version,
                    heatmap_png=pngs[i],
                    top_class=top[i],
                    heatmap_class=cam_classes[i] if pngs[i] is not None else None,
                )
            )
        return out
