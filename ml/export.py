"""Ship trained runs as the inference bundle: ``python -m ml.export --runs RUN [RUN ...] --out DIR``.

Writes, per branch, ``<branch>.safetensors`` (fp16) and ``<branch>.onnx`` for the CPU
workers (fp16-stored weights, fp32 compute; ``--int8`` gives static QDQ int8 instead),
plus ``config.yaml`` (class order, architecture and input preprocessing per branch, the
per-class probability calibration and the refer decision), ``thresholds.json`` (per-class
thresholds of the one refer decision, :mod:`ml.calibration`) and ``metrics.json``.

Everything that is chosen on data (calibration, thresholds, the operating point) is chosen
on the split's ``calib`` part, through the shipped runtime; ``metrics.json`` reports the
``val`` part, which none of those choices saw. Re-run it whenever a better checkpoint
arrives; the bundle's content hash (``Ensemble.version``) changes with it.
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
from ml.calibration import Calibration, choose_thresholds, screening_summary
from ml.data import REPO_ROOT, Records, build_cache, default_odir_dir, read_labels, read_split
from ml.decision import Decision
from ml.metrics import macro_auc, odir_score, patient_aggregate, per_class_metrics
from ml.model import create_model
from ml.preprocess import InputSpec, normalize, to_branch_rgb
from ml.train import input_spec


def _split_set(split_csv: Path, size: int) -> tuple[np.ndarray, Records, dict[str, np.ndarray]]:
    """The uint8 cache (cropped + resized exactly as inference does) and the split's parts."""
    odir = default_odir_dir()
    rec = read_labels(odir / "labels.csv")
    split = read_split(split_csv)
    images = build_cache(odir, rec, size)
    parts = {
        name: np.array([i for i, p in enumerate(rec.patient_ids) if split[p] == name])
        for name in ("train", "calib", "val")
    }
    return images, rec, parts


def patient_gt(rec: Any, pids: list[str]) -> np.ndarray:
    first = {pid: i for i, pid in reversed(list(enumerate(rec.patient_ids)))}
    return rec.patient_labels[[first[p] for p in pids]]


def summarize(probs: np.ndarray, rec: Any, decision: Decision | None = None) -> dict:
    """Per-class figures at the naming thresholds (what a named finding means), the screening
    figures at the refer decision."""
    pat, pids = patient_aggregate(probs, rec.patient_ids)
    pgt = patient_gt(rec, pids)
    names = decision.name_thresholds if decision is not None else None
    out = {
        "eye_macro_auc": macro_auc(rec.eye_labels, probs),
        "patient_odir": odir_score(pgt, pat),
        "eye_per_class": per_class_metrics(rec.eye_labels, probs, names),
        "patient_per_class": per_class_metrics(pgt, pat, names),
    }
    if decision is not None:
        out["screening"] = screening_summary(probs, rec.eye_labels, rec.patient_ids, decision)
    return out


WEIGHT_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)


