"""Does another CPU runtime keep the accuracy? ``python -m ml.scripts.runtime_check --runtime
openvino`` scores the validation eyes through the bundle in ONNX Runtime (what calibration and
thresholds were chosen through) and in the other runtime, and applies issue 12's shipping rule:
eye-level macro AUC may drop by at most 0.005, and the refer decision may flip on at most 1% of
the eyes. OpenVINO on a processor with AMX computes in bfloat16 by default, hence the check.
Writes ``ml/reports/<runtime>_check.json``."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from ml.calibration import flagged
from ml.data import DEFAULT_SPLIT, REPO_ROOT, build_cache, default_odir_dir, read_labels, read_split
from ml.ensemble import Ensemble
from ml.metrics import macro_auc
from ml.runtimes import OpenVinoRunner

MAX_AUC_DROP = 0.005
MAX_FLIPS = 0.01


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def check(weights: Path, runtime: str, threads: int) -> dict:
    rec = read_labels(default_odir_dir() / "labels.csv")
    split = read_split(DEFAULT_SPLIT)
    idx = np.array([i for i, p in enumerate(rec.patient_ids) if split[p] == "val"])
    images = build_cache(default_odir_dir(), rec, 448)
    crops = [np.asarray(images[i]) for i in idx]
    probs, info = {}, {}
    for rt in ("onnx", runtime):
        ens = Ensemble.load(weights, threads=threads, runtime=rt)
        probs[rt] = ens.ensemble_probabilities(ens.branch_probabilities(crops, cropped=True))
        if rt == "openvino":
            runner = next(iter(ens.branches.values())).runner
            assert isinstance(runner, OpenVinoRunner)
            hint = runner.compiled.get_property("INFERENCE_PRECISION_HINT")
            info["openvino_precision"] = str(hint)
        decision = ens.decision
    y = rec.subset(idx).eye_labels
    a, b = probs["onnx"], probs[runtime]
    flips = float((flagged(a, decision) != flagged(b, decision)).mean())
    auc_a, auc_b = macro_auc(y, a), macro_auc(y, b)
    return {
        "runtime": runtime,
        "eyes": len(idx),
        "processor": _cpu_name(),
        **info,
        "macro_auc_onnx": auc_a,
        f"macro_auc_{runtime}": auc_b,
        "auc_drop": auc_a - auc_b,
        "refer_flips": flips,
        "max_abs_prob_diff": float(np.abs(a - b).max()),
        "mean_abs_prob_diff": float(np.abs(a - b).mean()),
        "passes": bool(auc_a - auc_b <= MAX_AUC_DROP and flips <= MAX_FLIPS),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", type=Path, default=REPO_ROOT / "ml" / "weights" / "default")
    ap.add_argument("--runtime", default="openvino", choices=["openvino", "torch"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    res = check(args.weights, args.runtime, args.threads)
    out = REPO_ROOT / "ml" / "reports" / f"{args.runtime}_check.json"
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
