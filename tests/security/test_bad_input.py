"""Bad-input corpus: hostile uploads and API payloads are refused with a 4xx (or accepted safely),
never a 5xx, and never leave rows or files behind.

tests/screening/test_submission.py covers the basic refusals of the upload endpoint one by one;
this corpus runs the whole list from issue 6 through one harness with the same invariants, adds
the cases that file does not have (decompression bombs, lying headers, CMYK, 16-bit, real 100 MB
and 15 MB+1 bodies, polyglots, filenames, hostile form fields) and every JSON endpoint.

Set BAD_INPUT_REPORT=<file> to append "kind<TAB>case<TAB>status" lines (docs/reliability.md).
"""

from __future__ import annotations

import io
import os
import struct
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from PIL import Image
from rest_framework.test import APIClient

from screening.models import Patient, Screening, ScreeningImage
from tests.factories import HealthWorkerFactory, PatientFactory, ScreeningFactory

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


def _report(kind: str, case: str, status: int) -> None:
    target = os.environ.get("BAD_INPUT_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(f"{kind}\t{case}\t{status}\n")


# --- image builders --------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(side: int = 20_000) -> bytes:
    """A real, complete 1-bit PNG of side x side black pixels: ~50 MB raw, a few KB on the wire
    (400 megapixels once decoded to RGB: 1.2 GB)."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row * 1000) for _ in range(side // 1000)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def png_header_bomb() -> bytes:
    """Header claims 60,000 x 60,000 RGB; the pixel data is a stub."""
    ihdr = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + _chunk(b"IEND", b"")
    )


def _pil(mode: str, size: tuple[int, int], fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128 if mode in ("L", "1") else None).save(buf, fmt, **save)
    return buf.getvalue()


def jpeg_lying_header() -> bytes:
    """A valid 256x256 JPEG whose SOF header is patched to claim 65,000 x 65,000."""
    data = bytearray(_pil("RGB", (256, 256), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65_000, 65_000)
    return bytes(data)


def png_16bit() -> bytes:
    return cv2.imencode(".png", np.full((256, 256, 3), 30000, np.uint16))[1].tobytes()


def png_with_text(fundus: bytes) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Patient Hong Gildong")
    info.add_text("GPS", "37.5665N 126.9780E")
    buf = io.BytesIO()
    Image.open(io.BytesIO(fundus)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def jpeg_with_exif(fundus: bytes) -> bytes:
    img = Image.open(io.BytesIO(fundus))
    exif = Image.Exif()
    exif[0x013B] = "Hong Gildong"  # Artist
    exif[0x010F] = "Clinic Camera"  # Make
    exif.get_ifd(0x8825).update({1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0)})
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=92)
    return buf.getvalue()


def _zip() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.html", "<script>alert(1)</script>")
    return buf.getvalue()


# Each case: (id, builder(fundus) -> (bytes, filename, content_type), extra form fields, expected)
# expected: "4xx" (refused) or "accept" (stored safely: re-encoded, server-named, no metadata).
UploadCase = tuple[str, Callable[[bytes], tuple[bytes, str, str]], dict, str]
UPLOAD_CASES: list[UploadCase] = [
    ("png_bomb_20000px_1bit", lambda f: (png_bomb(), "eye.png", "image/png"), {}, "4xx"),
    ("png_header_claims_60000px", lambda f: (png_header_bomb(), "eye.png", "image/png"), {}, "4xx"),
    (
        "jpeg_header_claims_65000px",
        lambda f: (jpeg_lying_header(), "eye.jpg", "image/jpeg"),
        {},
        "4xx",
    ),
    ("truncated_jpeg", lambda f: (f[: len(f) // 2], "eye.jpg", "image/jpeg"), {}, "4xx"),
    ("jpeg_cut_after_header", lambda f: (f[:700], "eye.jpg", "image/jpeg"), {}, "4xx"),
    (
        "png_followed_by_html",
        lambda f: (
            cv2.imencode(".png", cv2.imdecode(np.frombuffer(f, np.uint8), 1))[1].tobytes()
            + b"<html><script>alert(1)</script></html>",
            "eye.png",
            "image/png",
        ),
        {},
        "accept",
    ),
    ("jpeg_zip_polyglot", lambda f: (f + _zip(), "eye.jpg", "image/jpeg"), {}, "accept"),
    (
        "html_named_jpg",
        lambda f: (b"<html><body><script>alert(1)</script></body></html>", "eye.jpg", "image/jpeg"),
        {},
        "4xx",
    ),
    (
        "svg_with_script_named_jpg",
        lambda f: (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "eye.jpg",
            "image/jpeg",
        ),
        {},
        "4xx",
    ),
    (
        "valid_jpeg_declared_text_html_named_php",
        lambda f: (f, "shell.php", "text/html"),
        {},
        "accept",
    ),
    ("gif_as_jpeg", lambda f: (_pil("RGB", (256, 256), "GIF"), "eye.jpg", "image/jpeg"), {}, "4xx"),
    (
        "tiff_as_jpeg",
        lambda f: (_pil("RGB", (256, 256), "TIFF"), "eye.jpg", "image/jpeg"),
        {},
        "4xx",
    ),
    (
        "pdf_as_jpeg",
        lambda f: (
            b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF",
            "eye.jpg",
            "image/jpeg",
        ),
        {},
        "4xx",
    ),
    (
        "webp_as_jpeg",
        lambda f: (_pil("RGB", (256, 256), "WEBP"), "eye.jpg", "image/jpeg"),
        {},
        "4xx",
    ),
    ("bmp_as_jpeg", lambda f: (_pil("RGB", (256, 256), "BMP"), "eye.jpg", "image/jpeg"), {}, "4xx"),
    ("cmyk_jpeg", lambda f: (_pil("CMYK", (256, 256), "JPEG"), "eye.jpg", "image/jpeg"), {}, "4xx"),
    ("png_16bit", lambda f: (png_16bit(), "eye.png", "image/png"), {}, "4xx"),
    ("zero_bytes", lambda f: (b"", "eye.jpg", "image/jpeg"), {}, "4xx"),
    ("one_by_one_png", lambda f: (_pil("RGB", (1, 1), "PNG"), "eye.png", "image/png"), {}, "4xx"),
    (
        "one_by_one_jpeg",
        lambda f: (_pil("RGB", (1, 1), "JPEG"), "eye.jpg", "image/jpeg"),
        {},
        "4xx",
    ),
    (
        "photo_limit_plus_one_byte_15MB",
        lambda f: (b"\xff\xd8\xff" + b"\x00" * (15 * MB - 2), "eye.jpg", "image/jpeg"),
        {},
        "4xx",
    ),
    (
        "path_traversal_filename",
        lambda f: (f, "../../../../etc/cron.d/x.jpg", "image/jpeg"),
        {},
        "accept",
    ),
    (
        "absolute_windows_path_filename",
        lambda f: (f, "C:\\Windows\\System32\\evil.jpg", "image/jpeg"),
        {},
        "accept",
    ),
    (
        "unicode_rtl_override_filename",
        lambda f: (f, "환자사진\u202egpj.exe", "image/jpeg"),
        {},
        "accept",
    ),
    (
        "nul_and_newline_filename",
        lambda f: (f, "eye\x00.jpg\r\nX-Injected: 1", "image/jpeg"),
        {},
        "accept",
    ),
    ("very_long_filename", lambda f: (f, "a" * 2000 + ".jpg", "image/jpeg"), {}, "accept"),
    (
        "exif_gps_and_names_jpeg",
        lambda f: (jpeg_with_exif(f), "eye.jpg", "image/jpeg"),
        {},
        "accept",
    ),
    (
        "png_text_chunks_with_names",
        lambda f: (png_with_text(f), "eye.png", "image/png"),
        {},
        "accept",
    ),
    ("unknown_patient_id", lambda f: (f, "eye.jpg", "image/jpeg"), {"patient": 999_999_999}, "4xx"),
    ("patient_id_beyond_bigint", lambda f: (f, "eye.jpg", "image/jpeg"), {"patient": 2**70}, "4xx"),
    ("patient_id_sql_text", lambda f: (f, "eye.jpg", "image/jpeg"), {"patient": "1 OR 1=1"}, "4xx"),
    ("unknown_symptom", lambda f: (f, "eye.jpg", "image/jpeg"), {"symptoms": ["<script>"]}, "4xx"),
    (
        "too_many_form_fields",
        lambda f: (f, "eye.jpg", "image/jpeg"),
        {"symptoms": ["dryness"] * 300},
        "4xx",
    ),
    (
        "accept_ungradable_not_boolean",
        lambda f: (f, "eye.jpg", "image/jpeg"),
        {"accept_ungradable": "perhaps"},
        "4xx",
    ),
    ("notes_one_megabyte", lambda f: (f, "eye.jpg", "image/jpeg"), {"notes": "x" * MB}, "4xx"),
    (
        "server_field_status",
        lambda f: (f, "eye.jpg", "image/jpeg"),
        {"status": "completed", "triage": "normal"},
        "4xx",
    ),
]


def _stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def hw_client():
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    client = APIClient()
    client.force_authenticate(hw)
    return client, patient


@pytest.mark.parametrize("case", UPLOAD_CASES, ids=[c[0] for c in UPLOAD_CASES])
def test_hostile_upload_is_refused_or_stored_safely(
    case, hw_client, fundus_jpeg, settings, tmp_path
):
    name, build, extra, expected = case
    client, patient = hw_client
    data, filename, content_type = build(fundus_jpeg)
    form = {
        "patient": patient.id,
        "left_image": SimpleUploadedFile(filename, data, content_type),
        "accept_ungradable": True,
        **extra,
    }
    before = (
        set(Path(settings.MEDIA_ROOT).parent.rglob("*"))
        if Path(settings.MEDIA_ROOT).parent.exists()
        else set()
    )
    r = client.post("/api/v1/screenings/", form, format="multipart")
    _report("upload", name, r.status_code)
    assert r.status_code < 500, (name, r.content[:500])
    if expected == "4xx":
        assert 400 <= r.status_code < 500, (name, r.status_code, r.content[:300])
        # Nothing half-written: no screening, no image row, no file.
        assert Screening.objects.count() == 0 and ScreeningImage.objects.count() == 0
        assert _stored_files(settings) == []
    else:
        assert r.status_code == 201, (name, r.content[:300])
        (image,) = ScreeningImage.objects.all()
        (stored,) = _stored_files(settings)
        root = Path(settings.MEDIA_ROOT).resolve()
        # Server-chosen, content-addressed name inside MEDIA_ROOT, whatever the client called it.
        assert stored.resolve().is_relative_to(root / "fundus")
        assert stored.name == f"{image.sha256}.jpg"
        stored_bytes = stored.read_bytes()
        assert stored_bytes.startswith(b"\xff\xd8\xff") and stored_bytes.endswith(b"\xff\xd9")
        for needle in (
            b"Exif",
            b"Hong Gildong",
            b"Clinic Camera",
            b"<script",
            b"PK\x03\x04",
            b"GPS",
        ):
            assert needle not in stored_bytes, (name, needle)
        assert Image.open(io.BytesIO(stored_bytes)).getexif() == {}
    # Nothing written anywhere else next to MEDIA_ROOT (path traversal).
    after = set(Path(settings.MEDIA_ROOT).parent.rglob("*"))
    outside = {
        p
        for p in after - before
        if not p.resolve().is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    }
    assert outside == set()


def test_a_real_100_mb_body_is_refused_before_it_is_read(hw_client, settings):
    client, patient = hw_client
    payload = b"\xff\xd8\xff" + b"\x00" * (100 * MB)
    body = encode_multipart(
        BOUNDARY,
        {"patient": patient.id, "left_image": SimpleUploadedFile("eye.jpg", payload, "image/jpeg")},
    )
    assert len(body) > 100 * MB
    r = client.generic("POST", "/api/v1/screenings/", body, content_type=MULTIPART_CONTENT)
    _report("upload", "body_100MB", r.status_code)
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    assert Screening.objects.count() == 0 and _stored_files(settings) == []


def test_a_lying_content_length_is_a_400(hw_client):
    client, _ = hw_client
    r = client.generic(
        "POST", "/api/v1/screenings/", b"x", content_type=MULTIPART_CONTENT, CONTENT_LENGTH="12abc"
    )
    _report("upload", "content_length_not_a_number", r.status_code)
    assert r.status_code == 400


# --- JSON API payloads -------------------------------------------------------------------
def _deep(levels: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * levels + closer * levels).encode()


def _deep_object(levels: int) -> bytes:
    return ('{"a":' * levels + "1" + "}" * levels).encode()


# (id, raw body, content type)
PAYLOADS: list[tuple[str, bytes, str]] = [
    ("empty_body", b"", "application/json"),
    ("empty_object", b"{}", "application/json"),
    ("json_null", b"null", "application/json"),
    ("array_not_object", b"[1, 2, 3]", "application/json"),
    ("string_not_object", b'"hello"', "application/json"),
    ("malformed_json", b'{"name": ', "application/json"),
    (
        "wrong_types",
        b'{"name": ["x"], "birth_date": {}, "sex": 1, "consent_given": "maybe", "screening": "one", '
        b'"medication": [], "quantity": {}, "hospital": true, "code": 123456, "username": {}, '
        b'"password": [], "patient": {"$gt": ""}}',
        "application/json",
    ),
    (
        "nan",
        b'{"name": "A", "birth_date": "1950-01-01", "sex": "F", "consent_given": true, '
        b'"home_latitude": NaN, "home_longitude": 1, "screening": NaN, "quantity": NaN}',
        "application/json",
    ),
    (
        "infinity",
        b'{"home_latitude": Infinity, "home_longitude": -Infinity, "quantity": Infinity}',
        "application/json",
    ),
    (
        "float_overflow_1e400",
        b'{"home_latitude": 1e400, "home_longitude": 1e400, "screening": 1e400}',
        "application/json",
    ),
    (
        "integer_beyond_bigint",
        b'{"screening": 1180591620717411303424, "medication": 1180591620717411303424, '
        b'"hospital": 1180591620717411303424, "quantity": 1180591620717411303424}',
        "application/json",
    ),
    ("integer_5000_digits", b'{"screening": ' + b"9" * 5000 + b"}", "application/json"),
    (
        "out_of_range_coordinates",
        b'{"name": "A", "birth_date": "1950-01-01", "sex": "F", "consent_given": true, '
        b'"home_latitude": 91.5, "home_longitude": 181}',
        "application/json",
    ),
    ("deep_array_10000", _deep(10_000), "application/json"),
    ("deep_object_10000", _deep_object(10_000), "application/json"),
    ("deep_array_100", _deep(100), "application/json"),
    ("huge_body_3MB", b'{"name": "' + b"x" * (3 * MB) + b'"}', "application/json"),
    (
        "huge_string_field_1MB",
        b'{"name": "' + b"x" * MB + b'", "note": "' + b"y" * 1000 + b'"}',
        "application/json",
    ),
    ("invalid_utf8", b'{"name": "\xff\xfe\xfa", "username": "\xc3\x28"}', "application/json"),
    ("utf16_body", '{"name": "A"}'.encode("utf-16"), "application/json"),
    (
        "lone_surrogate_escape",
        b'{"name": "A\\ud800", "birth_date": "1950-01-01", "sex": "F", "consent_given": true, '
        b'"username": "\\udfff", "password": "x", "note": "\\udc00", "code": "\\ud800"}',
        "application/json",
    ),
    (
        "nul_in_strings",
        b'{"name": "A\\u0000B", "birth_date": "1950-01-01", "sex": "F", "consent_given": true, '
        b'"username": "a\\u0000b", "password": "x", "note": "\\u0000", "code": "\\u0000"}',
        "application/json",
    ),
    (
        "unknown_fields",
        b'{"status": "completed", "is_staff": true, "site": 1, "id": 1}',
        "application/json",
    ),
    ("text_plain_body", b"name=A", "text/plain"),
    (
        "xml_body",
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
        "application/xml",
    ),
]


def _payload_endpoints():
    """The JSON write endpoints, each with the client of an actor allowed to call it."""
    from tests.pharmacy.factories import PharmacistFactory, PharmacyFactory, kiosk_for

    hw = HealthWorkerFactory()
    pharmacy = PharmacyFactory()
    pharmacist = PharmacistFactory(pharmacy=pharmacy)
    kiosk, secret = kiosk_for(pharmacy)
    staff = APIClient()
    staff.force_authenticate(hw)
    pharm = APIClient()
    pharm.force_authenticate(pharmacist)
    kiosk_client = APIClient()
    kiosk_client.credentials(HTTP_AUTHORIZATION=f"Kiosk {kiosk.kiosk_id}:{secret}")
    screening = ScreeningFactory(site=hw.site_membership.site)
    return {
        "patients": (staff, "/api/v1/patients/"),
        "auth_token": (APIClient(), "/api/v1/auth/token/"),
        "prescription_request": (staff, "/api/v1/prescriptions/request/"),
        "prescription_approve": (pharm, "/api/v1/prescriptions/1/approve/"),
        "referral_create": (staff, "/api/v1/referrals/"),
        "kiosk_dispense": (kiosk_client, "/api/v1/kiosk/dispenses/"),
        "kiosk_heartbeat": (kiosk_client, "/api/v1/kiosk/heartbeat/"),
    }, screening


# Combinations that are valid requests: a heartbeat has no required field.
VALID = {("kiosk_heartbeat", "empty_body"), ("kiosk_heartbeat", "empty_object")}
ENDPOINTS = [
    "patients",
    "auth_token",
    "prescription_request",
    "prescription_approve",
    "referral_create",
    "kiosk_dispense",
    "kiosk_heartbeat",
]


def _row_counts() -> dict[str, int]:
    from rest_framework.authtoken.models import Token

    from pharmacy.models import Dispense, Prescription
    from referrals.models import Referral

    return {
        m.__name__: m.objects.count()
        for m in (Patient, Screening, Prescription, Dispense, Referral, Token)
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=[p[0] for p in PAYLOADS])
def test_hostile_json_payload_is_a_4xx_and_writes_nothing(endpoint, payload):
    name, body, content_type = payload
    endpoints, _ = _payload_endpoints()
    client, url = endpoints[endpoint]
    before = _row_counts()
    r = client.generic(
        "POST", url, body, content_type=content_type, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
    )
    _report(f"json:{endpoint}", name, r.status_code)
    if (endpoint, name) in VALID:
        assert 200 <= r.status_code < 300, (endpoint, name, r.status_code, r.content[:300])
    else:
        assert 400 <= r.status_code < 500, (endpoint, name, r.status_code, r.content[:300])
    assert _row_counts() == before


def test_nan_never_reaches_a_stored_coordinate():
    hw = HealthWorkerFactory()
    client = APIClient()
    client.force_authenticate(hw)
    r = client.generic(
        "POST",
        "/api/v1/patients/",
        b'{"name": "A", "birth_date": "1950-01-01", "sex": "F", '
        b'"consent_given": true, "home_latitude": NaN, "home_longitude": NaN}',
        content_type="application/json",
    )
    assert r.status_code == 400 and "NaN" in r.json()["detail"]
    assert Patient.objects.count() == 0


def test_a_json_body_over_the_limit_is_a_clear_413_before_it_is_read(settings):
    client = APIClient()
    client.force_authenticate(HealthWorkerFactory())
    body = b'{"name": "' + b"x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b'"}'
    r = client.generic("POST", "/api/v1/patients/", body, content_type="application/json")
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_the_json_parser_limits_bodies_that_arrive_without_a_length(settings):
    """The parser's own cap, for bodies the middleware cannot size (no Content-Length)."""
    from config.parsers import PayloadTooLarge, StrictJSONParser

    settings.API_JSON_MAX_BYTES = 100
    with pytest.raises(PayloadTooLarge):
        StrictJSONParser().parse(io.BytesIO(b'{"a": "' + b"x" * 200 + b'"}'))
    assert StrictJSONParser().parse(io.BytesIO(b'{"a": [1, {"b": 2.5}]}')) == {"a": [1, {"b": 2.5}]}
