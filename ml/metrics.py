"""Metrics shared by training, evaluation and threshold tuning."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score, roc_auc_score

from ml import CLASSES

N_INDEX = CLASSES.index("N")

PatientId = TypeVar("PatientId", bound=Hashable)


def patient_aggregate(
    eye_probs: np.ndarray, patient_ids: Sequence[PatientId]
) -> tuple[np.ndarray, list[PatientId]]:
    """Eye rows -> patient rows: per class the larger eye probability, for N the smaller.

    A patient has a disease if either eye has it and is normal only if both eyes are,
    which is how the ODIR labels were made.
    """
    order: dict[PatientId, list[int]] = {}
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
