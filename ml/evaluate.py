"""Evaluate a shipped bundle: ``python -m ml.evaluate --weights DIR --images DIR --labels CSV [--out report.json]``.

``--labels`` is either an ODIR-style labels.csv (eye_N..eye_O, patient_N..patient_O):
then each branch and the ensemble are scored eye-level and patient-level (per-class AUC,
sensitivity, specificity, F1 at the bundle's thresholds; the ODIR challenge score at
0.5) with ROC plots; or a CSV ``filename,expected`` (one class letter each): then the
detection rate per expected class is reported. ``--split CSV --subset val`` restricts
an ODIR labels file to one side of the patient split (the model card's numbers).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ml import CLASSES
from ml.calibration import flagged, screening_summary
from ml.data import Records, read_labels, read_split
from ml.decision import eye_findings
from ml.ensemble import Ensemble
from ml.metrics import macro_auc, odir_score, patient_aggregate, per_class_metrics
from ml.preprocess import ImageError, decode_image


def _load_images(
    images_dir: Path, names: list[str]
) -> tuple[list[np.ndarray], list[int], dict[str, str]]:
    rgbs, keep, errors = [], [], {}
    for i, fn in enumerate(names):
        try:
            rgbs.append(decode_image((images_dir / fn).read_bytes()))
            keep.append(i)
        except (ImageError, FileNotFoundError) as exc:
            errors[fn] = getattr(exc, "code", "missing")
    return rgbs, keep, errors


def _probs(ens: Ensemble, rgbs: list[np.ndarray], chunk: int = 128) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(rgbs), chunk):
        for b, p in ens.branch_probabilities(rgbs[i : i + chunk]).items():
            parts.setdefault(b, []).append(p)
    probs = {b: np.concatenate(v) for b, v in parts.items()}
    if len(probs) > 1:
        probs["ensemble"] = ens.ensemble_probabilities({b: probs[b] for b in ens.branches})
    return probs


def evaluate_odir(ens: Ensemble, rec: Records, probs: dict[str, np.ndarray]) -> dict[str, Any]:
    first = {pid: i for i, pid in reversed(list(enumerate(rec.patient_ids)))}
    res: dict[str, Any] = {}
    for name, p in probs.items():
        pat, pids = patient_aggregate(p, rec.patient_ids)
        pgt = rec.patient_labels[[first[q] for q in pids]]
        res[name] = {
            "eye": {
                "n": len(p),
                "macro_auc": macro_auc(rec.eye_labels, p),
                "odir_style": odir_score(rec.eye_labels, p),
                "per_class": per_class_metrics(rec.eye_labels, p, ens.decision.name_thresholds),
            },
            "patient": {
                "n": len(pids),
                "macro_auc": macro_auc(pgt, pat),
                "odir": odir_score(pgt, pat),
                "per_class": per_class_metrics(pgt, pat, ens.decision.name_thresholds),
            },
        }
        if name == "ensemble" or len(probs) == 1:
            # The product's decision: flagged eyes and referred patients at the shipped
            # thresholds (branches alone are uncalibrated, so only their AUCs compare).
            res[name]["screening"] = screening_summary(
                p, rec.eye_labels, rec.patient_ids, ens.decision
            )
    return res


def roc_plots(rec: Records, probs: dict[str, np.ndarray], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, p in probs.items():
        fig, ax = plt.subplots(figsize=(6, 6))
        for j, c in enumerate(CLASSES):
            y = rec.eye_labels[:, j]
            if 0 < y.sum() < len(y):
                fpr, tpr, _ = roc_curve(y, p[:, j])
                ax.plot(fpr, tpr, label=f"{c} AUC {roc_auc_score(y, p[:, j]):.3f}")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=f"{name}: eye-level ROC")
        ax.legend(loc="lower right", fontsize=8)
        path = out_dir / f"roc_{name}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(str(path))
    return written


def decision_plots(
    ens: Ensemble, rec: Records, probs: dict[str, np.ndarray], out_dir: Path
) -> list[str]:
    """The refer ROC (normal vs diseased eyes) with the shipped operating point, and the
    reliability diagram of the ensemble before and after its calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ml.calibration import eye_groups, refer_roc, reliability

    out_dir.mkdir(parents=True, exist_ok=True)
    q = probs["ensemble"] if "ensemble" in probs else next(iter(probs.values()))
    normal, diseased = eye_groups(rec.eye_labels)
    f = flagged(q, ens.decision)
    fig, ax = plt.subplots(figsize=(6, 6))
    fpr, tpr = refer_roc(q, rec.eye_labels, ens.decision)
    ax.plot(fpr, tpr, label="ensemble refer score")
    for b in ens.branches:
        if b in probs:
            bq = ens.calibration.apply(probs[b])
            bf, bt = refer_roc(bq, rec.eye_labels, ens.decision)
            ax.plot(bf, bt, lw=0.8, alpha=0.7, label=f"{b} branch alone (ensemble calibration)")
    ax.plot(
        [f[normal].mean()], [f[diseased].mean()], "ro",
        label=f"shipped point: {100 * f[diseased].mean():.0f}% diseased, "
        f"{100 * f[normal].mean():.0f}% normal flagged",
    )  # fmt: skip
    ax.axvline(0.30, color="grey", ls=":", lw=0.8)
    ax.axhline(0.80, color="grey", ls=":", lw=0.8)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="normal eyes flagged (1 - specificity)", ylabel="diseased eyes flagged")
    ax.set_title("Refer decision, eye level")
    ax.legend(loc="lower right", fontsize=8)
    roc_path = out_dir / "refer_roc.png"
    fig.savefig(roc_path, dpi=90, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 6))
    raw = np.mean([probs[b] for b in ens.branches if b in probs], axis=0)
    for name, p in (("mean sigmoid (uncalibrated)", raw), ("calibrated (shipped)", q)):
        r = reliability(p, rec.eye_labels)
        ax.plot(r["predicted"], r["observed"], "o-", label=f"{name}, ECE {r['ece'][0]:.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="predicted probability", ylabel="observed frequency")
    ax.set_title("Calibration, all classes pooled, eye level")
    ax.legend(loc="upper left", fontsize=8)
    cal_path = out_dir / "calibration.png"
    fig.savefig(cal_path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return [str(roc_path), str(cal_path)]


def evaluate_expected(
    ens: Ensemble, rows: list[dict], probs: dict[str, np.ndarray]
) -> dict[str, Any]:
    p = probs.get("ensemble", next(iter(probs.values())))
    flags = flagged(p, ens.decision)
    d = ens.decision
    # What the result names for each eye (ml.decision): "detected" means named.
    named = [
        eye_findings(
            {c: float(p[i, j]) for j, c in enumerate(CLASSES)},
            d.thresholds,
            disease_weight=d.disease_weight,
            name_thresholds=d.name_thresholds,
        )[1]
        for i in range(len(rows))
    ]
    per: dict[str, dict[str, float]] = {}
    for c in CLASSES:
        idx = [i for i, r in enumerate(rows) if r["expected"] == c]
        if not idx:
            continue
        # N is "detected" when nothing is named.
        detected = np.array([(c in named[i]) if c != "N" else not named[i] for i in idx])
        top = np.array([CLASSES[int(np.argmax(p[i]))] == c for i in idx])
        per[c] = {
            "n": len(idx),
            "detection_rate": float(detected.mean()),
            "top_class_rate": float(top.mean()),
            # Any disease flagged (the triage's refer rule): for N the false-alarm rate.
            "flagged_rate": float(flags[idx].mean()),
        }
    return {
        "per_expected_class": per,
        "predictions": [
            {
                "filename": r["filename"],
                "expected": r["expected"],
                "detected": (r["expected"] in named[i]) if r["expected"] != "N" else not named[i],
                "top_class": CLASSES[int(np.argmax(p[i]))],
                "flagged": bool(flags[i]),
            }
            for i, r in enumerate(rows)
        ],
    }


def print_table(res: dict[str, Any]) -> None:
    for name, r in res.items():
        if "screening" in r:
            sc = r["screening"]
            print(
                f"\n== {name} at the shipped thresholds: normal eyes flagged "
                f"{sc['normal_eyes_flagged']:.3f} (n={sc['eyes_normal']}), diseased eyes flagged "
                f"{sc['diseased_eyes_flagged']:.3f} (n={sc['eyes_diseased']}); patients: refer "
                f"sensitivity {sc['patient']['sensitivity']:.3f}, specificity "
                f"{sc['patient']['specificity']:.3f}"
            )
        o = r["patient"]["odir"]
        print(
            f"\n== {name}: eye macro AUC {r['eye']['macro_auc']:.3f} | patient ODIR kappa {o['kappa']:.3f} "
            f"F1(micro) {o['f1']:.3f} AUC {o['auc']:.3f} final {o['final']:.3f}"
        )
        print("   class   eye AUC  sens   spec   F1    | patient AUC  sens   spec   F1   (thr)")
        for c in CLASSES:
            e, p = r["eye"]["per_class"][c], r["patient"]["per_class"][c]
            print(
                f"   {c:5s}   {e['auc']:.3f}   {e['sensitivity']:.3f}  {e['specificity']:.3f}  {e['f1']:.3f} |"
                f"   {p['auc']:.3f}   {p['sensitivity']:.3f}  {p['specificity']:.3f}  {p['f1']:.3f} ({e['threshold']:.3f})"
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--weights", type=Path, default=Path("ml/weights/default"))
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--split", type=Path, help="patient split CSV (patient_id,split)")
    ap.add_argument("--subset", default="val", help="which side of --split to use")
    ap.add_argument("--limit", type=int, default=0, help="first N images only (quick checks)")
    ap.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="report JSON (plots go beside it)")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    ens = Ensemble.load(args.weights, threads=args.threads, runtime=args.runtime)
    with open(args.labels, newline="") as fh:
        header = next(csv.reader(fh))
    report: dict[str, Any] = {
        "weights": str(args.weights),
        "model_version": ens.version,
        "runtime": ens.runtime,
    }
    if "expected" in header:
        with open(args.labels, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["expected"] in CLASSES]
        rows = rows[: args.limit] if args.limit else rows
        rgbs, keep, errors = _load_images(args.images, [r["filename"] for r in rows])
        rows = [rows[i] for i in keep]
        res = evaluate_expected(ens, rows, _probs(ens, rgbs))
        report.update(mode="expected", unreadable=errors, **res)
        for c, v in res["per_expected_class"].items():
            print(
                f"{c}: n={v['n']:4d} detected {100 * v['detection_rate']:.1f}%  top class "
                f"{100 * v['top_class_rate']:.1f}%  flagged (any disease) {100 * v['flagged_rate']:.1f}%"
            )
    else:
        rec = read_labels(args.labels)
        if args.split:
            split = read_split(args.split)
            rec = rec.subset(
                np.array([i for i, p in enumerate(rec.patient_ids) if split.get(p) == args.subset])
            )
        if args.limit:
            rec = rec.subset(np.arange(min(args.limit, len(rec.filenames))))
        rgbs, keep, errors = _load_images(args.images, rec.filenames)
        rec = rec.subset(np.array(keep))
        probs = _probs(ens, rgbs)
        res = evaluate_odir(ens, rec, probs)
        report.update(mode="odir", unreadable=errors, results=res)
        print_table(res)
        if args.out:
            report["roc_plots"] = roc_plots(rec, probs, args.out.parent / (args.out.stem + "_roc"))
            report["decision_plots"] = decision_plots(ens, rec, probs, args.out.parent)
    report["seconds"] = time.monotonic() - t0
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=float))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
