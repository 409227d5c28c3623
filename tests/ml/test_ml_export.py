"""The ONNX export: two outputs that match PyTorch, and the network left in eval mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ml.export import export_onnx, onnx_predict
from ml.model import create_model
from ml.preprocess import InputSpec


def test_onnx_export_matches_torch_and_leaves_the_model_in_eval_mode(tmp_path: Path) -> None:
    import onnxruntime as ort

    torch.manual_seed(0)
    model = create_model(pretrained=False).eval()
    spec = InputSpec(branch="color", size=96)
    path = tmp_path / "m.onnx"
    export_onnx(model, spec, path)
    assert not model.training and not any(m.training for m in model.modules())
    x = np.random.default_rng(0).normal(size=(3, 3, 96, 96)).astype(np.float32)
    with torch.inference_mode():
        feats = model.forward_features(torch.from_numpy(x))
        ref = torch.sigmoid(model.forward_head(feats)).numpy()
    assert np.allclose(onnx_predict(path, x, threads=1), ref, atol=1e-4)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["logits", "features"]
    out_feats = sess.run(["features"], {"input": x})[0]
    assert np.allclose(out_feats, feats.numpy(), atol=1e-3)
