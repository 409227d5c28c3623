"""Inference benchmark: ``python -m ml.bench [--weights DIR] [--n 64] [--device cpu|cuda] [--write-docs]``.

Same run, same machine, same eye photos (JPEG bytes), each path against the naive baseline:

* (a) naive baseline: each branch as a timm model in eager PyTorch, one image per call,
  no heatmaps (decode, crop and resize included, as a first implementation would);
* ``Ensemble.predict`` as the worker calls it (quality gate, both branches, heatmaps for the
  flagged eyes), in each runtime the bundle can use (ONNX Runtime, OpenVINO, PyTorch), on
  batches of 16 eyes (8 queued screenings) and of 2 eyes (one patient);
* the two-eye latency p50/p95 and the resident memory of a worker process (measured in a
  fresh process per runtime);
* per-image cost of decoding, fundus cropping + resizing, and the quality gate.

``--device cuda`` measures the GPU worker instead: end-to-end eye images/s from JPEG bytes
(decode, crop and quality on CPU threads, both branches in fp16 on the GPU, heatmaps), with
large batches as when screenings queue. ``--write-docs`` replaces the "## ML model" (CPU) or
"## ML model on GPU" section of docs/benchmarks.md with the result.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ml.data import REPO_ROOT, default_odir_dir
from ml.ensemble import Ensemble
from ml.model import create_model
from ml.preprocess import crop_fundus, decode_image, normalize, resize_square, to_branch_rgb
from ml.quality import assess_quality


def _timeit(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up: first calls allocate and pick kernels
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _p50(xs: list[float]) -> float:
    return statistics.median(xs)


def _p95(xs: list[float]) -> float:
    return float(np.percentile(xs, 95))


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import onnxruntime

    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (
        f"{cpu}, {os.cpu_count()} cores visible{gpu}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; "
        f"1-min load average at start {load:.1f}"
    )


def _sample_images(n: int) -> list[bytes]:
    odir = default_odir_dir()
    files = sorted((odir / "images").glob("*.jpg"))[:n] if (odir / "images").is_dir() else []
    if files:
        return [f.read_bytes() for f in files]
    import io

    import skimage.data
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(skimage.data.retina()).save(buf, "JPEG", quality=90)
    return [buf.getvalue()] * n


def _camera_frame() -> bytes:
    """A 2592x1728 camera-sized JPEG: the CC0 retina in a wide black frame."""
    import io

    import cv2
    import skimage.data
    from PIL import Image

    frame = np.zeros((1728, 2592, 3), np.uint8)
    r = cv2.resize(skimage.data.retina(), (1650, 1650))
    frame[39:1689, 471:2121] = r
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _available_runtimes(weights: Path) -> list[str]:
    out = ["onnx"]
    try:
        import openvino  # noqa: F401

        out.append("openvino")
    except ImportError:
        pass
    return [*out, "torch"]


def _memory_of(weights: Path, runtime: str, threads: int, image: bytes) -> float:
    """Resident MB of a fresh process that loaded the bundle and ran one screening."""
    code = (
        "import sys, resource; from ml.ensemble import Ensemble; "
        f"e = Ensemble.load({str(weights)!r}, threads={threads}, runtime={runtime!r}); "
        "b = open(sys.argv[1], 'rb').read(); e.predict([b, b]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".jpg") as fh:
        fh.write(image)
        fh.flush()
        out = subprocess.run(
            [sys.executable, "-c", code, fh.name],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        )
    return float(out.stdout.strip().splitlines()[-1])


def naive_baseline(ens: Ensemble, weights: Path, data: list[bytes]) -> dict:
    """Eager timm per branch, one JPEG at a time, no heatmaps and no quality gate."""
    from safetensors.torch import load_file

    models = {}
    for name, br in ens.branches.items():
        cfg = ens.config["branches"][name]
        m = create_model(cfg["arch"], pretrained=False)
        m.load_state_dict(
            {k: v.float() for k, v in load_file(str(weights / cfg["weights"])).items()}
        )
        models[name] = (m.eval(), br.spec)

    def one(jpeg: bytes) -> None:
        crop = crop_fundus(decode_image(jpeg))
        with torch.inference_mode():
            for m, s in models.values():
                x = normalize(to_branch_rgb(resize_square(crop, s.size), s)[None], s.mean, s.std)
                torch.sigmoid(m(torch.from_numpy(x)))

    one(data[0])
    lat = []
    t0 = time.perf_counter()
    for jpeg in data:
        t1 = time.perf_counter()
        one(jpeg)
        lat.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    return {"eyes_per_s": len(data) / wall, "p50_ms_per_eye": 1000 * _p50(lat)}


def predict_throughput(ens: Ensemble, data: list[bytes], batch: int) -> float:
    """Eye images/s of ``Ensemble.predict`` with its defaults, ``batch`` eyes per call."""
    ens.predict(data[:batch])
    t0 = time.perf_counter()
    for i in range(0, len(data), batch):
        ens.predict(data[i : i + batch])
    return len(data) / (time.perf_counter() - t0)


def run(weights: Path, n: int, threads: int, runtimes: list[str] | None = None) -> dict:
    torch.set_num_threads(threads)
    res: dict = {"machine": _machine(), "threads": threads, "n": n, "runtimes": {}}
    data = _sample_images(n)
    default = Ensemble.load(weights, threads=threads)
    res["default_runtime"] = default.runtime
    res["version"] = default.version
    res["input_size"] = next(iter(default.branches.values())).spec.size
    res["naive"] = naive_baseline(default, weights, data)
    pair = data[:2]
    for rt in runtimes or _available_runtimes(weights):
        ens = (
            default
            if rt == default.runtime
            else Ensemble.load(weights, threads=threads, runtime=rt)
        )
        lat = _timeit(functools.partial(ens.predict, pair), 20)
        flagged = sum(bool(p.flagged) for p in ens.predict(data[:16]))
        res["runtimes"][rt] = {
            "predict_16_eyes_per_s": predict_throughput(ens, data, 16),
            "predict_2_eyes_per_s": predict_throughput(ens, data[: max(16, n // 2)], 2),
            "two_eye_p50_ms": 1000 * _p50(lat),
            "two_eye_p95_ms": 1000 * _p95(lat),
            "flagged_of_first_16": flagged,
            "worker_rss_mb": _memory_of(weights, rt, threads, data[0]),
        }
        r = res["runtimes"][rt]
        r["speedup_16"] = r["predict_16_eyes_per_s"] / res["naive"]["eyes_per_s"]
        print(json.dumps({rt: r}), flush=True)

    rgbs = [decode_image(b) for b in data[:4]]
    cam = _camera_frame()
    cam_rgb = decode_image(cam)
    size = res["input_size"]
    pre = {
        "decode_448_jpeg": _timeit(lambda: decode_image(data[0]), 15),
        "decode_2592x1728_jpeg": _timeit(lambda: decode_image(cam), 7),
        "crop_resize_448": _timeit(lambda: resize_square(crop_fundus(rgbs[0]), size), 15),
        "crop_resize_2592x1728": _timeit(lambda: resize_square(crop_fundus(cam_rgb), size), 7),
        "quality_448": _timeit(lambda: assess_quality(rgbs[0]), 15),
        "quality_2592x1728": _timeit(lambda: assess_quality(cam_rgb), 7),
    }
    res["per_image_ms"] = {k: 1000 * _p50(v) for k, v in pre.items()}
    res["per_image_min_ms"] = {k: 1000 * min(v) for k, v in pre.items()}
    return res


def run_cuda(weights: Path, n: int, batch: int, workers: int) -> dict:
    """The GPU worker end to end: JPEG bytes in, probabilities, quality and heatmaps out."""
    from concurrent.futures import ThreadPoolExecutor

    res: dict = {"machine": _machine(), "n": n, "batch": batch, "decode_threads": workers}
    ens = Ensemble.load(weights, device="cuda", runtime="torch")
    res["version"] = ens.version
    data = (_sample_images(min(n, 512)) * (n // min(n, 512) + 1))[:n]
    pool = ThreadPoolExecutor(workers)

    def decoded(chunk: list[bytes]) -> list[np.ndarray]:
        return list(pool.map(decode_image, chunk))

    def quality(rgbs: list[np.ndarray]) -> list:
        return list(pool.map(assess_quality, rgbs))

    def once() -> None:
        for i in range(0, n, batch):
            rgbs = decoded(data[i : i + batch])
            ens.predict(rgbs, quality=quality(rgbs), batch_size=batch)
        torch.cuda.synchronize()

    once()
    t0 = time.perf_counter()
    once()
    res["eyes_per_s_end_to_end"] = n / (time.perf_counter() - t0)
    # The networks alone, on prepared tensors: what timm's table compares with.
    size = next(iter(ens.branches.values())).spec.size
    x = torch.randn(batch, 3, size, size, device="cuda").contiguous(
        memory_format=torch.channels_last
    )
    models = [br.runner.model for br in ens.branches.values()]  # type: ignore[attr-defined]
    with torch.inference_mode(), torch.autocast("cuda", torch.float16):
        for m in models:
            m(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(10):
            for m in models:
                m(x)
        torch.cuda.synchronize()
    res["model_only_images_per_s_both_branches"] = 10 * batch / (time.perf_counter() - t0)
    pool.shutdown()
    return res


def to_markdown(res: dict, command: str) -> str:
    pi = res["per_image_ms"]
    mi = res["per_image_min_ms"]
    naive = res["naive"]
    rows = [
        f"| `Ensemble.predict`, {rt}{' (bundle default)' if rt == res['default_runtime'] else ''} | "
        f"{r['predict_16_eyes_per_s']:.1f} ({r['speedup_16']:.1f}x) | {r['predict_2_eyes_per_s']:.1f} | "
        f"{r['two_eye_p50_ms']:.0f} / {r['two_eye_p95_ms']:.0f} ms | {r['worker_rss_mb']:.0f} MB |"
        for rt, r in res["runtimes"].items()
    ]
    lines = [
        "## ML model",
        "",
        f"Command: `{command}`. Machine: {res['machine']}; {res['threads']} inference threads. "
        f"Bundle `{res['version']}` ({res['input_size']} px), default CPU runtime "
        f"{res['default_runtime']}. {res['n']} ODIR eye photos (448 px JPEG bytes) in every row; "
        "all rows from the same run.",
        "",
        "| path (JPEG bytes in) | eye images/s, 16 per call (x naive) | 2 per call | "
        "two-eye latency p50 / p95 | worker RSS |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| (a) naive: eager timm per branch, one image per call, no quality, no heatmaps | "
        f"{naive['eyes_per_s']:.1f} (1.0x) | - | {2 * naive['p50_ms_per_eye']:.0f} ms (2 x p50) | - |",
        *rows,
        "",
        "`Ensemble.predict` rows run as the worker calls it: the quality gate, both branches batched, "
        "and a class activation map for each eye with a finding (from the feature map the network "
        "run already returned: no backward pass). Worker RSS: peak resident memory of a fresh "
        "process that loaded the bundle and scored one screening.",
        "",
        "| per image: p50 (fastest) | 448 px ODIR JPEG | 2592x1728 camera JPEG |",
        "| --- | ---: | ---: |",
        *[
            f"| {label} | {pi[k + '_448' if k != 'decode' else 'decode_448_jpeg']:.1f} ms "
            f"({mi[k + '_448' if k != 'decode' else 'decode_448_jpeg']:.1f}) | "
            f"{pi[k + '_2592x1728' if k != 'decode' else 'decode_2592x1728_jpeg']:.1f} ms "
            f"({mi[k + '_2592x1728' if k != 'decode' else 'decode_2592x1728_jpeg']:.1f}) |"
            for label, k in [
                ("decode (`decode_image`)", "decode"),
                (f"crop + resize (`crop_fundus`, {res['input_size']} px)", "crop_resize"),
                ("quality gate (`assess_quality`, budget 50 ms)", "quality"),
            ]
        ],
        "",
    ]
    return "\n".join(lines)


def cuda_markdown(res: dict, command: str) -> str:
    return "\n".join(
        [
            "## ML model on GPU",
            "",
            f"Command: `{command}`. Machine: {res['machine']}. Bundle `{res['version']}`.",
            "",
            f"- End to end, JPEG bytes in (decode, crop and quality on {res['decode_threads']} CPU "
            f"threads; both branches fp16 + channels_last on the GPU; heatmaps), batches of "
            f"{res['batch']}: **{res['eyes_per_s_end_to_end']:.0f} eye images/s**.",
            f"- The two networks alone on prepared tensors: "
            f"{res['model_only_images_per_s_both_branches']:.0f} images/s (both branches).",
            "",
        ]
    )


def write_docs(section: str, path: Path) -> None:
    title = section.splitlines()[0]
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    start = text.find(title + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[nxt + 1 :] if nxt != -1 else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--weights", type=Path, default=REPO_ROOT / "ml" / "weights" / "default")
    ap.add_argument("--n", type=int, default=64, help="eye images per throughput run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=256, help="GPU batch (eyes)")
    ap.add_argument("--runtime", action="append", help="only these CPU runtimes")
    ap.add_argument("--json", type=Path, help="also write the raw result here")
    ap.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args(argv)
    cmd = "python -m ml.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.device == "cuda":
        res = run_cuda(args.weights, args.n, args.batch, workers=max(2, (os.cpu_count() or 4) - 2))
        md = cuda_markdown(res, cmd.strip())
    else:
        res = run(args.weights, args.n, args.threads, args.runtime)
        md = to_markdown(res, cmd.strip())
    print(md)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    if args.write_docs:
        write_docs(md, REPO_ROOT / "docs" / "benchmarks.md")
        print("updated docs/benchmarks.md")


if __name__ == "__main__":
    main()
