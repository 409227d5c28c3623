"""The ways a branch can run: PyTorch (CPU or CUDA), ONNX Runtime, OpenVINO.

Each runner takes a float32 NCHW batch and returns the logits and, when asked and the
runner can, the last feature map (N, C, h, w) that the class activation maps are made from
(:mod:`ml.gradcam`), so a heatmap never needs a second pass through the network.
The exported ONNX graph has two outputs, ``logits`` and ``features``; a graph exported
before it had only ``logits``, and then no heatmap can be made from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch


class Runner(Protocol):
    name: str
    has_features: bool

    def run(self, x: np.ndarray, *, features: bool) -> tuple[np.ndarray, np.ndarray | None]: ...


class TorchRunner:
    """Eager PyTorch. On CUDA: channels_last, fp16 autocast, pinned host memory."""

    name = "torch"
    has_features = True

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.device = device
        self.model = model.eval().to(device)
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)

    def run(self, x: np.ndarray, *, features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        t = torch.from_numpy(x)
        cuda = self.device.type == "cuda"
        if cuda:
            t = t.pin_memory().to(self.device, non_blocking=True)
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=cuda):
            feats = self.model.forward_features(t)
            logits = self.model.forward_head(feats)
        # .cpu() before .numpy(): on CUDA the tensors live on the device.
        out = logits.float().cpu().numpy()
        return out, (feats.float().cpu().numpy() if features else None)


class OnnxRunner:
    name = "onnx"

    def __init__(self, path: Path, threads: int | None) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between ops: several worker processes share the cores, and
        # spinning threads would steal them from each other.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.has_features = "features" in self.outputs

    def run(self, x: np.ndarray, *, features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        want = ["logits", "features"] if features and self.has_features else [self.outputs[0]]
        res = self.session.run(want, {"input": x})
        return res[0], (res[1] if len(res) > 1 else None)


class OpenVinoRunner:
    """OpenVINO on the CPU, compiled from the same ONNX file (its own graph optimisations
    and the processor's AVX-512 / AMX kernels); one infer request per call."""

    name = "openvino"

    def __init__(self, path: Path, threads: int | None) -> None:
        import openvino as ov

        core = ov.Core()
        cfg: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            cfg["INFERENCE_NUM_THREADS"] = threads
        model = core.read_model(str(path))
        # Dynamic batch: compile once for any number of eyes.
        self.compiled = core.compile_model(model, "CPU", cfg)
        self.request = self.compiled.create_infer_request()
        self.outputs = [o.get_any_name() for o in self.compiled.outputs]
        self.has_features = "features" in self.outputs

    def run(self, x: np.ndarray, *, features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        res = self.request.infer({0: x})
        by_name = {o.get_any_name(): v for o, v in res.items()}
        logits = np.asarray(by_name["logits"] if "logits" in by_name else next(iter(res.values())))
        feats = np.asarray(by_name["features"]) if features and self.has_features else None
        return logits.copy(), (feats.copy() if feats is not None else None)
