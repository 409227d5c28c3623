"""Decoding, fundus cropping and model-input preparation (OpenCV + Pillow).

Everything the model sees goes through :func:`prepare_input`, in training, evaluation
and inference alike, so the three can never disagree about resizing or the grayscale
branch's histogram equalisation.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Formats a fundus camera or a phone adaptor produces; anything else is refused with a
# clear code rather than decoded by whichever Pillow plugin happens to claim it.
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP"})
# Modes that convert to 8-bit RGB without losing meaning. CMYK (print files) and 16-bit
# or float modes (scientific exports) are refused: silently squashing them would show
# the model colours it never saw in training.
_ALLOWED_MODES = frozenset({"RGB", "RGBA", "L", "LA", "P", "PA", "1"})
MAX_BYTES = 60_000_000


class ImageError(ValueError):
    """The one error raised for bytes that are not a usable image.

    ``code`` is stable and machine-readable; ``message`` is a sentence a health worker
    or an API client can read.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _png_bit_depth(data: bytes) -> int | None:
    # Pillow opens 48-bit RGB PNGs as 8-bit "RGB" and drops the low byte silently, so the
    # bit depth has to be read from the IHDR chunk itself (byte 24 of the file).
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24 and data[12:16] == b"IHDR":
        return data[24]
    return None


def decode_image(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    max_side: int = 10_000,
    min_side: int = 64,
) -> np.ndarray:
    """Decode JPEG/PNG (also WebP/BMP) bytes to an RGB uint8 array (H, W, 3).

    EXIF orientation is applied. Dimensions are checked from the header before any
    pixel is decoded, so a decompression bomb costs nothing. Raises :class:`ImageError`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError("not_an_image", "Expected the raw bytes of an image file.")
    data = bytes(data)
    if len(data) == 0:
        raise ImageError("empty", "The uploaded file is empty.")
    if len(data) > MAX_BYTES:
        raise ImageError(
            "too_large",
            f"The file is larger than {MAX_BYTES // 1_000_000} MB; send a smaller photo.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            "decompression_bomb", "The image declares far more pixels than a fundus photo has."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not_an_image", "The file is not a JPEG or PNG image.") from exc
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad upload, not a crash
        raise ImageError("corrupt", "The image file is damaged and cannot be read.") from exc

    if img.format not in ALLOWED_FORMATS:
        raise ImageError(
            "unsupported_format",
            f"{img.format or 'This'} files are not accepted; send a JPEG or PNG.",
        )
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(
            "decompression_bomb",
            f"The image declares {width}x{height} pixels, more than the {max_pixels:,} allowed.",
        )
    if max(width, height) > max_side:
        raise ImageError(
            "too_large",
            f"The image is {width}x{height}; the longest side may be at most {max_side} px.",
        )
    if min(width, height) < min_side:
        raise ImageError(
            "too_small", f"The image is {width}x{height}; each side must be at least {min_side} px."
        )
    if img.mode not in _ALLOWED_MODES or _png_bit_depth(data) == 16:
        raise ImageError(
            "unsupported_mode",
            f"Colour mode {img.mode}{' 16-bit' if _png_bit_depth(data) == 16 else ''} is not "
            "supported; save the photo as an 8-bit RGB JPEG or PNG.",
        )

    # Never accept half a picture: a truncated upload must be resent, not graded.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
        rgb = img.convert("RGB")
    except OSError as exc:
        text = str(exc).lower()
        if "truncat" in text or "premature" in text or "broken" in text:
            raise ImageError(
                "truncated", "The image file is incomplete (the upload was cut off); send it again."
            ) from exc
        raise ImageError("corrupt", "The image file is damaged and cannot be read.") from exc
    except Exception as exc:  # noqa: BLE001
        raise ImageError("corrupt", "The image file is damaged and cannot be read.") from exc
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError("corrupt", "The image file is damaged and cannot be read.")
    return np.ascontiguousarray(arr)


def fundus_mask(rgb: np.ndarray, *, threshold: int = 20) -> np.ndarray:
    """Boolean mask of the illuminated (non-black) area, at the image's own resolution."""
    bright = rgb.max(axis=2) if rgb.ndim == 3 else rgb
    mask = (bright > threshold).astype(np.uint8)
    # Opening removes JPEG noise and text overlays in the black margin.
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return mask.astype(bool)


