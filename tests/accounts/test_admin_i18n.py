"""The Django admin in the reader's language (issue 17.11): every model named in Korean and English,
with a Korean plural that is the noun itself ("의약품", not "의약품s"), rows labelled by what they
are rather than "ScreeningImage object (20)", and JSON shown indented rather than on one line.

Every registered admin's list and one change page per model are rendered, in both languages, by a
superuser, with one row of every model made beforehand."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.db.models import Model
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.text import capfirst

from accounts import audit
from accounts.admin_json import PrettyJSONFormField, json_pretty
from accounts.models import AdminAlert, OutboundMessage
from dashboard.models import DashboardAccess
from grading.models import CaseEvent, EyeRead, GraderRead
from pharmacy.models import IdempotencyRecord, KioskCallRequest, PharmacyAlert
from tests.factories import AdminFactory, HealthWorkerFactory, ScreeningFactory
from tests.grading.factories import GraderFactory, open_case, with_photos
from tests.pharmacy.conftest import kiosk_client, present
from tests.pharmacy.factories import (
    MedicationFactory,
    PharmacistFactory,
    approved_prescription,
    kiosk_for,
    protocol,
    stock,
)
from tests.referrals.factories import HospitalStaffFactory, ReferralFactory

pytestmark = pytest.mark.django_db

OUR_APPS = ("accounts", "screening", "grading", "pharmacy", "referrals", "dashboard", "config")
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# An English plural "s" glued to a Korean noun, as Django makes it when a model has no
# verbose_name_plural: "의약품s", "키오스크s".
BROKEN_PLURAL = re.compile(r"[\uac00-\ud7a3]s\b")
REASONS = [{"code": "treatable_symptom", "params": {"symptom": "dryness", "note": "눈이 건조함"}}]


def our_models() -> list[type[Model]]:
    return [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]


def registered() -> list[type[Model]]:
    return list(admin.site._registry)


@pytest.fixture
def world():
    """One row of every model the admin lists (and of the inlines' models)."""
    screening = ScreeningFactory(
        triage="referable",
        findings=["D"],
        symptoms=["dryness"],
        reasons=REASONS,
    )
    with_photos(screening)
    case = open_case(screening)
    grader = GraderFactory()
    read = GraderRead.objects.create(
        case=case, grader=grader, role="primary", next_step="referable", refer=True, findings=["D"]
    )
    EyeRead.objects.create(read=read, eye="left", gradable=True, findings=["D"], dr_grade="mild")
    CaseEvent.objects.create(case=case, kind="read", read=read, actor=grader, note="1차 판독")

    pharmacist = PharmacistFactory()
    pharmacy = pharmacist.pharmacist_membership.pharmacy
    medication = MedicationFactory()
    protocol(medication)
    kiosk, secret = kiosk_for(pharmacy, name="보건소 앞 키오스크")
    stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)
    api = kiosk_client(kiosk, secret)
    assert present(api, code).status_code in (200, 201)
    assert api.post("/api/v1/kiosk/call-requests/", {}, format="json").status_code in (200, 201)
    # The kiosk API's answers are what IdempotencyRecord keeps; make one hold Korean text.
    IdempotencyRecord.objects.filter(kiosk=kiosk).update(
        response_body={"detail": "복약지도를 확인하세요", "lines": [{"slot": "A1", "quantity": 1}]}
    )
    assert KioskCallRequest.objects.exists()
    PharmacyAlert.objects.create(
        pharmacy=pharmacy,
        kiosk=kiosk,
        kind="dispense_failed",
        object_ref="dispense:1",
        message="걸림",
    )

    ReferralFactory()
    HospitalStaffFactory()
    HealthWorkerFactory()
    DashboardAccess.objects.create(user=pharmacist, regions=["강원"], note="보건소장")
    OutboundMessage.objects.create(
        to="010-0000-0000",
        body="수령 코드",
        backend="console",
        status="sent",
        topic="dispense_code",
    )
    AdminAlert.objects.create(kind="screening_failed", message="실패", object_ref="screening:1")
    # Rows that migrations ship (a transactional test elsewhere may have flushed them).
    from screening.consent import consent_text_current
    from screening.models import TriageRule

    assert consent_text_current() is not None
    TriageRule.objects.get_or_create(
        class_code="D", risk_factor="diabetes", defaults={"threshold": 0.3}
    )
    audit.audit_record(
        action="read",
        object_type="patient",
        object_ids=[screening.patient_id],
        extra={"뷰": "상세"},
    )
    return {"screening": screening}


def admin_client(client, language: str):
    client.force_login(AdminFactory(username=f"admin-{language}", preferred_language=language))
    return client


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def assert_readable(text: str, url: str) -> None:
    assert "object (" not in text, url
    assert not BROKEN_PLURAL.search(text), (url, BROKEN_PLURAL.findall(text))


def test_every_model_of_ours_is_named_in_both_languages():
    for model in our_models():
        opts = model._meta
        # Set on the model, not derived by Django from the class name ("screening image").
        assert "verbose_name" in opts.original_attrs, opts.label
        assert "verbose_name_plural" in opts.original_attrs, opts.label
        assert isinstance(opts.verbose_name, Promise), opts.label
        assert isinstance(opts.verbose_name_plural, Promise), opts.label
        with translation.override("ko"):
            singular, plural = str(opts.verbose_name), str(opts.verbose_name_plural)
        # Korean has no plural: the list is named by the noun itself.
        assert HANGUL.search(singular), (opts.label, singular)
        assert plural == singular, (opts.label, singular, plural)
        with translation.override("en"):
            assert not HANGUL.search(str(opts.verbose_name_plural)), opts.label