def ensemble_weights(probs: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """The colour branch's share of the weighted mean, by eye-level macro AUC on ``calib``.

    0.5 is the seed's plain average; a weaker gray branch gets less say. Any other pair of
    branches is averaged plainly."""
    if set(probs) != {"color", "gray"}:
        return {b: 1 / len(probs) for b in probs}
    best = max(
        WEIGHT_GRID,
        key=lambda w: macro_auc(labels, w * probs["color"] + (1 - w) * probs["gray"]),
    )
    return {"color": best, "gray": round(1 - best, 6)}


def decide(
    probs: dict[str, dict[str, np.ndarray]], recs: dict[str, Records]
) -> tuple[Calibration, Decision, dict[str, Any], dict[str, Any]]:
    """Weigh the branches, calibrate and place the refer thresholds on ``calib``; score on ``val``.

    ``probs[part][branch]`` are the shipped runtime's sigmoids. Every branch alone and the
    ensemble get the same treatment, so the comparison between them is like for like.
    Returns the ensemble's calibration, refer decision and its record (with the branch weights),
    and the metrics of all.
    """
    models = dict.fromkeys(probs["val"])
    weights = ensemble_weights(probs["calib"], recs["calib"].eye_labels)
    if len(models) > 1:
        models["ensemble"] = None

    def pick(part: str, name: str) -> np.ndarray:
        if name == "ensemble":
            return np.sum([weights[b] * probs[part][b] for b in probs[part]], axis=0)
        return probs[part][name]

    metrics: dict[str, Any] = {}
    chosen: tuple[Calibration, Decision, dict[str, Any]] | None = None
    for name in models:
        cal = Calibration.fit(pick("calib", name), recs["calib"].eye_labels)
        q_cal = cal.apply(pick("calib", name))
        decision, info = choose_thresholds(q_cal, recs["calib"].eye_labels)
        info = {**info, "weights": weights if name == "ensemble" else {name: 1.0}}
        metrics[name] = {
            "val": summarize(cal.apply(pick("val", name)), recs["val"], decision),
            "val_uncalibrated_odir": summarize(pick("val", name), recs["val"])["patient_odir"],
            "calib": {
                "eye_macro_auc": macro_auc(recs["calib"].eye_labels, pick("calib", name)),
                "screening": screening_summary(
                    q_cal, recs["calib"].eye_labels, recs["calib"].patient_ids, decision
                ),
            },
            "thresholds": decision.to_json(),
            "decision": info,
        }
        chosen = (cal, decision, info)
    assert chosen is not None
    return (*chosen, metrics)


class _LogitsAndFeatures(torch.nn.Module):
    """The network with its last feature map as a second output (for the heatmaps)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.model.forward_features(x)
        return self.model.forward_head(feats), feats


def export_onnx(model: torch.nn.Module, spec: InputSpec, path: Path) -> None:
    model = model.float().eval()
    dummy = torch.zeros(1, 3, spec.size, spec.size)
    # The wrapper must be in eval mode too: torch.onnx.export restores the module's own mode
    # afterwards, and a fresh wrapper's train mode would switch the network's dropout and
    # batch norms to training for whatever runs it next.
    torch.onnx.export(
        _LogitsAndFeatures(model).eval(),
        (dummy,),
        str(path),
        input_names=["input"],
        output_names=["logits", "features"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
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
    out = [sess.run(["logits"], {"input": x[i : i + 32]})[0] for i in range(0, len(x), 32)]
    return 1.0 / (1.0 + np.exp(-np.concatenate(out)))


def branch_inputs(images: np.ndarray, idx: np.ndarray, spec: InputSpec) -> np.ndarray:
    pics = np.stack([to_branch_rgb(np.asarray(images[i]), spec) for i in idx])
    return normalize(pics, spec.mean, spec.std)


def _write_bundle(
    tmp_out: Path, out: Path, config: dict, decision: Decision, metrics: dict
) -> None:
    (tmp_out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    rule = config.get("decision", {}).get("rule", "")
    (tmp_out / "thresholds.json").write_text(json.dumps(decision.to_json(rule=rule), indent=2))
    (tmp_out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    for f in tmp_out.iterdir():
        f.chmod(0o644)  # safetensors writes 0600; the bundle is committed and read by workers
    if tmp_out == out:
        return
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


def export(
    runs: list[Path],
    out: Path,
    *,
    checkpoint: str = "best",
    onnx: bool = True,
    quantize: bool = False,
    threads: int = 2,
    torch_subset: int = 256,
    cpu_runtime: str = "onnx",
) -> dict:
    torch.set_num_threads(threads)
    tmp_out = out.with_name(out.name + ".tmp")
    if tmp_out.exists():
        shutil.rmtree(tmp_out)
    tmp_out.mkdir(parents=True)
    config: dict[str, Any] = {
        "format": 2,
        "classes": list(CLASSES),
        "ensemble": "weighted_mean_sigmoid",  # weights: chosen on calib (ml.export.decide)
        # Which runtime runs the bundle on each device (chosen by `python -m ml.bench`);
        # PyTorch is the fallback wherever the named one is missing.
        "runtime": {"cpu": cpu_runtime if onnx else "torch", "cuda": "torch"},
        "branches": {},
    }
    runtime = "onnx" if onnx else "torch"
    # probs[runtime][part][branch]: sigmoids on the calibration and validation parts.
    probs: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    recs: dict[str, Records] = {}
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
        # best.pt holds the EMA weights it was scored with; last.pt the live and EMA ones.
        weights = ck["ema"] if ck_path.name == "last.pt" and ck.get("ema") else ck["model"]
        model.load_state_dict(weights)
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
        images, rec, parts = _split_set(run / "split.csv", spec.size)
        entry: dict[str, Any] = {
            "arch": cfg["model"]["arch"],
            "weights": f"{branch}.safetensors",
            "input": {
                "size": spec.size,
                "mean": list(spec.mean),
                "std": list(spec.std),
                "equalize": spec.equalize,
                "contrast": spec.contrast,
                "field_mask": spec.field_mask,
            },
            "trained": {
                "run": str(run.relative_to(REPO_ROOT))
                if run.is_relative_to(REPO_ROOT)
                else str(run),
                "checkpoint": ck_path.name,
                "epoch": (ck.get("metrics") or {}).get("epoch", ck.get("state", {}).get("epoch")),
                "selected_on": cfg.get("train", {}).get("select_on", "val"),
                "best_metrics": ck.get("metrics"),
            },
        }
        if onnx:
            fp32 = tmp_out / f"{branch}.fp32.onnx"
            export_onnx(model, spec, fp32)
            if quantize:
                rng = np.random.default_rng(0)
                calib = branch_inputs(images, rng.choice(parts["train"], 128, replace=False), spec)
                quantize_onnx(fp32, tmp_out / f"{branch}.onnx", calib)
            else:
                store_weights_fp16(fp32, tmp_out / f"{branch}.onnx")
            fp32.unlink()
            entry["onnx"] = f"{branch}.onnx"
            entry["onnx_precision"] = "int8" if quantize else "fp16 weights, fp32 compute"
        for part in ("calib", "val"):
            recs[part] = rec.subset(parts[part])
            x = branch_inputs(images, parts[part], spec)
            if onnx:
                probs.setdefault("onnx", {}).setdefault(part, {})[branch] = onnx_predict(
                    tmp_out / f"{branch}.onnx", x, threads
                )
            # With ONNX shipped, PyTorch runs on a fixed subset of validation only: enough
            # to report how far the two runtimes differ.
            n_torch = len(x) if not onnx else (min(len(x), torch_subset) if part == "val" else 0)
            if n_torch:
                with torch.inference_mode():
                    pt = torch.cat(
                        [
                            torch.sigmoid(model(torch.from_numpy(x[i : min(i + 64, n_torch)])))
                            for i in range(0, n_torch, 64)
                        ]
                    )
                probs.setdefault("torch", {}).setdefault(part, {})[branch] = pt.numpy()
        config["branches"][branch] = entry

    calibration, refer, decision, results = decide(probs[runtime], recs)
    config["calibration"] = calibration.to_config()
    config["weights"] = decision["weights"]
    config["decision"] = {k: v for k, v in decision.items() if k != "weights"}
    metrics: dict[str, Any] = {
        "validation": {
            "eyes": len(recs["val"].filenames),
            "patients": len(set(recs["val"].patient_ids)),
        },
        "calibration_part": {
            "eyes": len(recs["calib"].filenames),
            "patients": len(set(recs["calib"].patient_ids)),
        },
        "threshold_rule": decision["rule"],
        "shipped_runtime": runtime,
        runtime: results,
    }
    if onnx:
        n = len(next(iter(probs["torch"]["val"].values())))
        metrics["onnx_vs_torch"] = {
            "eyes": n,
            "max_abs_prob_diff": {
                b: float(np.abs(probs["onnx"]["val"][b][:n] - probs["torch"]["val"][b]).max())
                for b in probs["onnx"]["val"]
            },
            "mean_abs_prob_diff": {
                b: float(np.abs(probs["onnx"]["val"][b][:n] - probs["torch"]["val"][b]).mean())
                for b in probs["onnx"]["val"]
            },
        }
    np.savez_compressed(
        REPO_ROOT / "ml" / "runs" / "export_probs.npz",
        # Explicit, so the array names in **kwds cannot be read as this keyword.
        allow_pickle=True,
        **{f"{part}_{b}": p for part, d in probs[runtime].items() for b, p in d.items()},
    )
    _write_bundle(tmp_out, out, config, refer, metrics)
    return metrics


def retune(
    out: Path, *, threads: int = 2, split_csv: Path | None = None, torch_subset: int = 256
) -> dict:
    """Re-fit an existing bundle's calibration and thresholds on the calibration part,
    through its shipped runtime, without re-exporting the weights."""
    from ml.data import DEFAULT_SPLIT
    from ml.ensemble import Ensemble

    ens = Ensemble.load(out, threads=threads)
    # The largest input: each branch resizes the cached crop down to its own size.
    size = max(b.spec.size for b in ens.branches.values())
    images, rec, parts = _split_set(split_csv or DEFAULT_SPLIT, size)
    probs: dict[str, dict[str, np.ndarray]] = {}
    recs: dict[str, Records] = {}
    for part in ("calib", "val"):
        recs[part] = rec.subset(parts[part])
        # The cache holds the cropped, resized pictures: exactly what crop_fundus + resize give.
        probs[part] = ens.branch_probabilities(
            [np.asarray(images[i]) for i in parts[part]], cropped=True
        )
    calibration, refer, decision, results = decide(probs, recs)
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["calibration"] = calibration.to_config()
    config["weights"] = decision["weights"]
    config["decision"] = {k: v for k, v in decision.items() if k != "weights"}
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics[ens.runtime] = results
    metrics["thresholds_retuned"] = True
    if ens.runtime != "torch":
        # The shipped runtime against the PyTorch fallback, on the same validation eyes.
        torch_ens = Ensemble.load(out, threads=threads, runtime="torch")
        n = min(len(parts["val"]), torch_subset)
        pt = torch_ens.branch_probabilities(
            [np.asarray(images[i]) for i in parts["val"][:n]], cropped=True
        )
        metrics["onnx_vs_torch"] = {
            "eyes": n,
            "runtime": ens.runtime,
            "max_abs_prob_diff": {b: float(np.abs(probs["val"][b][:n] - pt[b]).max()) for b in pt},
            "mean_abs_prob_diff": {
                b: float(np.abs(probs["val"][b][:n] - pt[b]).mean()) for b in pt
            },
        }
    _write_bundle(out, out, config, refer, metrics)
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        default=[Path("ml/runs/lite0_color_448"), Path("ml/runs/lite0_gray")],
    )
    ap.add_argument("--out", type=Path, default=Path("ml/weights/default"))
    ap.add_argument("--checkpoint", default="best", choices=["best", "last"])
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument(
        "--int8",
        action="store_true",
        help="static int8 ONNX; ship only if `python -m ml.quantize` says it keeps the accuracy",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--cpu-runtime",
        default="onnx",
        choices=["onnx", "openvino", "torch"],
        help="the runtime CPU workers use (docs/benchmarks.md: chosen by measurement)",
    )
    ap.add_argument(
        "--retune-only",
        action="store_true",
        help="keep the bundle in --out, only re-fit calibration and thresholds on the calib part",
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
        cpu_runtime=args.cpu_runtime,
    )
    rt = m["shipped_runtime"]
    for name, res in m[rt].items():
        v = res["val"]
        o, sc = v["patient_odir"], v["screening"]
        print(
            f"{name:9s} eye macro AUC {v['eye_macro_auc']:.3f} | patient ODIR final "
            f"{o['final']:.3f} (kappa {o['kappa']:.3f}) | normal eyes flagged "
            f"{sc['normal_eyes_flagged']:.3f}, diseased flagged {sc['diseased_eyes_flagged']:.3f} | "
            f"patient refer sens {sc['patient']['sensitivity']:.3f} spec {sc['patient']['specificity']:.3f}"
        )
    print(f"exported {[r.name for r in runs]} to {out} in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
