"""Training-throughput probe: ``python -m ml.bench_train [--steps 4] [--out ml/reports/train_throughput.json]``.

Times forward + backward + AdamW step on batches of 32 real ODIR pictures, one option at a
time, in one process on this machine, so that the training recipe is chosen by
measurement: channels_last, frozen early stages, bf16 autocast, input size and backbone
(lite0/1/2), and the data path (JPEG decode per step vs the uint8 cache with the full
augmentation and the branch transform). Run it on a quiet machine: the numbers are
images per second and halve under a neighbour's test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ml.data import augment, default_odir_dir, load_image_file, read_labels  # noqa: E402
from ml.model import create_model, freeze_stages  # noqa: E402
from ml.preprocess import InputSpec, crop_fundus, normalize, resize_square, to_branch_rgb  # noqa: E402

AUG = {
    "vflip": 0.5, "rotate": 30, "scale": 0.1, "shift": 0.04, "fov": 0.3, "gamma": 0.35,
    "brightness": 0.25, "contrast": 0.25, "color_gain": 0.1, "saturation": 0.3, "hue": 6,
    "vignette": 0.3, "blur": 0.3, "downscale": 0.25, "noise": 0.2, "jpeg": 0.4,
}  # fmt: skip


def _pictures(n: int, size: int) -> np.ndarray:
    odir = default_odir_dir()
    rec = read_labels(odir / "labels.csv")
    return np.stack(
        [
            resize_square(crop_fundus(load_image_file(odir / "images" / f)), size)
            for f in rec.filenames[:n]
        ]
    )


def time_training(
    *,
    arch: str,
    size: int,
    pictures: np.ndarray,
    channels_last: bool,
    freeze: int,
    bf16: bool,
    steps: int,
    batch: int = 32,
) -> float:
    """Images per second of the optimiser loop alone (inputs prepared beforehand)."""
    torch.manual_seed(0)
    model = create_model(arch)
    freeze_stages(model, freeze)
    model.train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    crit = nn.BCEWithLogitsLoss()
    spec = InputSpec(branch="color", size=size)
    x = torch.from_numpy(
        normalize(np.stack([to_branch_rgb(p, spec) for p in pictures[:batch]]), spec.mean, spec.std)
    )
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch, 8)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss = crit(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:  # the first step allocates and picks kernels
            times.append(time.perf_counter() - t0)
    return batch / float(np.median(times))


def time_data(pictures: np.ndarray, spec: InputSpec, n: int) -> dict[str, float]:
    odir = default_odir_dir()
    rec = read_labels(odir / "labels.csv")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for f in rec.filenames[:n]:
        to_branch_rgb(
            resize_square(crop_fundus(load_image_file(odir / "images" / f)), spec.size), spec
        )
    decode = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for p in pictures[:n]:
        to_branch_rgb(augment(p, rng, AUG), spec)
    cached = n / (time.perf_counter() - t0)
    return {"jpeg_decode_crop_resize_per_step": decode, "uint8_cache_full_augmentation": cached}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("ml/reports/train_throughput.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    rows: list[dict] = []
    pics: dict[int, np.ndarray] = {}

    def run(**kw: object) -> None:
        size = int(kw["size"])  # type: ignore[call-overload]
        if size not in pics:
            pics[size] = _pictures(32, size)
        ips = time_training(pictures=pics[size], steps=args.steps, **kw)  # type: ignore[arg-type]
        rows.append({**kw, "train_images_per_s": round(ips, 2)})
        print(json.dumps(rows[-1]), flush=True)

    base = {"arch": "tf_efficientnet_lite0", "size": 224, "bf16": False}
    run(**base, channels_last=False, freeze=0)
    run(**base, channels_last=True, freeze=0)
    for fr in (2, 3, 4):
        run(**base, channels_last=True, freeze=fr)
    run(**{**base, "bf16": True}, channels_last=True, freeze=3)
    for size in (256, 288, 320):
        run(**{**base, "size": size}, channels_last=True, freeze=3)
    run(arch="tf_efficientnet_lite1", size=256, bf16=False, channels_last=True, freeze=3)
    run(arch="tf_efficientnet_lite2", size=256, bf16=False, channels_last=True, freeze=3)
    pics_data = _pictures(64, 288)
    data = {
        b: time_data(
            pics_data, InputSpec(branch=b, size=288, contrast="graham", field_mask=True), 64
        )
        for b in ("color", "gray")
    }
    print(json.dumps(data), flush=True)
    report = {
        "machine": f"{os.cpu_count()} cores, load average at start {load:.2f}, torch {torch.__version__}",
        "threads": args.threads,
        "batch": 32,
        "steps_timed": args.steps,
        "training": rows,
        "data_path_images_per_s_at_288": data,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
