"""Is int8 good enough to ship? ``python -m ml.quantize [--weights DIR] [--out ml/reports/int8_check.json]``.

Static post-training quantisation (ONNX Runtime, QDQ, per-channel int8 weights, uint8
activations) of each branch of the shipped bundle, calibrated on 128 ODIR *training*
pictures, then scored on the validation part against the shipped fp32 graph, through the
bundle's own calibration and thresholds. The rule for shipping it (issue 12): the eye-level
macro AUC drops by at most 0.005 and the refer decision flips on at most 1% of the
validation eyes. Also times both graphs in ONNX Runtime and OpenVINO on batches of 16.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ml.calibration import flagged
from ml.data import DEFAULT_SPLIT, REPO_ROOT
from ml.ensemble import Ensemble
from ml.export import _split_set, branch_inputs, export_onnx, onnx_predict, quantize_onnx
from ml.metrics import macro_auc
from ml.model import create_model

MAX_AUC_DROP = 0.005
MAX_FLIPS = 0.01


def _throughput(path: Path, x: np.ndarray, runtime: str, threads: int) -> float:
    from ml.runtimes import OnnxRunner, OpenVinoRunner

    runner = OnnxRunner(path, threads) if runtime == "onnx" else OpenVinoRunner(path, threads)
    runner.run(x[:16], features=False)
    t0 = time.perf_counter()
    for i in range(0, len(x), 16):
        runner.run(x[i : i + 16], features=False)
    return len(x) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", type=Path, default=REPO_ROOT / "ml" / "weights" / "default")
    ap.add_argument("--work", type=Path, default=REPO_ROOT / "ml" / "runs" / "int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "ml" / "reports" / "int8_check.json")
    args = ap.parse_args(argv)

    import torch
    from safetensors.torch import load_file

    ens = Ensemble.load(args.weights, threads=args.threads, runtime="onnx")
    args.work.mkdir(parents=True, exist_ok=True)
    fp32_probs, int8_probs, speed = {}, {}, {}
    rec_val = None
    for name, br in ens.branches.items():
        b = ens.config["branches"][name]
        images, rec, parts = _split_set(DEFAULT_SPLIT, br.spec.size)
        rec_val = rec.subset(parts["val"])
        model = create_model(b["arch"], pretrained=False)
        model.load_state_dict(
            {k: v.float() for k, v in load_file(str(args.weights / b["weights"])).items()}
        )
        fp32 = args.work / f"{name}.fp32.onnx"
        int8 = args.work / f"{name}.int8.onnx"
        with torch.no_grad():
            export_onnx(model, br.spec, fp32)
        rng = np.random.default_rng(0)
        quantize_onnx(
            fp32,
            int8,
            branch_inputs(images, rng.choice(parts["train"], 128, replace=False), br.spec),
        )
        x = branch_inputs(images, parts["val"], br.spec)
        fp32_probs[name] = onnx_predict(args.weights / b["onnx"], x, args.threads)
        int8_probs[name] = onnx_predict(int8, x, args.threads)
        speed[name] = {
            f"{graph}_{rt}_images_per_s": _throughput(path, x[:128], rt, args.threads)
            for graph, path in (("fp32", fp32), ("int8", int8))
            for rt in ("onnx", "openvino")
        }
        print(name, json.dumps(speed[name]), flush=True)
    assert rec_val is not None
    q32 = ens.ensemble_probabilities(fp32_probs)
    q8 = ens.ensemble_probabilities(int8_probs)
    auc32, auc8 = macro_auc(rec_val.eye_labels, q32), macro_auc(rec_val.eye_labels, q8)
    flips = float((flagged(q32, ens.decision) != flagged(q8, ens.decision)).mean())
    report = {
        "model_version": ens.version,
        "validation_eyes": len(rec_val.filenames),
        "eye_macro_auc_fp32": auc32,
        "eye_macro_auc_int8": auc8,
        "auc_drop": auc32 - auc8,
        "refer_decision_flips": flips,
        "max_abs_prob_diff": float(np.abs(q32 - q8).max()),
        "throughput_val_batches_of_16": speed,
        "rule": {"max_auc_drop": MAX_AUC_DROP, "max_flips": MAX_FLIPS},
        "ship_int8": bool(auc32 - auc8 <= MAX_AUC_DROP and flips <= MAX_FLIPS),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "throughput_val_batches_of_16"}))


if __name__ == "__main__":
    main()