def _fundus_bbox(rgb: np.ndarray, threshold: int = 20) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the largest bright blob, found on a <=512 px copy for speed."""
    h, w = rgb.shape[:2]
    scale = min(1.0, 512 / max(h, w))
    small = (
        cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        if scale < 1.0
        else rgb
    )
    mask = fundus_mask(small, threshold=threshold).astype(np.uint8)
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = stats[best]
    if area < 0.02 * mask.size:
        return None
    inv = 1.0 / scale
    return (
        max(0, int(np.floor(x * inv))),
        max(0, int(np.floor(y * inv))),
        min(w, int(np.ceil((x + bw) * inv))),
        min(h, int(np.ceil((y + bh) * inv))),
    )


def crop_fundus(rgb: np.ndarray) -> np.ndarray:
    """Crop the black border around the circular fundus and pad the result to a square.

    Padding (with black) rather than stretching keeps the disc round when the camera cut
    the circle at the top and bottom, as most ODIR frames are. If no fundus-like bright
    region is found the image is returned unchanged; the quality gate rejects it.
    """
    box = _fundus_bbox(rgb)
    if box is None:
        return rgb
    x0, y0, x1, y1 = box
    crop = rgb[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    side = max(h, w)
    if h == w:
        return np.ascontiguousarray(crop)
    out = np.zeros((side, side, 3), dtype=rgb.dtype)
    oy, ox = (side - h) // 2, (side - w) // 2
    out[oy : oy + h, ox : ox + w] = crop
    return out


@dataclass(frozen=True)
class InputSpec:
    """What a branch expects; saved beside its weights (config.yaml) and read back."""

    branch: str  # "color" | "gray"
    size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    equalize: str = "hist"  # "hist" (cv2.equalizeHist) or "clahe"; gray branch only
    # "graham": subtract the local average colour (Graham, Kaggle DR 2015) so that the colour
    # cast, exposure and illumination gradient of the camera drop out; "none": raw colour.
    contrast: str = "none"
    # Restrict the picture to the camera's circular field: what lies outside is set to the
    # neutral value, and the gray branch's histogram is taken over the field only.
    field_mask: bool = False


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if max(rgb.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interp)


# Graham's blur scale: a tenth of the field radius removes the illumination gradient and
# the colour cast but keeps vessels, exudates and haemorrhages (a few pixels to ~1/20 side).
GRAHAM_SIGMA = 1 / 30
GRAHAM_GAIN = 4.0


def square_field_mask(rgb_square: np.ndarray, *, threshold: int = 12) -> np.ndarray:
    """uint8 0/1 mask of the camera field in a cropped, square picture.

    The field is where the picture is lit, inside the inscribed circle (``crop_fundus``
    centres the fundus and pads a cut circle with black), shrunk by 2% of the side so the
    dark rim of the lens aperture does not count as retina.
    """
    size = rgb_square.shape[0]
    lit = (cv2.blur(rgb_square.max(axis=2), (5, 5)) > threshold).astype(np.uint8)
    circle = np.zeros((size, size), np.uint8)
    cv2.circle(circle, (size // 2, size // 2), int(size * 0.49), 1, thickness=-1)
    mask = lit & circle
    k = max(3, int(size * 0.02) | 1)
    return cv2.erode(mask, np.ones((k, k), np.uint8))


def graham_normalize(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``128 + 4 * (picture - local average)`` inside the field, 128 outside.

    The local average is a normalised convolution over the field only, so the black margin
    does not darken the average near the rim (the bright ring plain Graham leaves there).
    """
    size = rgb.shape[0]
    # The local average is smooth (sigma ~ size/30), so it is computed on a quarter-size copy
    # and brought back up: the same picture to within a grey level, 5x cheaper.
    small = max(16, size // 4)
    sigma = max(0.5, small * GRAHAM_SIGMA)
    m = mask.astype(np.float32)
    f = rgb.astype(np.float32) * m[:, :, None]
    fs = cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA)
    ms = cv2.resize(m, (small, small), interpolation=cv2.INTER_AREA)
    num = cv2.GaussianBlur(fs, (0, 0), sigma)
    den = cv2.GaussianBlur(ms, (0, 0), sigma)[:, :, None]
    local = cv2.resize(num / np.maximum(den, 1e-3), (size, size), interpolation=cv2.INTER_LINEAR)
    out = 128.0 + GRAHAM_GAIN * (rgb.astype(np.float32) - local)
    out = np.where(m[:, :, None] > 0, out, 128.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def _equalize_in_mask(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Histogram equalisation whose histogram comes from the field only (the black margin,
    a third of the square, would otherwise take the lower half of the output range)."""
    vals = gray[mask > 0]
    if vals.size < 16:
        return cv2.equalizeHist(gray)
    hist = np.bincount(vals, minlength=256).astype(np.float64)
    cdf = hist.cumsum()
    lo = cdf[cdf > 0][0]
    lut = np.clip(np.round((cdf - lo) / max(1.0, cdf[-1] - lo) * 255), 0, 255).astype(np.uint8)
    out = lut[gray]
    out[mask == 0] = 0
    return out


def to_branch_rgb(rgb_resized: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Colour branch: unchanged or Graham-normalised. Gray branch: luma, equalised,
    replicated to 3 channels. With ``spec.field_mask`` both see only the camera field."""
    mask = square_field_mask(rgb_resized) if spec.field_mask else None
    if spec.branch == "color":
        if spec.contrast == "graham":
            return graham_normalize(
                rgb_resized, mask if mask is not None else np.ones(rgb_resized.shape[:2], np.uint8)
            )
        if mask is not None:
            return rgb_resized * mask[:, :, None]
        return rgb_resized
    if spec.branch != "gray":
        raise ValueError(f"unknown branch {spec.branch!r}")
    gray = cv2.cvtColor(rgb_resized, cv2.COLOR_RGB2GRAY)
    if spec.equalize == "clahe":
        gray = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(gray)
        if mask is not None:
            gray = gray * mask
    elif mask is not None:
        gray = _equalize_in_mask(gray, mask)
    else:
        gray = cv2.equalizeHist(gray)
    return np.repeat(gray[:, :, None], 3, axis=2)


def normalize(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), scaled and standardised."""
    x = images.astype(np.float32) * (1.0 / 255.0)
    x -= np.asarray(mean, dtype=np.float32)
    x /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def prepare_uint8(rgb: np.ndarray, spec: InputSpec, *, cropped: bool = False) -> np.ndarray:
    """Decoded RGB -> the branch's uint8 (size, size, 3) picture (crop, resize, gray/eq)."""
    if not cropped:
        rgb = crop_fundus(rgb)
    return to_branch_rgb(resize_square(rgb, spec.size), spec)


def prepare_input(rgb: np.ndarray, spec: InputSpec, *, cropped: bool = False) -> np.ndarray:
    """Decoded RGB -> float32 (3, size, size) tensor data for one branch."""
    return normalize(prepare_uint8(rgb, spec, cropped=cropped)[None], spec.mean, spec.std)[0]
