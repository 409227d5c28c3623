"""Ship trained runs as the inference bundle: ``python -m ml.export --runs RUN [RUN ...] --out DIR``.

Writes, per branch, ``<branch>.safetensors`` (fp16) and ``<branch>.onnx`` for the CPU
workers (fp16-stored weights, fp32 compute; ``--int8`` gives static QDQ int8 instead,
which lost ~0.02 validation macro AUC on these models), plus
``config.yaml`` (class order, architecture and input preprocessing per branch),
``thresholds.json`` (per-class thresholds tuned on validation with the shipped runtime)
and ``metrics.json`` (validation metrics of each branch and the ensemble, PyTorch vs
ONNX). Re-run it whenever a better checkpoint arrives; the bundle's content hash
(``Ensemble.version``) changes with it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import save_file

from ml import CLASSES
from ml.data import REPO_ROOT, build_cache, default_odir_dir, read_labels, read_split
from ml.metrics import macro_auc, odir_score, patient_aggregate, per_class_metrics, tune_thresholds
from ml.model import create_model
from ml.preprocess import InputSpec, normalize, to_branch_rgb
from ml.train import input_spec


def _val_set(split_csv: Path, size: int) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray]:
    odir = default_odir_dir()
    rec = read_labels(odir / "labels.csv")
    split = read_split(split_csv)
    images = build_cache(odir, rec, size)
    va = np.array([i for i, p in enumerate(rec.patient_ids) if split[p] == "val"])
    tr = np.array([i for i, p in enumerate(rec.patient_ids) if split[p] == "train"])
    return images, rec, va, tr


def patient_gt(rec: Any, pids: list[str]) -> np.ndarray:
    first = {pid: i for i, pid in reversed(list(enumerate(rec.patient_ids)))}
    return rec.patient_labels[[first[p] for p in pids]]


def summarize(probs: np.ndarray, rec: Any, thresholds: dict[str, float] | None = None) -> dict:
    pat, pids = patient_aggregate(probs, rec.patient_ids)
    pgt = patient_gt(rec, pids)
    return {
        "eye_macro_auc": macro_auc(rec.eye_labels, probs),
        "patient_odir": odir_score(pgt, pat),
        "eye_per_class": per_class_metrics(rec.eye_labels, probs, thresholds),
        "patient_per_class": per_class_metrics(pgt, pat, thresholds),
    }


def export_onnx(model: torch.nn.Module, spec: InputSpec, path: Path) -> None:
    model = model.float().eval()
    dummy = torch.zeros(1, 3, spec.size, spec.size)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def quantize_onnx(src: Path, dst: Path, calib: np.ndarray) -> None:
    """Static int8 (QDQ, per-channel weights). EfficientNet-Lite was designed for int8:
    ReLU6 and no squeeze-excite, so activations quantise without a large accuracy loss."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": calib[i : i + 16]} for i in range(0, len(calib), 16)])

        def get_next(self) -> dict | None:
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


