"""Train one branch: ``python -m ml.train --config ml/configs/lite0_color.yaml [--set k=v ...]``.

Recipe (Wang et al., IEEE Access 2020): BCE, Adam lr 1e-3, ReduceLROnPlateau on the
patient-level ODIR final score (factor 0.2, patience 4, min_delta 0.001), early stopping
on validation loss (patience 5), keep the checkpoint with the best final score.

Resumable: ``last.pt`` is written after every epoch and every ``checkpoint_minutes``
within one; running the same command again continues from it (mid-epoch included).
Runs unchanged on a GPU (``device: auto``).
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting for each other burn the CPU share a shared machine
# gives us: with 10+ runnable processes on 2 cores a spinning run did ~50 s per batch and a
# passive one ~13 s. Must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import copy
import csv
import fcntl
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from ml.data import (
    DEFAULT_SPLIT,
    REPO_ROOT,
    Records,
    batches,
    build_cache,
    default_odir_dir,
    load_or_make_split,
    read_labels,
    write_split,
)
from ml.metrics import macro_auc, odir_score, patient_aggregate
from ml.model import create_model
from ml.preprocess import InputSpec

DEFAULTS: dict[str, Any] = {
    "name": "lite0_color",
    "branch": "color",
    "out": "ml/runs/lite0_color",
    "data": {
        "dir": None,
        "split": str(DEFAULT_SPLIT.relative_to(REPO_ROOT)),
        "cache_dir": "ml/.cache",
    },
    "model": {
        "arch": "tf_efficientnet_lite0",
        "drop_rate": 0.3,
        "drop_path_rate": 0.1,
        "imagenet_weights": None,
    },
    "input": {
        "size": 224,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "equalize": "hist",
    },
    "train": {
        "epochs": 30,
        "batch_size": 32,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "pos_weight": "sqrt",  # none | sqrt | full : neg/pos ratio per class, capped
        "pos_weight_cap": 10.0,
        "plateau": {"factor": 0.2, "patience": 4, "min_delta": 0.001},
        "early_stop_patience": 5,
        "checkpoint_minutes": 10,
        "threads": 2,
        "device": "auto",
        "seed": 0,
        "max_train_batches": None,  # smoke tests only
        "max_val_images": None,
        "channels_last": True,
        "augment": {
            "vflip": 0.5,
            "rotate": 15,
            "scale": 0.1,
            "shift": 0.05,
            "brightness": 0.2,
            "contrast": 0.2,
        },
    },
}


def deep_update(base: dict, new: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in new.items():
        out[k] = (
            deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def apply_override(cfg: dict, item: str) -> None:
    """``train.epochs=6`` -> cfg["train"]["epochs"] = 6 (value parsed as YAML)."""
    key, _, raw = item.partition("=")
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = yaml.safe_load(raw)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        cfg = deep_update(cfg, yaml.safe_load(Path(path).read_text()) or {})
    for item in overrides or []:
        apply_override(cfg, item)
    return cfg


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def input_spec(cfg: dict) -> InputSpec:
    i = cfg["input"]
    return InputSpec(
        branch=cfg["branch"],
        size=int(i["size"]),
        mean=tuple(i["mean"]),
        std=tuple(i["std"]),
        equalize=i["equalize"],
    )


def pos_weights(labels: np.ndarray, mode: str, cap: float) -> torch.Tensor | None:
    if mode == "none":
        return None
    pos = labels.sum(axis=0).clip(min=1)
    ratio = (len(labels) - pos) / pos
    w = np.sqrt(ratio) if mode == "sqrt" else ratio
    return torch.tensor(np.clip(w, 1.0, cap), dtype=torch.float32)


@torch.inference_mode()
def predict_arrays(
    model: nn.Module,
    images: np.ndarray,
    spec: InputSpec,
    device: torch.device,
    batch_size: int = 64,
) -> np.ndarray:
    model.eval()
    out = []
    order = np.arange(len(images))
    for _, x, _ in batches(
        images, np.zeros((len(images), 1)), spec, batch_size=batch_size, order=order
    ):
        t = torch.from_numpy(x).to(device)
        if device.type == "cpu":
            t = t.contiguous(memory_format=torch.channels_last)
        out.append(torch.sigmoid(model(t).float()).cpu().numpy())
    return np.concatenate(out)


def validate(
    model: nn.Module, images: np.ndarray, rec: Records, spec: InputSpec, device: torch.device
) -> tuple[dict[str, float], np.ndarray]:
    probs = predict_arrays(model, images, spec, device)
    eps = 1e-7
    y = rec.eye_labels
    loss = float(-(y * np.log(probs + eps) + (1 - y) * np.log(1 - probs + eps)).mean())
    pat_probs, pids = patient_aggregate(probs, rec.patient_ids)
    first = {pid: i for i, pid in reversed(list(enumerate(rec.patient_ids)))}
    pat_gt = rec.patient_labels[[first[p] for p in pids]]
    score = odir_score(pat_gt, pat_probs)
    metrics = {
        "val_loss": loss,
        "eye_macro_auc": macro_auc(y, probs),
        **{f"odir_{k}": v for k, v in score.items()},
    }
    return metrics, probs


def save_checkpoint(path: Path, state: dict) -> None:
    # Write-then-rename: a kill in the middle of torch.save must not destroy the last good file.
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(ep, [r["train_loss"] for r in rows], "o-", label="train loss")
    ax[0].plot(ep, [r["val_loss"] for r in rows], "o-", label="val loss")
    ax[0].set_xlabel("epoch")
    ax[0].legend()
    for k in ("odir_final", "odir_kappa", "odir_auc", "eye_macro_auc"):
        ax[1].plot(ep, [r[k] for r in rows], "o-", label=k)
    ax[1].set_xlabel("epoch")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(cfg: dict) -> Path:
    tc = cfg["train"]
    torch.set_num_threads(int(tc["threads"]))
    torch.manual_seed(int(tc["seed"]))
    device = resolve_device(tc["device"])
    out = Path(cfg["out"])
    if not out.is_absolute():
        out = REPO_ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    # Two processes training into one folder would overwrite each other's checkpoints:
    # the second one stops here. The lock dies with the process, so a kill never leaves
    # a stale lock behind.
    lock = open(out / "train.lock", "w")  # noqa: SIM115 - held for the life of the run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another ml.train process is already training into {out}") from None
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    odir = Path(cfg["data"]["dir"]) if cfg["data"]["dir"] else default_odir_dir()
    rec = read_labels(odir / "labels.csv")
    split_path = Path(cfg["data"]["split"])
    split = load_or_make_split(
        rec, split_path if split_path.is_absolute() else REPO_ROOT / split_path
    )
    write_split(split, out / "split.csv")
    spec = input_spec(cfg)
    cache_dir = Path(cfg["data"]["cache_dir"])
    images = build_cache(
        odir, rec, spec.size, cache_dir if cache_dir.is_absolute() else REPO_ROOT / cache_dir
    )
    tr_idx = np.array([i for i, p in enumerate(rec.patient_ids) if split[p] == "train"])
    va_idx = np.array([i for i, p in enumerate(rec.patient_ids) if split[p] == "val"])
    if tc["max_val_images"]:
        va_idx = va_idx[: int(tc["max_val_images"])]
    train_rec, val_rec = rec.subset(tr_idx), rec.subset(va_idx)
    # Validation pictures are small (1,100 x 150 KB): keep them in RAM, not memory-mapped.
    val_images = np.asarray(images[va_idx])
    print(
        f"train {len(tr_idx)} eyes, val {len(va_idx)} eyes, device {device}, out {out}", flush=True
    )

    model = create_model(
        cfg["model"]["arch"],
        drop_rate=cfg["model"]["drop_rate"],
        drop_path_rate=cfg["model"]["drop_path_rate"],
        imagenet_weights=cfg["model"]["imagenet_weights"],
    ).to(device)
    if tc["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    pw = pos_weights(train_rec.eye_labels, tc["pos_weight"], float(tc["pos_weight_cap"]))
    criterion = nn.BCEWithLogitsLoss(pos_weight=None if pw is None else pw.to(device))
    optimizer = torch.optim.Adam(
        model.parameters(), lr=float(tc["lr"]), weight_decay=float(tc["weight_decay"])
    )
    pl = tc["plateau"]
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="max",
        factor=pl["factor"],
        patience=pl["patience"],
        threshold=pl["min_delta"],
        threshold_mode="abs",
    )

    state: dict[str, Any] = {
        "epoch": 0,
        "step": 0,
        "loss_sum": 0.0,
        "loss_n": 0,
        "best_final": -math.inf,
        "best_val_loss": math.inf,
        "bad_epochs": 0,
        "finished": False,
        "rows": [],
    }
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        state = ck["state"]
        print(f"resumed from {last}: epoch {state['epoch']} batch {state['step']}", flush=True)
    if state["finished"]:
        print("already finished; nothing to do", flush=True)
        return out

    def checkpoint() -> None:
        save_checkpoint(
            last,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": state,
                "config": cfg,
            },
        )

    from tqdm import tqdm

    bs = int(tc["batch_size"])
    while state["epoch"] < int(tc["epochs"]):
        epoch = state["epoch"]
        # The epoch's order depends only on (seed, epoch), so a mid-epoch resume replays it.
        order = np.random.default_rng(int(tc["seed"]) * 1000 + epoch).permutation(tr_idx.size)
        n_batches = (len(order) + bs - 1) // bs
        if tc["max_train_batches"]:
            n_batches = min(n_batches, int(tc["max_train_batches"]))
            order = order[: n_batches * bs]
        rng = np.random.default_rng(int(tc["seed"]) * 7919 + epoch * 101 + state["step"])
        model.train()
        t_ckpt = time.monotonic()
        bar = tqdm(
            total=n_batches,
            initial=state["step"],
            desc=f"epoch {epoch + 1}",
            mininterval=10,
            miniters=1,
        )
        for b, x, y in batches(
            images,
            rec.eye_labels,
            spec,
            batch_size=bs,
            order=tr_idx[order],
            start=state["step"],
            aug=tc["augment"],
            rng=rng,
        ):
            xt = torch.from_numpy(x).to(device)
            if tc["channels_last"]:
                xt = xt.contiguous(memory_format=torch.channels_last)
            yt = torch.from_numpy(y).to(device)
            loss = criterion(model(xt), yt)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state["loss_sum"] += float(loss) * len(y)
            state["loss_n"] += len(y)
            state["step"] = b + 1
            bar.update(1)
            bar.set_postfix(loss=f"{state['loss_sum'] / state['loss_n']:.4f}")
            if time.monotonic() - t_ckpt > 60 * float(tc["checkpoint_minutes"]):
                checkpoint()
                t_ckpt = time.monotonic()
        bar.close()

        t0 = time.monotonic()
        metrics, probs = validate(model, val_images, val_rec, spec, device)
        row = {
            "epoch": epoch + 1,
            "train_loss": state["loss_sum"] / max(1, state["loss_n"]),
            **metrics,
            "lr": optimizer.param_groups[0]["lr"],
            "val_seconds": time.monotonic() - t0,
        }
        state["rows"].append(row)
        print(
            json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
            flush=True,
        )
        scheduler.step(metrics["odir_final"])
        if metrics["odir_final"] > state["best_final"]:
            state["best_final"] = metrics["odir_final"]
            save_checkpoint(
                out / "best.pt", {"model": model.state_dict(), "config": cfg, "metrics": row}
            )
            np.save(out / "val_probs_best.npy", probs)
            (out / "best_metrics.json").write_text(json.dumps(row, indent=2))
        if metrics["val_loss"] < state["best_val_loss"]:
            state["best_val_loss"], state["bad_epochs"] = metrics["val_loss"], 0
        else:
            state["bad_epochs"] += 1
        state["epoch"], state["step"], state["loss_sum"], state["loss_n"] = epoch + 1, 0, 0.0, 0
        if state["bad_epochs"] >= int(tc["early_stop_patience"]):
            print(
                f"early stop: val loss has not improved for {state['bad_epochs']} epochs",
                flush=True,
            )
            state["finished"] = True
        if state["epoch"] >= int(tc["epochs"]):
            state["finished"] = True
        with open(out / "metrics.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(state["rows"][0]))
            w.writeheader()
            w.writerows(state["rows"])
        plot_curves(state["rows"], out / "curves.png")
        checkpoint()
        if state["finished"]:
            break
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", required=True)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. train.epochs=6",
    )
    ap.add_argument("--out", help="run folder (default from config)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.set)
    if args.out:
        cfg["out"] = args.out
    train(cfg)


if __name__ == "__main__":
    main()
