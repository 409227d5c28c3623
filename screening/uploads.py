"""Validated, content-addressed storage of fundus photographs.

What is stored is never the client's file: the upload is decoded (which proves it is a real JPEG or
PNG within the size and pixel limits), the EXIF orientation applied, and the pixels re-encoded as
JPEG. That strips every EXIF field (GPS, camera owner's name) and any trailing bytes (a PNG
followed by HTML). The name is the SHA-256 of the stored bytes, generated here, so a client's
file name (path traversal, unicode tricks) never reaches the file system.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from django.conf import settings

from config.errors import InvalidInput

ALLOWED_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
# 40 megapixels covers every fundus camera and phone camera we expect; a decompression bomb
# (a tiny file that decodes to 10,000+ px a side) is refused before its pixels are allocated.
MAX_PIXELS = 40_000_000
MAX_SIDE = 10_000


@dataclass(frozen=True)
class StoredImage:
    path: str  # relative to MEDIA_ROOT
    sha256: str
    width: int
    height: int
    rgb: np.ndarray
    created: bool  # False when identical bytes were already stored (content-addressed)


def read_upload(upload, *, field: str) -> bytes:
    """Read an uploaded file within the size limit, checking the bytes (not the name or the
    client's MIME type) are JPEG or PNG."""
    limit = settings.UPLOAD_MAX_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise InvalidInput(
            f"The photo is larger than {limit // (1024 * 1024)} MB.", code="too_large", field=field
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(
            f"The photo is larger than {limit // (1024 * 1024)} MB.", code="too_large", field=field
        )
    if not data:
        raise InvalidInput("The photo is empty (0 bytes).", code="empty", field=field)
    if not data.startswith(ALLOWED_SIGNATURES):
        raise InvalidInput(
            "Only JPEG or PNG photos are accepted.", code="unsupported_type", field=field
        )
    return data


def decode(data: bytes, *, field: str) -> np.ndarray:
    from ml.preprocess import ImageError, decode_image

    try:
        return decode_image(data, max_pixels=MAX_PIXELS, max_side=MAX_SIDE)
    except ImageError as exc:
        raise InvalidInput(exc.message, code=exc.code, field=field) from exc


def store_rgb(rgb: np.ndarray, *, subdir: str = "fundus", quality: int = 92) -> StoredImage:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB array
        raise InvalidInput("The photo could not be stored.", code="encode_failed")
    return store_bytes(buf.tobytes(), suffix=".jpg", subdir=subdir, rgb=rgb)


def store_bytes(
    data: bytes, *, suffix: str, subdir: str, rgb: np.ndarray | None = None
) -> StoredImage:
    digest = hashlib.sha256(data).hexdigest()
    rel = f"{subdir}/{digest[:2]}/{digest}{suffix}"
    target = Path(settings.MEDIA_ROOT) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    created = False
    if not target.exists():
        # Write to a temporary name and rename: a crash never leaves a half-written image under
        # its final content-addressed name.
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        created = True
    height, width = rgb.shape[:2] if rgb is not None else (0, 0)
    return StoredImage(
        path=rel,
        sha256=digest,
        width=int(width),
        height=int(height),
        rgb=rgb if rgb is not None else np.empty(0),
        created=created,
    )


def delete_stored(paths: list[str]) -> None:
    """Remove files this request created, after its transaction failed (no orphan files)."""
    for rel in paths:
        try:
            (Path(settings.MEDIA_ROOT) / rel).unlink()
        except FileNotFoundError:
            pass


def media_path(rel: str) -> Path:
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / rel).resolve()
    if root not in path.parents:
        raise InvalidInput("Invalid stored path.", code="bad_path")
    return path
