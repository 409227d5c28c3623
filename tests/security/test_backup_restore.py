"""`make backup` / `make restore`: a PostgreSQL database with a patient, a screening and its
photo is dumped, restored into a fresh database and a fresh media folder, and nothing is lost."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import psycopg
import pytest
from django.db import connection

from accounts.audit import audit_record
from screening import uploads
from screening.models import ScreeningImage
from tests.conftest import REPO_ROOT
from tests.factories import PatientFactory, ScreeningFactory

TABLES = [
    "screening_patient",
    "screening_screening",
    "screening_screeningimage",
    "accounts_auditevent",
    "accounts_user",
]


def _url(name: str) -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def _rows(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}  # noqa: S608


def _admin(sql: str) -> None:
    with psycopg.connect(_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


@pytest.mark.django_db(transaction=True)
def test_backup_then_restore_into_a_fresh_database_loses_nothing(tmp_path, settings, fundus_jpeg):
    # The data: a patient, a completed screening, its stored photo, audit rows (committed: the
    # backup runs in another process).
    patient = PatientFactory(name="홍길동")
    screening = ScreeningFactory(patient=patient)
    rgb = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(fundus_jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    stored = uploads.store_rgb(rgb)
    ScreeningImage.objects.create(
        screening=screening,
        eye="left",
        path=stored.path,
        sha256=stored.sha256,
        width=stored.width,
        height=stored.height,
        gradable=True,
        quality={},
    )
    audit_record(action="read", object_type="patient", object_ids=[patient.id])
    photo = Path(settings.MEDIA_ROOT) / stored.path
    original_bytes = photo.read_bytes()
    source_url = _url(connection.settings_dict["NAME"])
    before = _rows(source_url)

    env = {
        **os.environ,
        "DATABASE_URL": source_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "BACKUP_ROOT": str(tmp_path / "backups"),
    }
    r = subprocess.run(
        ["make", "-s", "backup"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    backup_dir = Path(r.stdout.strip().splitlines()[-1])
    if not backup_dir.is_absolute():
        backup_dir = REPO_ROOT / backup_dir
    assert {p.name for p in backup_dir.iterdir()} == {
        "db.dump",
        "media.tar.gz",
        "MANIFEST",
        "SHA256SUMS",
    }
    assert "media_files=1" in (backup_dir / "MANIFEST").read_text()

    # Disaster: restore into a database and a media folder that are brand new.
    target_name = f"{connection.settings_dict['NAME']}_restored"
    _admin(f'DROP DATABASE IF EXISTS "{target_name}"')
    _admin(f'CREATE DATABASE "{target_name}"')
    target_media = tmp_path / "restored-media"
    try:
        env = {
            **os.environ,
            "TARGET_DATABASE_URL": _url(target_name),
            "TARGET_MEDIA_ROOT": str(target_media),
        }
        r = subprocess.run(
            ["make", "-s", "restore", f"BACKUP={backup_dir}"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr

        assert _rows(_url(target_name)) == before
        assert before["screening_patient"] and before["screening_screeningimage"]
        restored_photo = target_media / stored.path
        assert restored_photo.read_bytes() == original_bytes
        assert hashlib.sha256(restored_photo.read_bytes()).hexdigest() == stored.sha256
        # The audit chain survived byte for byte (timestamps included): it still verifies.
        check = subprocess.run(
            [sys.executable, "manage.py", "verify_audit_chain"],
            cwd=REPO_ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "TEST_DATABASE_URL": _url(target_name),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0 and "audit chain OK: 1 events" in check.stdout, (
            check.stdout + check.stderr
        )
        # The append-only trigger came back with the schema.
        with (
            psycopg.connect(_url(target_name)) as conn,
            pytest.raises(psycopg.Error, match="append-only"),
        ):
            conn.execute("DELETE FROM accounts_auditevent")
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')


def test_a_damaged_backup_is_refused_before_anything_is_touched(tmp_path):
    backup = tmp_path / "b"
    backup.mkdir()
    (backup / "db.sqlite3").write_bytes(b"original")
    (backup / "media.tar.gz").write_bytes(b"")
    (backup / "MANIFEST").write_text("database=sqlite\nmedia_files=0\n")
    subprocess.run(
        "sha256sum db.sqlite3 media.tar.gz MANIFEST > SHA256SUMS",
        shell=True,
        cwd=backup,
        check=True,
    )
    (backup / "db.sqlite3").write_bytes(b"tampered")
    target = tmp_path / "target.sqlite3"
    env = {
        **os.environ,
        "TARGET_DATABASE_URL": f"sqlite:///{target}",
        "TARGET_MEDIA_ROOT": str(tmp_path / "m"),
    }
    r = subprocess.run(
        ["make", "-s", "restore", f"BACKUP={backup}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "checksum mismatch" in r.stderr
    assert not target.exists() and not (tmp_path / "m").exists()


def test_restore_without_a_backup_argument_explains_itself():
    r = subprocess.run(
        ["make", "-s", "restore"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0 and "usage: make restore BACKUP=" in r.stdout + r.stderr
