"""Calibration and the one refer decision (numbers only, milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from ml import CLASSES
from ml.calibration import (
    DISEASE_INDEX,
    Calibration,
    choose_thresholds,
    eye_groups,
    flagged,
    patient_refer,
    refer_score,
    reliability,
)


def _synthetic(n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eyes that are normal (45%), diseased with one class, or unlabelled (5%), and
    over-confident sigmoids (what a positive-weighted loss gives)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, len(CLASSES)))
    kind = rng.random(n)
    labels[kind < 0.45, 0] = 1
    sick = (kind >= 0.45) & (kind < 0.95)
    cls = rng.choice(DISEASE_INDEX, size=n, p=[0.45, 0.08, 0.08, 0.08, 0.06, 0.07, 0.18])
    labels[sick, cls[sick]] = 1
    z = rng.normal(0, 1, labels.shape) + 2.2 * labels - 1.0
    return 1 / (1 + np.exp(-z)), labels


def test_platt_scaling_makes_probabilities_honest() -> None:
    probs, labels = _synthetic()
    cal = Calibration.fit(probs[:600], labels[:600])
    q = cal.apply(probs[600:])
    before = reliability(probs[600:], labels[600:])["ece"][0]
    after = reliability(q, labels[600:])["ece"][0]
    assert after < before / 2
    # Monotone per class: calibration never reorders eyes, so every AUC is unchanged.
    for j in range(len(CLASSES)):
        order = np.argsort(probs[600:, j])
        assert np.all(np.diff(q[order, j]) >= -1e-12)
    # The round trip through the bundle's config keeps the numbers.
    again = Calibration.from_config(cal.to_config()).apply(probs[600:])
    assert np.allclose(again, q)
    assert np.allclose(Calibration.identity().apply(probs), probs)
    with pytest.raises(ValueError, match="isotonic"):
        Calibration.from_config({"method": "isotonic"})


def test_one_operating_point_is_the_per_class_rule_and_sits_inside_the_bar() -> None:
    probs, labels = _synthetic()
    q = Calibration.fit(probs, labels).apply(probs)
    thr, info = choose_thresholds(q, labels)
    assert set(thr.thresholds) == set(CLASSES) and thr.thresholds["N"] == 0.5
    # One shared threshold; the weight is the one with the best refer AUC on this data.
    assert len({v for c, v in thr.thresholds.items() if c != "N"}) == 1
    aucs = info["refer_auc_by_disease_weight"]
    assert aucs[str(thr.disease_weight)] == max(aucs.values())
    # The triage's per-class rule and the refer score are one decision.
    assert np.array_equal(flagged(q, thr), refer_score(q, thr) >= 1)
    normal, diseased = eye_groups(labels)
    f = flagged(q, thr)
    point = info["calibration_point"]
    assert f[diseased].mean() == pytest.approx(point["diseased_eyes_flagged"])
    assert f[normal].mean() == pytest.approx(point["normal_eyes_flagged"])
    # Farthest inside the box: both margins positive and nearly equal on this easy data.
    assert info["placement"] == "farthest inside the box"
    sens_margin = f[diseased].mean() - 0.80
    fpr_margin = 0.30 - f[normal].mean()
    assert sens_margin > 0 and fpr_margin > 0
    assert abs(sens_margin - fpr_margin) < 0.03
    # Far fewer false alarms than seven independent 90%-sensitivity thresholds would give.
    assert f[normal].mean() < 0.30


def test_where_no_point_meets_both_bars_the_false_alarm_bar_is_kept() -> None:
    """A weak model: no operating point gives >= 80% of diseased eyes with <= 30% of the
    normal ones. The rule then keeps the false-alarm bar and is as sensitive as it allows,
    instead of splitting the shortfall (which referred too many healthy patients)."""
    rng = np.random.default_rng(1)
    probs, labels = _synthetic()
    probs = 1 / (1 + np.exp(-(np.log(probs / (1 - probs)) * 0.35 + rng.normal(0, 1, probs.shape))))
    q = Calibration.fit(probs, labels).apply(probs)
    thr, info = choose_thresholds(q, labels)
    normal, diseased = eye_groups(labels)
    f = flagged(q, thr)
    assert info["placement"].startswith("false-alarm bar kept")
    assert f[normal].mean() <= 0.30 < f[normal].mean() + 0.02
    assert f[diseased].mean() < 0.80
    # No lower cut keeps the bar: one step more sensitive and the bar breaks.
    score = refer_score(q, thr)
    looser = score >= np.max(score[score < 1])
    assert looser[normal].mean() > 0.30


def test_the_finding_score_uses_p_normal_where_it_ranks_better() -> None:
    """Eyes whose disease outputs are all unsure but whose N output says "not normal": the mean
    of the two ranks them above normal eyes where the largest disease output alone cannot."""
    from ml.calibration import finding_scores
    from ml.decision import Decision, eye_findings

    rng = np.random.default_rng(3)
    n = 800
    labels = np.zeros((n, len(CLASSES)))
    labels[: n // 2, 0] = 1
    labels[n // 2 :, rng.choice(DISEASE_INDEX, n // 2)] = 1
    sick = labels[:, 0] == 0
    q = rng.uniform(0.0, 0.3, labels.shape)
    q[:, 0] = np.where(sick, rng.uniform(0.0, 0.6, n), rng.uniform(0.4, 1.0, n))
    decision, info = choose_thresholds(q, labels)
    aucs = info["refer_auc_by_disease_weight"]
    assert decision.disease_weight < 1.0
    assert aucs[str(decision.disease_weight)] > aucs["1.0"] + 0.1
    e = finding_scores(q, decision.disease_weight)
    assert np.allclose(
        e, decision.disease_weight * q[:, 1:] + (1 - decision.disease_weight) * (1 - q[:, [0]])
    )
    # ml.decision (what the triage and the workers run) agrees with the arrays, eye by eye.
    f = flagged(q, decision)
    for i in range(0, n, 37):
        hits, named = eye_findings(
            dict(zip(CLASSES, q[i], strict=True)),
            decision.thresholds,
            disease_weight=decision.disease_weight,
            name_thresholds=decision.name_thresholds,
        )
        assert bool(hits) == bool(f[i]) == bool(named)
        assert set(named) <= set(hits)
    again = Decision.from_json(decision.to_json(rule="x"))
    assert again == decision


def test_unlabelled_eyes_are_neither_normal_nor_diseased() -> None:
    labels = np.zeros((3, len(CLASSES)))
    labels[0, 0] = 1
    labels[1, 1] = 1
    normal, diseased = eye_groups(labels)
    assert normal.tolist() == [True, False, False]
    assert diseased.tolist() == [False, True, False]


def test_patient_is_referred_when_either_eye_is_flagged() -> None:
    labels = np.zeros((6, len(CLASSES)))
    labels[[0, 1, 2, 4, 5], 0] = 1  # patient a: both normal; b: one diseased; c: both normal
    labels[3, 1] = 1
    labels[2, 0] = 1
    pids = ["a", "a", "b", "b", "c", "c"]
    flags = np.array([False, False, False, True, True, False])
    r = patient_refer(flags, labels, pids)
    assert r == {
        "patients_to_refer": 1,
        "patients_normal": 2,
        "sensitivity": 1.0,
        "specificity": 0.5,
    }