def store_weights_fp16(src: Path, dst: Path) -> None:
    """Keep the ONNX graph fp32 but store its weights as fp16 behind Cast nodes.

    Halves the file (13.5 -> 6.8 MB per branch) with exactly the numbers of the fp16
    safetensors; ONNX Runtime folds the casts once at session start, so inference runs
    at full fp32 speed.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    new_inits, casts = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type != TensorProto.FLOAT or arr.size < 16:
            new_inits.append(init)
            continue
        half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
        new_inits.append(half)
        casts.append(
            helper.make_node(
                "Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "_cast"
            )
        )
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def onnx_predict(path: Path, x: np.ndarray, threads: int = 2) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    out = [sess.run(None, {"input": x[i : i + 32]})[0] for i in range(0, len(x), 32)]
    return 1.0 / (1.0 + np.exp(-np.concatenate(out)))


def branch_inputs(images: np.ndarray, idx: np.ndarray, spec: InputSpec) -> np.ndarray:
    pics = np.stack([to_branch_rgb(np.asarray(images[i]), spec.branch, spec.equalize) for i in idx])
    return normalize(pics, spec.mean, spec.std)


def export(
    runs: list[Path],
    out: Path,
    *,
    checkpoint: str = "best",
    onnx: bool = True,
    quantize: bool = False,
    threads: int = 2,
    torch_subset: int = 256,
) -> dict:
    torch.set_num_threads(threads)
    tmp_out = out.with_name(out.name + ".tmp")
    if tmp_out.exists():
        shutil.rmtree(tmp_out)
    tmp_out.mkdir(parents=True)
    config: dict[str, Any] = {
        "format": 1,
        "classes": list(CLASSES),
        "ensemble": "mean_sigmoid",
        "branches": {},
    }
    val_probs: dict[str, dict[str, np.ndarray]] = {}
    rec_val = None
    split_ref: str | None = None
    for run in runs:
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        ck_path = run / f"{checkpoint}.pt"
        if not ck_path.is_file():
            ck_path = run / "last.pt"
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        branch = cfg["branch"]
        spec = input_spec(cfg)
        split_text = (run / "split.csv").read_text()
        if split_ref is None:
            split_ref = split_text
        elif split_text != split_ref:
            raise ValueError(
                f"{run} was trained on a different split; an ensemble needs one validation set"
            )
        model = create_model(cfg["model"]["arch"], pretrained=False)
        model.load_state_dict(ck["model"])
        model.eval()
        state = {
            k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
        }
        save_file(
            state,
            str(tmp_out / f"{branch}.safetensors"),
            metadata={"arch": cfg["model"]["arch"], "branch": branch},
        )
        # Evaluate exactly what is shipped: fp16 weights read back into fp32.
        model.load_state_dict({k: v.float() for k, v in state.items()})
        images, rec, va, tr = _val_set(run / "split.csv", spec.size)
        rec_val = rec.subset(va)
        x_val = branch_inputs(images, va, spec)
        # Eager PyTorch is ~6x slower than int8 ONNX here: with ONNX shipped, PyTorch only
        # runs on a fixed subset, enough to report how far the two runtimes differ.
        n_torch = len(x_val) if not onnx else min(len(x_val), torch_subset)
        with torch.inference_mode():
            pt = torch.cat(
                [
                    torch.sigmoid(model(torch.from_numpy(x_val[i : min(i + 64, n_torch)])))
                    for i in range(0, n_torch, 64)
                ]
            )
        val_probs.setdefault("torch", {})[branch] = pt.numpy()
        entry: dict[str, Any] = {
            "arch": cfg["model"]["arch"],
            "weights": f"{branch}.safetensors",
            "input": {
                "size": spec.size,
                "mean": list(spec.mean),
                "std": list(spec.std),
                "equalize": spec.equalize,
            },
            "trained": {
                "run": str(run.relative_to(REPO_ROOT))
                if run.is_relative_to(REPO_ROOT)
                else str(run),
                "checkpoint": ck_path.name,
                # best.pt: the epoch it was saved after. last.pt: completed epochs, plus
                # the batches done in the current one (a mid-epoch checkpoint).
                "epoch": (ck.get("metrics") or {}).get("epoch", ck.get("state", {}).get("epoch")),
                "batches_into_next_epoch": ck.get("state", {}).get("step")
                if "state" in ck
                else None,
                "best_val_metrics": ck.get("metrics"),
            },
        }
        if onnx:
            fp32 = tmp_out / f"{branch}.fp32.onnx"
            export_onnx(model, spec, fp32)
            if quantize:
                rng = np.random.default_rng(0)
                calib = branch_inputs(images, rng.choice(tr, 128, replace=False), spec)
                quantize_onnx(fp32, tmp_out / f"{branch}.onnx", calib)
            else:
                store_weights_fp16(fp32, tmp_out / f"{branch}.onnx")
            fp32.unlink()
            entry["onnx"] = f"{branch}.onnx"
            entry["onnx_precision"] = "int8" if quantize else "fp16 weights, fp32 compute"
            val_probs.setdefault("onnx", {})[branch] = onnx_predict(
                tmp_out / f"{branch}.onnx", x_val, threads
            )
        config["branches"][branch] = entry

    assert rec_val is not None
    runtime = "onnx" if onnx else "torch"
    shipped = val_probs[runtime]
    ens = np.mean(list(shipped.values()), axis=0)
    thresholds = tune_thresholds(rec_val.eye_labels, ens)
    metrics: dict[str, Any] = {
        "validation": {"eyes": len(rec_val.filenames), "patients": len(set(rec_val.patient_ids))},
        "threshold_rule": "disease classes: highest threshold with >= 90% eye-level sensitivity on validation; "
        "N: maximum Youden J",
        "shipped_runtime": runtime,
    }
    for rt, probs in val_probs.items():
        n = min(len(p) for p in probs.values())
        rec_rt = rec_val if n == len(rec_val.filenames) else rec_val.subset(np.arange(n))
        res = {b: summarize(p[:n], rec_rt, thresholds) for b, p in probs.items()}
        if len(probs) > 1:
            res["ensemble"] = summarize(
                np.mean([p[:n] for p in probs.values()], axis=0), rec_rt, thresholds
            )
        res["eyes"] = n
        metrics[rt] = res
    if "onnx" in val_probs:
        n = len(next(iter(val_probs["torch"].values())))
        metrics["onnx_vs_torch"] = {
            "eyes": n,
            "max_abs_prob_diff": {
                b: float(np.abs(val_probs["onnx"][b][:n] - val_probs["torch"][b]).max())
                for b in val_probs["onnx"]
            },
            "mean_abs_prob_diff": {
                b: float(np.abs(val_probs["onnx"][b][:n] - val_probs["torch"][b]).mean())
                for b in val_probs["onnx"]
            },
            "eye_macro_auc_torch_subset": {
                b: macro_auc(rec_val.eye_labels[:n], val_probs["torch"][b])
                for b in val_probs["torch"]
            },
            "eye_macro_auc_onnx_subset": {
                b: macro_auc(rec_val.eye_labels[:n], val_probs["onnx"][b][:n])
                for b in val_probs["onnx"]
            },
        }
    (tmp_out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for f in tmp_out.iterdir():
        f.chmod(0o644)  # safetensors writes 0600; the bundle is committed and read by workers
    (tmp_out / "thresholds.json").write_text(json.dumps(thresholds, indent=2))
    (tmp_out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    # Swap the finished bundle in at once, so a worker never loads a half-written folder.
    if out.exists():
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp_out.rename(out)
        shutil.rmtree(old)
    else:
        tmp_out.rename(out)
    return metrics


def retune(out: Path, *, threads: int = 2, split_csv: Path | None = None) -> dict:
    """Re-tune an existing bundle's thresholds on validation, through its shipped runtime,
    without re-exporting the weights (the runs' checkpoints may have moved on since)."""
    from ml.data import DEFAULT_SPLIT
    from ml.ensemble import Ensemble

    ens = Ensemble.load(out, threads=threads)
    size = next(iter(ens.branches.values())).spec.size
    images, rec, va, _ = _val_set(split_csv or DEFAULT_SPLIT, size)
    rec_val = rec.subset(va)
    # The cache holds the cropped, resized pictures: exactly what crop_fundus + resize give.
    probs = ens.branch_probabilities([np.asarray(images[i]) for i in va], cropped=True)
    mean = np.mean(list(probs.values()), axis=0)
    thresholds = tune_thresholds(rec_val.eye_labels, mean)
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    res = {b: summarize(p, rec_val, thresholds) for b, p in probs.items()}
    if len(probs) > 1:
        res["ensemble"] = summarize(mean, rec_val, thresholds)
    res["eyes"] = len(va)
    metrics[ens.runtime] = res
    metrics["thresholds_retuned"] = True
    (out / "thresholds.json").write_text(json.dumps(thresholds, indent=2))
    metrics_path.write_text(json.dumps(metrics, indent=2, default=float))
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        default=[Path("ml/runs/lite0_color"), Path("ml/runs/lite0_gray")],
    )
    ap.add_argument("--out", type=Path, default=Path("ml/weights/default"))
    ap.add_argument("--checkpoint", default="best", choices=["best", "last"])
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument(
        "--int8",
        action="store_true",
        help="static int8 ONNX (smaller, faster, but cost 0.02 macro AUC on validation here)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--retune-only",
        action="store_true",
        help="keep the bundle in --out, only re-tune thresholds.json on validation",
    )
    args = ap.parse_args(argv)
    if args.retune_only:
        out = args.out if args.out.is_absolute() else REPO_ROOT / args.out
        m = retune(out, threads=args.threads)
        print(json.dumps(json.loads((out / "thresholds.json").read_text()), indent=1))
        return
    runs = [r if r.is_absolute() else REPO_ROOT / r for r in args.runs]
    runs = [r for r in runs if (r / "best.pt").is_file() or (r / "last.pt").is_file()]
    if not runs:
        raise SystemExit("no run folder holds a checkpoint yet")
    out = args.out if args.out.is_absolute() else REPO_ROOT / args.out
    t0 = time.monotonic()
    m = export(
        runs,
        out,
        checkpoint=args.checkpoint,
        onnx=not args.no_onnx,
        quantize=args.int8,
        threads=args.threads,
    )
    rt = m["shipped_runtime"]
    for name, res in m[rt].items():
        if name == "eyes":
            continue
        o = res["patient_odir"]
        print(
            f"{name:9s} eye macro AUC {res['eye_macro_auc']:.3f} | patient ODIR kappa {o['kappa']:.3f} "
            f"F1 {o['f1']:.3f} AUC {o['auc']:.3f} final {o['final']:.3f}"
        )
    print(f"exported {[r.name for r in runs]} to {out} in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
