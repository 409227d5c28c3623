"""Metrics shared by training, evaluation and threshold tuning."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score, roc_auc_score

from ml import CLASSES

N_INDEX = CLASSES.index("N")


def patient_aggregate(
    eye_probs: np.ndarray, patient_ids: Sequence[int | str]
) -> tuple[np.ndarray, list[int | str]]:
    """Eye rows -> patient rows: per class the larger eye probability, for N the smaller.

    A patient has a disease if either eye has it and is normal only if both eyes are,
    which is how the ODIR labels were made.
    """
    order: dict[int | str, list[int]] = {}
    for i, pid in enumerate(patient_ids):
        order.setdefault(pid, []).append(i)
    out = np.zeros((len(order), eye_probs.shape[1]), dtype=np.float64)
    for row, idx in enumerate(order.values()):
        block = eye_probs[idx]
        out[row] = block.max(axis=0)
        out[row, N_INDEX] = block[:, N_INDEX].min()
    return out, list(order)


def odir_score(gt: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The ODIR-5K challenge score on a (patients x 8) matrix, exactly as the organisers'
    script: flatten, threshold 0.5, kappa + micro-F1 + AUC, averaged."""
    g = gt.reshape(-1).astype(int)
    p = probs.reshape(-1)
    pred = (p > threshold).astype(int)
    kappa = float(cohen_kappa_score(g, pred))
    f1 = float(f1_score(g, pred, average="micro"))
    auc = float(roc_auc_score(g, p))
    return {"kappa": kappa, "f1": f1, "auc": auc, "final": (kappa + f1 + auc) / 3.0}


def per_class_metrics(
    gt: np.ndarray, probs: np.ndarray, thresholds: dict[str, float] | None = None
) -> dict[str, dict[str, float]]:
    """Per-class AUC, sensitivity, specificity, F1 (positive class) at each class's threshold."""
    out: dict[str, dict[str, float]] = {}
    for j, c in enumerate(CLASSES):
        y = gt[:, j].astype(int)
        thr = 0.5 if thresholds is None else float(thresholds[c])
        pred = (probs[:, j] >= thr).astype(int)
        tp = int(((pred == 1) & (y == 1)).sum())
        tn = int(((pred == 0) & (y == 0)).sum())
        fp = int(((pred == 1) & (y == 0)).sum())
        fn = int(((pred == 0) & (y == 1)).sum())
        auc = float(roc_auc_score(y, probs[:, j])) if 0 < y.sum() < len(y) else float("nan")
        sens = tp / (tp + fn) if tp + fn else float("nan")
        spec = tn / (tn + fp) if tn + fp else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        out[c] = {
            "auc": auc,
            "sensitivity": sens,
            "specificity": spec,
            "f1": f1,
            "threshold": thr,
            "positives": int(y.sum()),
            "n": len(y),
        }
    return out


def macro_auc(gt: np.ndarray, probs: np.ndarray) -> float:
    aucs = [
        roc_auc_score(gt[:, j], probs[:, j])
        for j in range(gt.shape[1])
        if 0 < gt[:, j].sum() < len(gt)
    ]
    return float(np.mean(aucs)) if aucs else float("nan")


def tune_thresholds(
    gt: np.ndarray, probs: np.ndarray, *, min_sensitivity: float = 0.90
) -> dict[str, float]:
    """Per-class decision thresholds from validation.

    Disease classes: the highest threshold that still gives >= ``min_sensitivity`` (a
    screening programme misses as few cases as it can and lets the doctor weed out false
    alarms). N: the threshold that maximises Youden's J, because "normal" is never the
    finding that triggers a referral and a 90%-sensitivity rule on it would mean flagging
    almost every abnormal eye as normal too.
    """
    out: dict[str, float] = {}
    for j, c in enumerate(CLASSES):
        y = gt[:, j].astype(bool)
        p = probs[:, j]
        if y.sum() == 0 or y.all():
            out[c] = 0.5
            continue
        if c == "N":
            cands = np.unique(p)
            best, best_t = -1.0, 0.5
            for t in cands:
                pred = p >= t
                j_stat = pred[y].mean() + (~pred[~y]).mean() - 1
                if j_stat > best:
                    best, best_t = j_stat, float(t)
            out[c] = best_t
            continue
        pos = np.sort(p[y])
        # Keep at least ceil(0.9 * positives) of them at or above the threshold.
        k = int(np.floor((1 - min_sensitivity) * len(pos)))
        # Halfway down to the next lower score: the same validation decisions, but a
        # positive sitting exactly on the threshold no longer flips with float noise
        # (another thread count or batch size in ONNX Runtime).
        below = p[p < pos[k]]
        out[c] = float((pos[k] + below.max()) / 2) if below.size else float(pos[k])
    return out
