"""Validated, content-addressed storage of fundus photographs.

What is stored is never the client's file: the upload is decoded (which proves it is a real JPEG or
PNG within the size and pixel limits), the EXIF orientation applied, and the pixels re-encoded as
JPEG. That strips every EXIF field (GPS, camera owner's name) and any trailing bytes (a PNG
followed by HTML). The name is the SHA-256 of the stored bytes, generated here, so a client's
file name (path traversal, unicode tricks) never reaches the file system.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import cv2
import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.errors import InvalidInput

ALLOWED_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
# 40 megapixels covers every fundus camera and phone camera we expect; a decompression bomb
# (a tiny file that decodes to 10,000+ px a side) is refused before its pixels are allocated.
MAX_PIXELS = 40_000_000
MAX_SIDE = 10_000


@dataclass(frozen=True)
class StoredImage:
    path: str  # the name in default_storage
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
            _("The photo is larger than %(mb)d MB.") % {"mb": limit // (1024 * 1024)},
            code="too_large",
            field=field,
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(
            _("The photo is larger than %(mb)d MB.") % {"mb": limit // (1024 * 1024)},
            code="too_large",
            field=field,
        )
    if not data:
        raise InvalidInput(_("The photo is empty (0 bytes)."), code="empty", field=field)
    if not data.startswith(ALLOWED_SIGNATURES):
        raise InvalidInput(
            _("Only JPEG or PNG photos are accepted."), code="unsupported_type", field=field
        )
    return data


# ml has no Django and speaks English; the health worker reads these in their own language.
DECODE_MESSAGES = {
    "not_an_image": gettext_lazy("The file is not a JPEG or PNG image."),
    "empty": gettext_lazy("The photo is empty (0 bytes)."),
    "too_large": gettext_lazy("The photo is too large; send a smaller one."),
    "decompression_bomb": gettext_lazy(
        "The image declares far more pixels than a fundus photo has."
    ),
    "unsupported_format": gettext_lazy("Only JPEG or PNG photos are accepted."),
    "too_small": gettext_lazy("The photo is too small to grade; take it again at full size."),
    "unsupported_mode": gettext_lazy(
        "This colour mode is not supported; save the photo as an 8-bit RGB JPEG or PNG."
    ),
    "truncated": gettext_lazy("The photo is incomplete (the upload was cut off); send it again."),
    "corrupt": gettext_lazy("The image file is damaged and cannot be read."),
}


def decode(data: bytes, *, field: str) -> np.ndarray:
    from ml.preprocess import ImageError, decode_image

    try:
        return decode_image(data, max_pixels=MAX_PIXELS, max_side=MAX_SIDE)
    except ImageError as exc:
        message = DECODE_MESSAGES.get(exc.code, exc.message)
        raise InvalidInput(str(message), code=exc.code, field=field) from exc


def store_rgb(rgb: np.ndarray, *, subdir: str = "fundus", quality: int = 92) -> StoredImage:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB array
        raise InvalidInput(_("The photo could not be stored."), code="encode_failed")
    return store_bytes(buf.tobytes(), suffix=".jpg", subdir=subdir, rgb=rgb)


def store_bytes(
    data: bytes, *, suffix: str, subdir: str, rgb: np.ndarray | None = None
) -> StoredImage:
    digest = hashlib.sha256(data).hexdigest()
    rel = f"{subdir}/{digest[:2]}/{digest}{suffix}"
    created = False
    if not default_storage.exists(rel):
        saved = default_storage.save(rel, ContentFile(data))
        if saved != rel:
            # Another request stored the same bytes between the check and the save, and the
            # storage chose a free name: the content is identical, so keep the canonical one.
            default_storage.delete(saved)
        else:
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
        default_storage.delete(_checked(rel))


# A stored path read back from the database is still checked before it reaches the storage: a
# relative name of plain segments, so a tampered row cannot point the file views outside it.
STORED_NAME = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$")


def _checked(rel: str) -> str:
    if not isinstance(rel, str) or not STORED_NAME.match(rel) or ".." in rel.split("/"):
        raise InvalidInput(_("Invalid stored path."), code="bad_path")
    return rel


def open_stored(rel: str) -> File:
    """The stored file, opened for reading (the caller closes it; FileResponse does)."""
    return default_storage.open(_checked(rel), "rb")


def read_stored(rel: str) -> bytes:
    with open_stored(rel) as handle:
        return handle.read()
