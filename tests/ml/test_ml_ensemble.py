"""The workers' API on the shipped weights (no fakes): shapes, keys, version, heatmaps,
errors, and a real-data check that runs whenever the ODIR folder exists."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ml import CLASSES
from ml.ensemble import Ensemble, EyePrediction
from ml.preprocess import ImageError
from tests.ml.ml_helpers import WEIGHTS_DIR, encode, odir_dir, synthetic_fundus


def test_load_with_a_missing_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-weights"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        Ensemble.load(missing)


def test_load_with_a_missing_branch_file_names_it(tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(WEIGHTS_DIR, copy)
    (copy / "color.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="color.safetensors"):
        Ensemble.load(copy)


def test_predict_two_eyes(ensemble: Ensemble, retina: np.ndarray) -> None:
    preds = ensemble.predict([encode(retina, "JPEG", quality=92), synthetic_fundus()])
    assert len(preds) == 2
    assert re.fullmatch(r"lite0-[0-9a-f]{12}", ensemble.version)
    assert set(ensemble.thresholds) == set(CLASSES)
    for p in preds:
        assert isinstance(p, EyePrediction)
        assert tuple(p.probabilities) == CLASSES
        assert all(0.0 <= v <= 1.0 for v in p.probabilities.values())
        assert set(p.branch_probabilities) == set(ensemble.branches)
        for c in CLASSES:
            mean = np.mean([b[c] for b in p.branch_probabilities.values()])
            assert p.probabilities[c] == pytest.approx(mean, abs=1e-6)
        assert p.top_class == max(p.probabilities, key=p.probabilities.__getitem__)
        assert p.model_version == ensemble.version
        assert p.heatmap_png is not None and p.heatmap_png.startswith(b"\x89PNG\r\n\x1a\n")
        assert p.heatmap_class in CLASSES
        assert p.quality.gradable
        assert p.to_dict()["quality"]["gradable"] is True


def test_branches_cover_colour_and_gray(ensemble: Ensemble) -> None:
    assert set(ensemble.branches) == {"color", "gray"}


def test_predict_without_heatmaps_and_ungradable_input(ensemble: Ensemble) -> None:
    dark = (synthetic_fundus() * 0.1).astype(np.uint8)
    (p,) = ensemble.predict([dark], heatmaps=False)
    assert p.heatmap_png is None
    assert not p.quality.gradable and p.quality.issues[0].code == "too_dark"
    assert ensemble.predict([]) == []


def test_bad_bytes_raise_image_error(ensemble: Ensemble) -> None:
    with pytest.raises(ImageError) as exc:
        ensemble.predict([encode(synthetic_fundus()), b"<html>not a photo</html>"])
    assert exc.value.code == "not_an_image"


def test_pytorch_and_onnx_paths_agree(ensemble: Ensemble, retina: np.ndarray) -> None:
    if ensemble.runtime != "onnx":
        pytest.skip("bundle has no ONNX files")
    torch_ens = Ensemble.load(WEIGHTS_DIR, runtime="torch", threads=2)
    assert torch_ens.version == ensemble.version
    a = ensemble.predict([retina], heatmaps=False)[0].probabilities
    b = torch_ens.predict([retina], heatmaps=False)[0].probabilities
    # int8 vs fp16->fp32 weights: close, not identical.
    assert max(abs(a[c] - b[c]) for c in CLASSES) < 0.12


def _val_sample(n: int) -> tuple[list[Path], np.ndarray]:
    from ml.data import DEFAULT_SPLIT, read_labels, read_split

    root = odir_dir()
    rec = read_labels(root / "labels.csv")
    split = read_split(DEFAULT_SPLIT)
    val = [i for i, p in enumerate(rec.patient_ids) if split[p] == "val"]
    idx = np.random.default_rng(2024).choice(val, n, replace=False)
    return [root / "images" / rec.filenames[i] for i in idx], rec.eye_labels[idx]


@pytest.mark.skipif(not (odir_dir() / "labels.csv").is_file(), reason="ODIR-5K folder not present")
def test_shipped_weights_reach_auc_075_on_held_out_odir_images(ensemble: Ensemble) -> None:
    """300 fixed validation-split eyes (patients never seen in training).

    Measured: mean one-vs-rest AUC over the five classes with >= 15 positives in the
    sample (N, D, O and, depending on the draw, the larger rare classes), and the
    normal-vs-abnormal AUC that the screening decision rests on.
    """
    from sklearn.metrics import roc_auc_score

    from ml.preprocess import decode_image

    paths, y = _val_sample(300)
    probs = np.concatenate(
        [
            np.mean(
                list(
                    ensemble.branch_probabilities(
                        [decode_image(p.read_bytes()) for p in paths[i : i + 50]]
                    ).values()
                ),
                axis=0,
            )
            for i in range(0, len(paths), 50)
        ]
    )
    aucs = {
        c: roc_auc_score(y[:, j], probs[:, j]) for j, c in enumerate(CLASSES) if y[:, j].sum() >= 15
    }
    assert len(aucs) >= 3
    macro = float(np.mean(list(aucs.values())))
    abnormal = (y[:, 1:].sum(axis=1) > 0).astype(int)
    screening_auc = roc_auc_score(abnormal, 1 - probs[:, 0])
    print(f"AUC per class {aucs}, macro {macro:.3f}, abnormal-vs-normal {screening_auc:.3f}")
    assert macro > 0.75
    assert screening_auc > 0.75
