"""Metrics and the patient split (no images, milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.data import DEFAULT_SPLIT, make_split, read_labels, read_split
from ml.metrics import odir_score, patient_aggregate
from tests.ml.ml_helpers import odir_dir


def test_patient_aggregate_takes_max_for_diseases_and_min_for_normal() -> None:
    eyes = np.array(
        [
            [0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2],  # patient 7, left
            [0.3, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1],  # patient 7, right
            [0.6, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0],  # patient 8, one eye only
        ]
    )
    pat, pids = patient_aggregate(eyes, ["7", "7", "8"])
    assert pids == ["7", "8"]
    assert pat[0, 0] == pytest.approx(0.3)  # normal only if both eyes are
    assert pat[0, 1] == pytest.approx(0.8) and pat[0, 7] == pytest.approx(0.2)
    assert np.allclose(pat[1], eyes[2])


def test_odir_score_is_kappa_micro_f1_auc_mean() -> None:
    gt = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    perfect = odir_score(gt, gt.astype(float))
    assert perfect == {"kappa": 1.0, "f1": 1.0, "auc": 1.0, "final": 1.0}
    noisy = odir_score(gt, np.array([[0.6, 0.4], [0.4, 0.7], [0.3, 0.9], [0.1, 0.2]]))
    assert noisy["final"] == pytest.approx((noisy["kappa"] + noisy["f1"] + noisy["auc"]) / 3)
    assert noisy["f1"] == pytest.approx(7 / 8)  # micro-F1 over both labels = accuracy


@pytest.mark.skipif(not (odir_dir() / "labels.csv").is_file(), reason="ODIR-5K folder not present")
def test_committed_split_is_by_patient_and_reproducible() -> None:
    rec = read_labels(odir_dir() / "labels.csv")
    split = read_split(DEFAULT_SPLIT)
    assert set(split) == set(rec.patient_ids)
    assert make_split(rec) == split  # same seed, same split
    val = sum(v == "val" for v in split.values()) / len(split)
    assert 0.18 < val < 0.22
    calib = sum(v == "calib" for v in split.values()) / len(split)
    assert 0.11 < calib < 0.14
    # Every class has validation positives in proportion.
    val_rows = np.array([split[p] == "val" for p in rec.patient_ids])
    share = rec.eye_labels[val_rows].sum(axis=0) / rec.eye_labels.sum(axis=0)
    assert np.all((share > 0.14) & (share < 0.27))
