"""Turn one branch of a shipped bundle back into a run folder that ``ml.export`` accepts.

``python -m ml.scripts.bundle_to_run --branch gray --config ml/configs/lite0_gray.yaml``

Why: ``ml/runs/`` is git-ignored and does not survive a move to a fresh machine, but the bundle's
weights are committed. When only one branch is retrained, the other comes back from the bundle
(its fp16 weights read into fp32: re-exporting them as fp16 is lossless), so the export can weigh,
calibrate and place the thresholds for the new pair on the calibration part as usual.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from ml.data import DEFAULT_SPLIT, REPO_ROOT, read_split, write_split


def bundle_to_run(*, bundle: Path, branch: str, config: Path, out: Path) -> Path:
    bundle_cfg = yaml.safe_load((bundle / "config.yaml").read_text())
    entry = bundle_cfg["branches"][branch]
    cfg = yaml.safe_load(config.read_text())
    if cfg.get("branch") != branch or cfg["model"]["arch"] != entry["arch"]:
        raise SystemExit(f"{config} is not the training config of the bundle's {branch} branch")
    # The bundle's input, not the config file's, is what the weights were trained for.
    cfg["input"] = {**cfg.get("input", {}), **entry["input"]}
    cfg["out"] = str(out)
    cfg["from_bundle"] = {"dir": str(bundle), "trained": entry.get("trained")}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    write_split(read_split(DEFAULT_SPLIT), out / "split.csv")
    state = {k: v.float() for k, v in load_file(str(bundle / entry["weights"])).items()}
    metrics = (entry.get("trained") or {}).get("best_metrics")
    torch.save({"model": state, "metrics": metrics}, out / "best.pt")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, default=REPO_ROOT / "ml" / "weights" / "default")
    ap.add_argument("--branch", required=True)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    out = args.out or REPO_ROOT / "ml" / "runs" / f"bundle_{args.branch}"
    print(bundle_to_run(bundle=args.bundle, branch=args.branch, config=args.config, out=out))


if __name__ == "__main__":
    main()
