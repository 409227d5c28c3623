"""CSV import of the hospital registry: all rows valid or nothing imported."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from referrals.imports import hospitals_import_csv
from referrals.models import Hospital
from referrals.services import specialties_ensure_defaults
from tests.factories import AdminFactory
from tests.referrals.factories import HospitalFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _standard_specialties(db):
    # Migration 0002 seeds them, but transaction=True tests elsewhere flush every table.
    specialties_ensure_defaults()


HEADER = "name,name_en,address,latitude,longitude,phone,is_partner,accepts_referrals,weekly_capacity,open_slots,typical_wait_days,specialties\n"
GOOD = (
    "서울대학교병원,SNUH,서울 종로구 대학로 101,37.5796,126.9990,1588-5700,true,true,120,12,21,general;retina\n"
    "부산대학교병원,PNUH,부산 서구 구덕로 179,35.1006,129.0175,,yes,1,90,9,14,glaucoma|cataract\n"
)


def test_a_good_file_imports_every_row_with_specialties():
    report = hospitals_import_csv(data=(HEADER + GOOD).encode())
    assert report.ok and report.created == 2
    snuh = Hospital.objects.get(name="서울대학교병원")
    assert sorted(snuh.specialties.values_list("code", flat=True)) == ["general", "retina"]
    assert snuh.latitude == 37.5796 and snuh.open_slots == 12


def test_dry_run_imports_nothing():
    report = hospitals_import_csv(data=(HEADER + GOOD).encode(), dry_run=True)
    assert report.ok and len(report.rows) == 2
    assert not Hospital.objects.exists()


def test_one_bad_row_rejects_the_whole_file_with_errors_per_row():
    bad = (
        "A병원,,주소1,NaN,127.0,,,,,,,general\n"
        "B병원,,주소2,37.0,Infinity,,,,,,,general\n"
        "C병원,,주소3,91,127.0,,,,,,,general\n"
        "D병원,,주소4,37.0,-180.01,,,,,,,general\n"
        "E병원,,주소5,37.0,127.0,,,,,,,astrology\n"
        "서울대학교병원,,서울 종로구 대학로 101,37.5,127.0,,,,,,,general\n"
        "F병원,,주소7,37.0,127.0,,maybe,,-3,,,general\n"
        ",,주소8,37.0,127.0,,,,,,,general\n"
        "G병원,,주소9,,,,,,,,,general\n"
    )
    report = hospitals_import_csv(data=(HEADER + GOOD + bad).encode())
    assert not report.ok and report.created == 0
    by_row = {(e["row"], e["field"]) for e in report.errors}
    assert (4, "latitude") in by_row
    assert (5, "longitude") in by_row
    assert (6, "latitude") in by_row
    assert (7, "longitude") in by_row
    assert (8, "specialties") in by_row
    assert (9, "name") in by_row  # duplicate of row 2 in this file
    assert (10, "is_partner") in by_row and (10, "weekly_capacity") in by_row
    assert (11, "name") in by_row
    assert (12, "latitude") in by_row
    assert not Hospital.objects.exists()


def test_duplicate_against_the_database_is_reported():
    HospitalFactory(name="서울대학교병원", address="서울 종로구 대학로 101")
    report = hospitals_import_csv(data=(HEADER + GOOD).encode())
    assert [(e["row"], e["field"]) for e in report.errors] == [(2, "name")]
    assert Hospital.objects.count() == 1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00garbage",
        HEADER.encode(),
        b"name,latitude\nX,37\n",
        b"foo,bar\n1,2\n",
        (HEADER.strip() + ",extra\n").encode(),
    ],
)
def test_malformed_files_are_rejected_cleanly(data):
    report = hospitals_import_csv(data=data)
    assert not report.ok
    assert not Hospital.objects.exists()


def test_management_command_reports_errors_and_imports_nothing(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(HEADER + GOOD + "X,,y,95,127,,,,,,,general\n", encoding="utf-8")
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_hospitals", str(path))
    assert not Hospital.objects.exists()
    path.write_text(HEADER + GOOD, encoding="utf-8")
    call_command("import_hospitals", str(path), "--dry-run")
    assert not Hospital.objects.exists()
    call_command("import_hospitals", str(path))
    assert Hospital.objects.count() == 2


def test_admin_upload_page(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(AdminFactory())
    url = "/admin/referrals/hospital/import-csv/"
    assert client.get(url).status_code == 200
    bad = SimpleUploadedFile("h.csv", (HEADER + "X,,y,nan,127,,,,,,,general\n").encode())
    response = client.post(url, {"file": bad})
    assert response.status_code == 400 and "latitude" in response.content.decode()
    good = SimpleUploadedFile("h.csv", (HEADER + GOOD).encode())
    assert client.post(url, {"file": good}).status_code == 302
    assert Hospital.objects.count() == 2
    assert client.get("/admin/referrals/hospital/").status_code == 200
    assert client.get("/admin/referrals/hospital/?coords=missing").status_code == 200
    hospital = Hospital.objects.first()
    assert client.get(f"/admin/referrals/hospital/{hospital.pk}/change/").status_code == 200
    for page in (
        "specialty/",
        "hospitalstaffmembership/",
        "hospitalstaffmembership/add/",
        "referral/",
    ):
        assert client.get(f"/admin/referrals/{page}").status_code == 200, page


def test_seed_demo_referrals_is_idempotent():
    from accounts.models import Role, User

    call_command("seed_demo_referrals")
    call_command("seed_demo_referrals")
    assert Hospital.objects.count() >= 12
    user = User.objects.get(username="hospital")
    assert user.role == Role.HOSPITAL_STAFF
    # The partner hospital the ranking puts first for the demo's 정선 patients.
    assert user.hospital_membership.hospital.name == "강릉아산병원"
    assert user.check_password("eyebridge-demo")
