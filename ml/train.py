"""Train one branch: ``python -m ml.train --config ml/configs/lite0_color.yaml [--set k=v ...]``.

Recipe (sized to a 2-core CPU budget, measured in ``ml/reports/train_throughput.json``):
BCE with a square-root positive weight, AdamW with a linear warmup and a per-step cosine
schedule over a fixed number of epochs, an exponential moving average (EMA) of the
weights, the stem and first stages frozen at their ImageNet weights, channels_last and
(optionally) bf16 autocast. After every epoch the EMA weights are scored on the
calibration part of the split (held out of training) and on validation; the checkpoint
with the best patient-level ODIR final score *on calibration* is kept (the seed paper's
keep-the-best rule, without choosing on the data the results are reported on).

Resumable: ``last.pt`` is written after every epoch and every ``checkpoint_minutes``
within one; running the same command again continues from it (mid-epoch included).
Runs unchanged on a GPU (``device: auto``; bf16/fp16 autocast follows the device).
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
from ml.model import create_model, freeze_stages
from ml.preprocess import InputSpec


def keep_freed_memory() -> None:
    """Tell glibc to keep freed memory instead of handing it back to the kernel.

    Every training step frees and reallocates the same ~100 MB of activations; with glibc's
    defaults those large blocks are mmap-ed and unmapped each time, and the page faults took
    a fifth of the step (measured: 10.9 -> 12.6 training images/s, evaluation 2x faster).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_max = -1, -4
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 2**30)


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
        "freeze_stages": 0,  # stem + this many block stages keep their ImageNet weights
        # Start from a finished run's best.pt instead of ImageNet (a fine-tune at a larger
        # input size, for example); its head is kept.
        "init_checkpoint": None,
    },
    "input": {
        "size": 224,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "equalize": "hist",
        "contrast": "none",
        "field_mask": False,
    },
    "train": {
        "epochs": 12,
        "batch_size": 32,
        "lr": 1e-3,
        "warmup_epochs": 1.0,
        "min_lr_ratio": 0.02,
        "weight_decay": 0.02,
        "ema_decay": 0.998,  # 0 turns the EMA off
        "autocast": "none",  # none | bf16 | fp16 (fp16 only on CUDA)
        "pos_weight": "sqrt",  # none | sqrt | full : neg/pos ratio per class, capped
        "pos_weight_cap": 10.0,
        "select_on": "calib",  # the split part whose ODIR final picks best.pt
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
        contrast=i.get("contrast", "none"),
        field_mask=bool(i.get("field_mask", False)),
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
    for k in ("odir_final", "calib_odir_final", "odir_kappa", "odir_auc", "eye_macro_auc"):
        if k in rows[0]:
            ax[1].plot(ep, [r[k] for r in rows], "o-", label=k.replace("odir_", "ODIR "))
    ax[1].set_xlabel("epoch")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class WeightEMA:
    """Exponential moving average of the trainable weights; buffers (batch-norm running
    statistics) are copied from the live model, as timm's ModelEmaV3 does by default.

    The decay ramps up as ``(1 + step) / (10 + step)`` so the first epoch's average is not
    dominated by the freshly initialised head."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for e, m in zip(self.module.parameters(), model.parameters(), strict=True):
            if m.requires_grad:
                e.lerp_(m.detach(), 1 - d)
        for e, m in zip(self.module.buffers(), model.buffers(), strict=True):
            e.copy_(m)


def lr_factor(step: int, *, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine down to ``min_ratio`` at ``total`` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def _autocast(device: torch.device, mode: str) -> Any:
    import contextlib

    if mode == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def train(cfg: dict) -> Path:
    tc = cfg["train"]
    keep_freed_memory()
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
    # The whole uint8 cache in RAM (5,426 x 288 x 288 x 3 = 1.3 GB): random access into a
    # memory map costs page faults on every batch.
    images = np.asarray(
        build_cache(
            odir, rec, spec.size, cache_dir if cache_dir.is_absolute() else REPO_ROOT / cache_dir
        )
    )
    parts = {
        name: np.array([i for i, p in enumerate(rec.patient_ids) if split[p] == name])
        for name in ("train", "calib", "val")
    }
    tr_idx = parts["train"]
    evals = {name: parts[name] for name in ("calib", "val") if parts[name].size}
    if tc["max_val_images"]:
        evals = {k: v[: int(tc["max_val_images"])] for k, v in evals.items()}
    eval_recs = {k: rec.subset(v) for k, v in evals.items()}
    select_on = tc["select_on"] if tc["select_on"] in evals else "val"
    train_rec = rec.subset(tr_idx)
    print(
        f"train {len(tr_idx)} eyes, "
        + ", ".join(f"{k} {len(v)} eyes" for k, v in evals.items())
        + f", device {device}, out {out}",
        flush=True,
    )

    model = create_model(
        cfg["model"]["arch"],
        drop_rate=cfg["model"]["drop_rate"],
        drop_path_rate=cfg["model"]["drop_path_rate"],
        imagenet_weights=cfg["model"]["imagenet_weights"],
    )
    init = cfg["model"].get("init_checkpoint")
    if init:
        path = Path(init) if Path(init).is_absolute() else REPO_ROOT / init
        if path.suffix == ".safetensors":
            # A shipped bundle's branch (fp16): ml/runs/ does not survive a new machine.
            from safetensors.torch import load_file

            model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
        else:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
        print(f"initialised from {path}", flush=True)
    freeze_stages(model, int(cfg["model"].get("freeze_stages", 0)))
    model = model.to(device)
    if tc["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    pw = pos_weights(train_rec.eye_labels, tc["pos_weight"], float(tc["pos_weight_cap"]))
    criterion = nn.BCEWithLogitsLoss(pos_weight=None if pw is None else pw.to(device))
    # No weight decay on biases and batch-norm scales (the usual AdamW practice).
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": float(tc["weight_decay"])},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=float(tc["lr"]),
    )
    bs = int(tc["batch_size"])
    steps_per_epoch = (len(tr_idx) + bs - 1) // bs
    if tc["max_train_batches"]:
        steps_per_epoch = min(steps_per_epoch, int(tc["max_train_batches"]))
    total_steps = steps_per_epoch * int(tc["epochs"])
    warmup_steps = int(round(float(tc["warmup_epochs"]) * steps_per_epoch))
    ema = WeightEMA(model, float(tc["ema_decay"])) if float(tc["ema_decay"]) > 0 else None

    state: dict[str, Any] = {
        "epoch": 0,
        "step": 0,
        "global_step": 0,
        "loss_sum": 0.0,
        "loss_n": 0,
        "best_final": -math.inf,
        "finished": False,
        "rows": [],
    }
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if ema is not None and ck.get("ema") is not None:
            ema.module.load_state_dict(ck["ema"])
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
                "ema": ema.module.state_dict() if ema is not None else None,
                "optimizer": optimizer.state_dict(),
                "state": state,
                "config": cfg,
            },
        )

    from tqdm import tqdm

    t_start = time.monotonic()
    while state["epoch"] < int(tc["epochs"]):
        epoch = state["epoch"]
        # The epoch's order depends only on (seed, epoch), so a mid-epoch resume replays it.
        order = np.random.default_rng(int(tc["seed"]) * 1000 + epoch).permutation(tr_idx.size)
        order = order[: steps_per_epoch * bs]
        rng = np.random.default_rng(int(tc["seed"]) * 7919 + epoch * 101 + state["step"])
        model.train()
        t_ckpt = t_epoch = time.monotonic()
        seen = 0
        bar = tqdm(
            total=steps_per_epoch,
            initial=state["step"],
            desc=f"epoch {epoch + 1}",
            mininterval=30,
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
            f = lr_factor(
                state["global_step"],
                total=total_steps,
                warmup=warmup_steps,
                min_ratio=float(tc["min_lr_ratio"]),
            )
            for g in optimizer.param_groups:
                g["lr"] = float(tc["lr"]) * f
            xt = torch.from_numpy(x).to(device, non_blocking=True)
            if tc["channels_last"]:
                xt = xt.contiguous(memory_format=torch.channels_last)
            yt = torch.from_numpy(y).to(device)
            with _autocast(device, tc["autocast"]):
                logits = model(xt)
            loss = criterion(logits.float(), yt)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update(model, state["global_step"])
            state["loss_sum"] += float(loss) * len(y)
            state["loss_n"] += len(y)
            state["step"] = b + 1
            state["global_step"] += 1
            seen += len(y)
            bar.update(1)
            bar.set_postfix(
                loss=f"{state['loss_sum'] / state['loss_n']:.4f}", lr=f"{f * float(tc['lr']):.2e}"
            )
            if time.monotonic() - t_ckpt > 60 * float(tc["checkpoint_minutes"]):
                checkpoint()
                t_ckpt = time.monotonic()
        bar.close()
        train_seconds = time.monotonic() - t_epoch

        t0 = time.monotonic()
        scored = ema.module if ema is not None else model
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": state["loss_sum"] / max(1, state["loss_n"]),
            "lr": optimizer.param_groups[0]["lr"],
            "train_images_per_s": seen / max(1e-9, train_seconds),
        }
        probs_of: dict[str, np.ndarray] = {}
        for name, idx in evals.items():
            metrics, probs_of[name] = validate(scored, images[idx], eval_recs[name], spec, device)
            row.update({f"{name}_{k}" if name != "val" else k: v for k, v in metrics.items()})
        row["eval_seconds"] = time.monotonic() - t0
        row["elapsed_minutes"] = (time.monotonic() - t_start) / 60
        state["rows"].append(row)
        print(
            json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
            flush=True,
        )
        sel = row["odir_final"] if select_on == "val" else row[f"{select_on}_odir_final"]
        if sel > state["best_final"]:
            state["best_final"] = sel
            save_checkpoint(
                out / "best.pt",
                {
                    "model": scored.state_dict(),
                    "config": cfg,
                    "metrics": row,
                    "ema": ema is not None,
                },
            )
            for name, pr in probs_of.items():
                np.save(out / f"{name}_probs_best.npy", pr)
            (out / "best_metrics.json").write_text(json.dumps(row, indent=2))
        state["epoch"], state["step"], state["loss_sum"], state["loss_n"] = epoch + 1, 0, 0.0, 0
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