def test_the_lockout_records_of_django_axes_are_named_in_korean_too():
    """django-axes ships no Korean catalogue; ours (accounts/vendor_messages.py) covers its admin."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        opts = model._meta
        with translation.override("ko"):
            names = [str(opts.verbose_name), str(opts.verbose_name_plural)]
            names += [str(f.verbose_name) for f in opts.fields if f.name != "id"]
        english = [n for n in names if not HANGUL.search(n) and n != "HTTP Accept"]
        assert english == [], (opts.label, english)


def test_every_model_of_ours_has_a_label_of_its_own(world):
    for model in our_models():
        assert model.__str__ is not Model.__str__, model._meta.label
        obj = model.objects.first()
        if obj is None:
            continue
        for language in ("ko", "en"):
            with translation.override(language):
                label = str(obj)
            assert label and "object (" not in label, (model._meta.label, label)
            assert not label.strip().isdigit(), (model._meta.label, label)


@pytest.mark.parametrize("language", ["ko", "en"])
def test_every_admin_page_renders_in_the_readers_language(client, world, language):
    admin_client(client, language)
    index = page(client, reverse("admin:index"))
    assert_readable(index, "admin:index")
    for model in registered():
        opts = model._meta
        with translation.override(language):
            plural = capfirst(str(opts.verbose_name_plural))
        if opts.app_label in OUR_APPS:
            assert html.escape(plural) in index, (opts.label, plural)
        name = f"admin:{opts.app_label}_{opts.model_name}"
        listing = page(client, reverse(f"{name}_changelist"))
        assert_readable(listing, opts.label)
        obj = model.objects.first()
        if opts.app_label not in OUR_APPS or obj is None:
            continue
        change = page(client, reverse(f"{name}_change", args=[obj.pk]))
        assert_readable(change, f"{opts.label} change")
        with translation.override(language):
            assert html.escape(str(obj)) in change, opts.label


def test_every_registered_model_of_ours_has_a_row_to_show(world):
    empty = [m._meta.label for m in registered() if m._meta.app_label in OUR_APPS]
    empty = [label for label in empty if not apps.get_model(label).objects.exists()]
    assert empty == []


def test_the_korean_admin_shows_korean_column_names(client, world):
    admin_client(client, "ko")
    text = page(client, reverse("admin:screening_screening_changelist"))
    for header in ("환자", "상태", "시도 횟수"):
        assert header in text
    assert ">status<" not in text.lower() and ">attempts<" not in text.lower()


def test_read_only_json_is_indented_and_keeps_korean(client, world):
    admin_client(client, "ko")
    screening = world["screening"]
    text = html.unescape(
        page(client, reverse("admin:screening_screening_change", args=[screening.pk]))
    )
    # The triage reasons, one key per line, nested keys indented further; Korean as Korean.
    assert '<pre class="eb-json"' in text
    assert '\n    "code": "treatable_symptom",\n' in text
    # (PostgreSQL's jsonb orders the keys: shorter first.)
    assert '\n      "symptom": "dryness"' in text
    assert '"note": "눈이 건조함"' in text
    blocks = "".join(re.findall(r'<pre class="eb-json">(.*?)</pre>', text, re.S))
    assert "눈이 건조함" in blocks and "\\u" not in blocks  # Korean as is, not \uXXXX
    # The AI result's probabilities in the inline, indented too.
    assert '\n  "D": 0.05,\n  "G": 0.05,\n  "N": 0.9\n}' in text

    record = IdempotencyRecord.objects.first()
    text = html.unescape(
        page(client, reverse("admin:pharmacy_idempotencyrecord_change", args=[record.pk]))
    )
    assert '\n  "detail": "복약지도를 확인하세요"\n}' in text


def test_editable_json_is_an_indented_textarea(client, world):
    admin_client(client, "en")
    screening = world["screening"]
    text = html.unescape(
        page(client, reverse("admin:screening_screening_change", args=[screening.pk]))
    )
    assert re.search(r'<textarea[^>]*name="symptoms"[^>]*>\s*\[\n  "dryness"\n\]</textarea>', text)


def test_an_indented_json_edit_is_saved_as_the_value(client, world):
    admin_client(client, "en")
    access = DashboardAccess.objects.get()
    url = reverse("admin:dashboard_dashboardaccess_change", args=[access.pk])
    text = html.unescape(page(client, url))
    assert '[\n  "강원"\n]' in text
    response = client.post(
        url, {"user": access.user_id, "regions": '[\n  "강원",\n  "전남"\n]', "note": access.note}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    access.refresh_from_db()
    assert access.regions == ["강원", "전남"]
    # A value that is not JSON is refused with the form shown again, nothing saved.
    response = client.post(url, {"user": access.user_id, "regions": "[강원", "note": ""})
    assert response.status_code == 200
    access.refresh_from_db()
    assert access.regions == ["강원", "전남"]


def test_json_helpers():
    assert json_pretty(["D", "G"]) == '["D", "G"]'
    assert json_pretty({"a": {"b": "한"}}) == '{\n  "a": {\n    "b": "한"\n  }\n}'
    assert json_pretty({"when": dt.date(2026, 1, 2)}) == '{\n  "when": "2026-01-02"\n}'
    field = PrettyJSONFormField()
    assert field.prepare_value({"k": "값"}) == '{\n  "k": "값"\n}'
