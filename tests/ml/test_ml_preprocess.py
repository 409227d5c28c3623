"""Decoding and cropping: every bad upload becomes one typed ImageError with its code."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from ml.preprocess import (
    ImageError,
    InputSpec,
    crop_fundus,
    decode_image,
    fundus_mask,
    prepare_input,
    prepare_uint8,
)
from tests.ml.ml_helpers import encode, synthetic_fundus


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_header_only(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A syntactically valid PNG that *declares* any size; its pixels are a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def test_decodes_jpeg_and_png_to_rgb_uint8(fundus: np.ndarray) -> None:
    for fmt in ("JPEG", "PNG"):
        out = decode_image(encode(fundus, fmt))
        assert out.dtype == np.uint8 and out.shape == fundus.shape
    assert np.array_equal(decode_image(encode(fundus, "PNG")), fundus)


def test_grayscale_and_palette_images_become_rgb(fundus: np.ndarray) -> None:
    gray = Image.fromarray(fundus).convert("L")
    buf = io.BytesIO()
    gray.save(buf, "PNG")
    assert decode_image(buf.getvalue()).shape == fundus.shape


def test_exif_orientation_is_applied(fundus: np.ndarray) -> None:
    img = Image.fromarray(fundus)  # 768 wide, 576 high
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    out = decode_image(buf.getvalue())
    assert out.shape[:2] == (768, 576)


def _truncated_jpeg(fundus: np.ndarray) -> bytes:
    data = encode(fundus, "JPEG", quality=90)
    return data[: len(data) // 2]


def _cmyk_jpeg(fundus: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(fundus).convert("CMYK").save(buf, "JPEG")
    return buf.getvalue()


def _png16_gray(fundus: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", fundus[..., 0].astype(np.uint16) * 257)
    assert ok
    return buf.tobytes()


def _png16_rgb(fundus: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", fundus.astype(np.uint16) * 257)
    assert ok
    return buf.tobytes()


def _gif(fundus: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(fundus).save(buf, "GIF")
    return buf.getvalue()


BAD_INPUTS = {
    "empty": (lambda f: b"", "empty"),
    "truncated_jpeg": (_truncated_jpeg, "truncated"),
    "random_bytes": (lambda f: np.random.default_rng(0).bytes(5000), "not_an_image"),
    "html": (
        lambda f: b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
        "not_an_image",
    ),
    "pdf": (lambda f: b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "not_an_image"),
    "decompression_bomb": (lambda f: png_header_only(30_000, 30_000), "decompression_bomb"),
    "huge_declared_bomb": (lambda f: png_header_only(200_000, 200_000), "decompression_bomb"),
    "absurd_aspect": (lambda f: png_header_only(60_000, 80), "too_large"),
    "one_pixel": (lambda f: encode(np.zeros((1, 1, 3), np.uint8), "PNG"), "too_small"),
    "thumbnail": (lambda f: encode(np.zeros((40, 60, 3), np.uint8), "JPEG"), "too_small"),
    "cmyk_jpeg": (_cmyk_jpeg, "unsupported_mode"),
    "png_16bit_gray": (_png16_gray, "unsupported_mode"),
    "png_16bit_rgb": (_png16_rgb, "unsupported_mode"),
    "gif": (_gif, "unsupported_format"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_image_error_with_its_code(case: str, fundus: np.ndarray) -> None:
    make, code = BAD_INPUTS[case]
    with pytest.raises(ImageError) as exc:
        decode_image(make(fundus))
    assert exc.value.code == code
    assert isinstance(exc.value, ValueError)
    assert exc.value.message.endswith(".") and len(exc.value.message) > 15


def test_limits_are_configurable(fundus: np.ndarray) -> None:
    data = encode(fundus, "PNG")
    with pytest.raises(ImageError) as exc:
        decode_image(data, max_pixels=100_000)
    assert exc.value.code == "decompression_bomb"
    with pytest.raises(ImageError) as exc:
        decode_image(data, min_side=600)
    assert exc.value.code == "too_small"


def test_crop_fundus_removes_camera_margins_and_squares(fundus: np.ndarray) -> None:
    out = crop_fundus(fundus)
    r = 0.46 * 576
    assert out.shape[0] == out.shape[1]
    assert abs(out.shape[0] - 2 * r) < 12
    mask = fundus_mask(out)
    ys, xs = np.nonzero(mask)
    assert (
        ys.min() <= 3
        and xs.min() <= 3
        and ys.max() >= out.shape[0] - 4
        and xs.max() >= out.shape[1] - 4
    )


def test_crop_fundus_on_uncropped_scikit_image_retina(retina: np.ndarray) -> None:
    # The CC0 photo is the uncropped camera field; put it in a wide camera-like frame too.
    # After cropping, the round field touches all four sides and the black share is that
    # of a circle in its square (~21%).
    frame = np.zeros((1500, 2250, 3), np.uint8)
    frame[40:1451, 500:1911] = retina
    for img in (retina, frame):
        out = crop_fundus(img)
        assert out.shape[0] == out.shape[1]
        assert 1350 < out.shape[0] <= 1411
        assert 0.15 < 1 - fundus_mask(out).mean() < 0.26
        ys, xs = np.nonzero(fundus_mask(out))
        assert (
            ys.min() <= 8
            and xs.min() <= 8
            and ys.max() >= out.shape[0] - 9
            and xs.max() >= out.shape[1] - 9
        )


def test_crop_keeps_a_circle_cut_at_top_and_bottom_round() -> None:
    full = synthetic_fundus(900, 900)
    cut = full[120:780]  # the camera clipped the circle top and bottom, as many ODIR frames
    out = crop_fundus(cut)
    assert out.shape[0] == out.shape[1]
    assert out[:40].max() == 0 and out[-40:].max() == 0  # padded, not stretched


def test_crop_leaves_an_image_without_fundus_unchanged() -> None:
    black = np.zeros((300, 400, 3), np.uint8)
    assert crop_fundus(black) is black


def test_gray_branch_input_is_equalised_gray_replicated(fundus: np.ndarray) -> None:
    spec = InputSpec(branch="gray", size=224)
    pic = prepare_uint8(fundus, spec)
    assert pic.shape == (224, 224, 3)
    assert np.array_equal(pic[..., 0], pic[..., 1]) and np.array_equal(pic[..., 1], pic[..., 2])
    hist = np.bincount(pic[..., 0].ravel(), minlength=256)
    assert pic.max() == 255 and (hist > 0).sum() > 50  # equalisation spreads the levels
    x = prepare_input(fundus, spec)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    clahe = prepare_uint8(fundus, InputSpec(branch="gray", size=224, equalize="clahe"))
    assert not np.array_equal(clahe, pic)


COLOR_GRAHAM = InputSpec(
    branch="color", size=320, contrast="graham", field_mask=True, mean=(0.5,) * 3, std=(0.25,) * 3
)
GRAY_MASKED = InputSpec(branch="gray", size=320, field_mask=True)


def _odir_or_retina(retina: np.ndarray) -> np.ndarray:
    """A real curated ODIR crop when the data set is here, else the CC0 scikit-image retina."""
    from tests.ml.ml_helpers import odir_dir

    path = odir_dir() / "images" / "0_left.jpg"
    return decode_image(path.read_bytes()) if path.is_file() else crop_fundus(retina)


def test_graham_normalisation_removes_the_camera_colour_cast_and_exposure(
    retina: np.ndarray,
) -> None:
    crop = _odir_or_retina(retina)
    ref = prepare_uint8(crop, COLOR_GRAHAM, cropped=True).astype(np.float32)
    # Another camera: a blue cast, darker, with a different white balance.
    other = np.clip(crop.astype(np.float32) * [0.75, 0.85, 1.25] * 0.8 + [0, 0, 25], 0, 255)
    moved = prepare_uint8(other.astype(np.uint8), COLOR_GRAHAM, cropped=True).astype(np.float32)
    raw_gap = np.abs(other - crop.astype(np.float32)).mean()
    mask = ref != 128
    assert np.abs(moved - ref)[mask].mean() < raw_gap / 3
    # Outside the field everything is the neutral value (0 after normalisation).
    x = prepare_input(crop, COLOR_GRAHAM, cropped=True)
    assert abs(float(x[:, 0, 0].max())) < 0.02 and abs(float(x[:, -1, -1].max())) < 0.02


def test_gray_histogram_is_taken_inside_the_field(retina: np.ndarray) -> None:
    crop = _odir_or_retina(retina)
    pic = prepare_uint8(crop, GRAY_MASKED, cropped=True)[..., 0]
    from ml.preprocess import resize_square, square_field_mask

    mask = square_field_mask(resize_square(crop, 320)) > 0
    inside = pic[mask]
    # Equalised over the field: its levels span the range evenly, the margin stays black.
    assert inside.min() < 10 and inside.max() == 255
    assert 110 < np.median(inside) < 145
    assert pic[~mask].max() == 0


def test_a_full_resolution_camera_frame_gives_the_curated_picture(retina: np.ndarray) -> None:
    """crop_fundus on a 2,592 x 1,944 camera frame (wide black margins, a caption burnt in,
    JPEG) must give the model the picture the curated crop gives."""
    crop = _odir_or_retina(retina)
    side = 1800
    big = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)
    frame = np.zeros((1944, 2592, 3), np.uint8)
    y0, x0 = (1944 - side) // 2, (2592 - side) // 2
    frame[y0 : y0 + side, x0 : x0 + side] = big
    cv2.putText(frame, "OD 2026-12-01", (40, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
    jpeg = decode_image(encode(frame, "JPEG", quality=92))
    for spec in (COLOR_GRAHAM, GRAY_MASKED):
        a = prepare_uint8(jpeg, spec).astype(np.float32)
        b = prepare_uint8(crop, spec).astype(np.float32)  # training crops the curated file too
        assert np.abs(a - b).mean() < 6, spec.branch
