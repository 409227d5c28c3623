"""Calibrated probabilities and the one refer decision, chosen on the calibration split.

The network's sigmoids (averaged over the two branches) are not probabilities: the loss
weighted positives up and each class saw a different amount of data. Per class, a Platt
scaling ``q = sigmoid(a * logit(p) + b)`` fitted on the calibration part of the split
(patients never trained on) turns them into probabilities, so that 0.5 means "more likely
than not" for every class alike and the challenge score at 0.5 is meaningful.

The screening decision is one decision per eye, not seven (:mod:`ml.decision`): an eye is
*flagged* (and the patient referred) when some class's finding score
``e_c = w q_c + (1 - w)(1 - q_N)`` reaches the one shared threshold ``k``. ``w`` is picked on
calibration for the best refer AUC, ``k`` for the product's operating point; the per-class
thresholds the triage applies (``screening.triage``) all start at ``k``, so ``TriageRule`` and the
risk-factor rules move one class on the same scale. The naming thresholds (probability scale)
say which of the flagged classes the result names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml import CLASSES
from ml.decision import Decision
from ml.metrics import N_INDEX

DISEASE_INDEX = [i for i, c in enumerate(CLASSES) if c != "N"]
EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    """Per-class Platt scaling on the logit of the ensemble's mean sigmoid."""

    a: tuple[float, ...]
    b: tuple[float, ...]

    @classmethod
    def identity(cls) -> Calibration:
        return cls(a=(1.0,) * len(CLASSES), b=(0.0,) * len(CLASSES))

    @classmethod
    def fit(cls, probs: np.ndarray, labels: np.ndarray, *, c_reg: float = 1.0) -> Calibration:
        """Logistic regression of each class's label on its logit (L2, ``C=c_reg``): the
        small penalty keeps the rare classes' fits (20-40 positives) from running away."""
        from sklearn.linear_model import LogisticRegression

        a, b = [], []
        for j in range(len(CLASSES)):
            y = labels[:, j].astype(int)
            if y.min() == y.max():
                a.append(1.0)
                b.append(0.0)
                continue
            lr = LogisticRegression(C=c_reg)
            lr.fit(_logit(probs[:, j])[:, None], y)
            a.append(float(lr.coef_[0, 0]))
            b.append(float(lr.intercept_[0]))
        return cls(a=tuple(a), b=tuple(b))

    def apply(self, probs: np.ndarray) -> np.ndarray:
        z = _logit(np.asarray(probs, dtype=np.float64)) * np.asarray(self.a) + np.asarray(self.b)
        return 1.0 / (1.0 + np.exp(-z))

    def to_config(self) -> dict[str, Any]:
        return {
            "method": "platt",
            "classes": {c: {"a": self.a[j], "b": self.b[j]} for j, c in enumerate(CLASSES)},
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> Calibration:
        if not cfg:
            return cls.identity()
        if cfg.get("method") != "platt":
            raise ValueError(f"unknown calibration method {cfg.get('method')!r}")
        per = cfg["classes"]
        return cls(
            a=tuple(float(per[c]["a"]) for c in CLASSES),
            b=tuple(float(per[c]["b"]) for c in CLASSES),
        )


def eye_groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(normal, diseased) boolean masks over eyes. Eyes labelled with neither (only image-
    quality keywords in ODIR) belong to neither group."""
    diseased = labels[:, DISEASE_INDEX].sum(axis=1) > 0
    normal = (labels[:, N_INDEX] > 0) & ~diseased
    return normal, diseased


def finding_scores(q: np.ndarray, disease_weight: float) -> np.ndarray:
    """(n, 7) finding scores ``e_c = w q_c + (1 - w)(1 - q_N)`` (:mod:`ml.decision`)."""
    q = np.asarray(q, dtype=np.float64)
    d = q[:, DISEASE_INDEX]
    if disease_weight >= 1.0:
        return d
    return disease_weight * d + (1.0 - disease_weight) * (1.0 - q[:, [N_INDEX]])


def _threshold_row(thresholds: dict[str, float]) -> np.ndarray:
    return np.array([thresholds.get(CLASSES[j], 0.5) for j in DISEASE_INDEX])


def refer_score(probs: np.ndarray, decision: Decision) -> np.ndarray:
    """Per eye: the largest finding score relative to its threshold (flagged >= 1)."""
    e = finding_scores(probs, decision.disease_weight)
    return np.asarray((e / _threshold_row(decision.thresholds)).max(axis=1))


def flagged(probs: np.ndarray, decision: Decision) -> np.ndarray:
    """Exactly the triage's rule: some class's finding score at or above its threshold."""
    e = finding_scores(probs, decision.disease_weight)
    return np.asarray((e >= _threshold_row(decision.thresholds)).any(axis=1))


def _base_thresholds(q: np.ndarray, normal: np.ndarray, fpr: float = 0.05) -> np.ndarray:
    return np.array([max(EPS, float(np.quantile(q[normal, j], 1 - fpr))) for j in DISEASE_INDEX])


def _sweep(score_parts: np.ndarray, normal: np.ndarray, diseased: np.ndarray) -> tuple:
    """ROC of the refer score ``max_c score_parts[:, c]``: (fpr, tpr, cut) arrays."""
    s = score_parts.max(axis=1)
    cuts = np.unique(s)[::-1]
    tpr = np.array([(s[diseased] >= c).mean() for c in cuts])
    fpr = np.array([(s[normal] >= c).mean() for c in cuts])
    return fpr, tpr, cuts


def _place(
    parts: np.ndarray,
    normal: np.ndarray,
    diseased: np.ndarray,
    min_sensitivity: float,
    max_false_alarms: float,
) -> tuple[float, dict[str, float], str]:
    """The operating point on the ROC of ``max_c parts[:, c]``: (cut, the point, how placed)."""
    fpr, tpr, cuts = _sweep(parts, normal, diseased)
    margin = np.minimum(tpr - min_sensitivity, max_false_alarms - fpr)
    inside = margin >= 0
    if inside.any():
        i = int(np.argmax(margin))
        placement = "farthest inside the box"
    else:
        # No point meets both bars: keep the false-alarm bar and catch as many diseased eyes
        # as it allows. Over-referral was the failure that made the screen useless (every
        # patient referred); a missed eye still has the other eye, the risk-factor rules and
        # the yearly rescreen, and the shortfall is reported against its bar.
        ok = np.flatnonzero(fpr <= max_false_alarms)
        i = int(ok[np.argmax(tpr[ok])]) if ok.size else int(np.argmax(margin))
        placement = "false-alarm bar kept (no point meets both bars)"
    # Halfway to the next cut, so an eye sitting exactly on the threshold does not flip
    # with float noise (another runtime, thread count or batch size).
    k = float((cuts[i] + cuts[i + 1]) / 2) if i + 1 < len(cuts) else float(cuts[i])
    point = {
        "diseased_eyes_flagged": float(tpr[i]),
        "normal_eyes_flagged": float(fpr[i]),
        "margin": float(margin[i]),
    }
    return k, point, placement


def risk_factor_points(
    q: np.ndarray, labels: np.ndarray, decision: Decision, *, extra_false_alarms: float = 0.10
) -> dict[str, dict[str, float]]:
    """Where the shipped risk-factor rules put the D (diabetes) and G (family history of
    glaucoma) thresholds, read off the calibration split on the finding-score scale (screening
    migration 0007 ships them). For a patient with the risk factor a missed case costs more, so
    that class may flag ``extra_false_alarms`` more of the normal eyes than at the shared
    threshold: the threshold is where the class's own score flags that share of the
    calibration normals. Reported with the sensitivity it buys on that class's eyes."""
    normal, _ = eye_groups(labels)
    e = finding_scores(q, decision.disease_weight)
    out = {}
    for code in ("D", "G"):
        col = DISEASE_INDEX.index(CLASSES.index(code))
        pos = labels[:, CLASSES.index(code)] > 0
        shared = decision.thresholds[code]
        rate = float((e[normal, col] >= shared).mean())
        cut = float(np.quantile(e[normal, col], 1 - min(1.0, rate + extra_false_alarms)))
        # Rounded up: the rule's false alarms stay within the budget.
        t = min(shared, float(np.ceil(cut * 1000) / 1000))
        out[code] = {
            "threshold": t,
            "eyes": int(pos.sum()),
            "sensitivity": float((e[pos, col] >= t).mean()),
            "sensitivity_at_shared": float((e[pos, col] >= shared).mean()),
            "normal_eyes_flagged_by_class": float((e[normal, col] >= t).mean()),
            "normal_eyes_flagged_by_class_at_shared": rate,
        }
    return out


def choose_thresholds(
    q: np.ndarray,
    labels: np.ndarray,
    *,
    min_sensitivity: float = 0.80,
    max_false_alarms: float = 0.30,
    disease_weights: Sequence[float] = (1.0, 0.75, 0.5, 0.25),
) -> tuple[Decision, dict[str, Any]]:
    """The refer decision from calibrated probabilities: the disease weight ``w``, one shared
    threshold on the finding score, and the naming thresholds.

    ``w`` maximises the AUC of the refer score ``max_c e_c``, normal vs diseased eyes (the
    whole curve: one point of it was too noisy on 300 + 380 eyes). Then the threshold is the
    point of the refer ROC farthest inside the box (sensitivity >= ``min_sensitivity``,
    false alarms <= ``max_false_alarms``): the largest of min(sens - min_sensitivity,
    max_false_alarms - fpr), so a shift of camera or population in either direction has the
    same room before it breaks the bar. Where no point is inside the box, the false-alarm bar
    is kept and sensitivity is as high as it allows. The naming threshold is the same placement
    for the classes' own probabilities (``w = 1``). ``N`` gets 0.5 (it names nothing and refers
    nobody; the eye is normal when no disease is flagged).
    """
    from sklearn.metrics import roc_auc_score

    normal, diseased = eye_groups(labels)
    keep = normal | diseased
    base = _base_thresholds(q, normal)
    per_weight = {}
    for w in disease_weights:
        score = finding_scores(q, w).max(axis=1)
        per_weight[w] = float(roc_auc_score(diseased[keep], score[keep]))
    # Ties go to the larger weight (the simpler rule: closer to a class's own probability).
    weight = max(disease_weights, key=lambda w: (round(per_weight[w], 9), w))
    k, point, placement = _place(
        finding_scores(q, weight), normal, diseased, min_sensitivity, max_false_alarms
    )
    # Naming: the same placement for each class's own probability (w = 1), one probability
    # for every class. A per-class level (where 5% of normals score) would name noise: myopia's
    # is below 0.01 on the calibration split, so nearly every flagged eye would name it too.
    k_name, _, _ = _place(
        finding_scores(q, 1.0), normal, diseased, min_sensitivity, max_false_alarms
    )
    thresholds = {"N": 0.5}
    names = {"N": 0.5}
    for j in DISEASE_INDEX:
        thresholds[CLASSES[j]] = float(min(0.99, k))
        names[CLASSES[j]] = float(min(0.99, k_name))
    decision = Decision(thresholds=thresholds, name_thresholds=names, disease_weight=weight)
    info = {
        "rule": "flag an eye when some class's finding score w*q_c + (1-w)*(1-q_N) (calibrated "
        "probabilities) reaches the shared threshold k; name the flagged classes whose q_c "
        "reaches the naming threshold (the same placement for q_c alone)",
        "disease_weight": weight,
        "k": k,
        "refer_auc_by_disease_weight": {str(w): v for w, v in per_weight.items()},
        "k_name": k_name,
        "base_5pct_fpr": {CLASSES[j]: float(base[n]) for n, j in enumerate(DISEASE_INDEX)},
        "placement": placement,
        "calibration_point": point,
        "bar": {
            "min_diseased_flagged": min_sensitivity,
            "max_normal_flagged": max_false_alarms,
        },
    }
    info["risk_factor_points"] = risk_factor_points(q, labels, decision)
    return decision, info


def patient_refer(
    eye_flags: np.ndarray, eye_labels: np.ndarray, patient_ids: Sequence[str]
) -> dict[str, float]:
    """Patient-level refer decision (either eye flagged) against the patient's truth
    (either eye diseased = should be referred; both eyes normal = should not)."""
    normal, diseased = eye_groups(eye_labels)
    by: dict[str, list[int]] = {}
    for i, p in enumerate(patient_ids):
        by.setdefault(p, []).append(i)
    tp = fn = tn = fp = 0
    for idx in by.values():
        ref = bool(eye_flags[idx].any())
        if diseased[idx].any():
            tp, fn = tp + ref, fn + (not ref)
        elif normal[idx].all():
            fp, tn = fp + ref, tn + (not ref)
    return {
        "patients_to_refer": tp + fn,
        "patients_normal": tn + fp,
        "sensitivity": tp / max(1, tp + fn),
        "specificity": tn / max(1, tn + fp),
    }


def screening_summary(
    q: np.ndarray, labels: np.ndarray, patient_ids: Sequence[str], decision: Decision
) -> dict[str, Any]:
    """The numbers the product is judged on, at the shipped thresholds."""
    from sklearn.metrics import roc_auc_score

    normal, diseased = eye_groups(labels)
    f = flagged(q, decision)
    keep = normal | diseased
    s = refer_score(q, decision)
    return {
        "eyes_normal": int(normal.sum()),
        "eyes_diseased": int(diseased.sum()),
        "normal_eyes_flagged": float(f[normal].mean()),
        "diseased_eyes_flagged": float(f[diseased].mean()),
        "refer_auc_eye": float(roc_auc_score(diseased[keep], s[keep])),
        "patient": patient_refer(f, labels, patient_ids),
    }


def refer_roc(
    q: np.ndarray, labels: np.ndarray, decision: Decision
) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of the refer score over normal vs diseased eyes, for plots."""
    normal, diseased = eye_groups(labels)
    s = refer_score(q, decision)
    fpr, tpr, _ = _sweep(s[:, None], normal, diseased)
    return np.concatenate([[0.0], fpr, [1.0]]), np.concatenate([[0.0], tpr, [1.0]])


def reliability(q: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, list[float] | list[int]]:
    """Reliability-diagram points for all classes pooled: mean predicted vs observed."""
    p, t = q.reshape(-1), y.reshape(-1)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    pred: list[float] = []
    obs: list[float] = []
    n: list[int] = []
    for b in range(bins):
        m = which == b
        if m.any():
            pred.append(float(p[m].mean()))
            obs.append(float(t[m].mean()))
            n.append(int(m.sum()))
    ece = float(sum(k * abs(a - o) for a, o, k in zip(pred, obs, n, strict=True)) / max(1, sum(n)))
    return {"predicted": pred, "observed": obs, "count": n, "ece": [ece]}
