"""The audit trail: every access to patient data is recorded, append-only and tamper-evident."""

from __future__ import annotations

import csv
import io
import logging
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver

from accounts import audit
from accounts.models import AuditChainHead, AuditEvent
from tests.factories import (
    AdminFactory,
    HealthWorkerFactory,
    PatientFactory,
    ScreeningFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _walk(patterns, prefix="/", namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else (p.name or "")
            yield prefix + str(p.pattern), name


def test_every_url_under_the_audited_prefixes_is_classified():
    """A new endpoint must be listed in AUDITED or EXEMPT (with a reason) in its app's
    audit_urls.py; otherwise this fails, so nothing escapes the audit trail silently."""
    unclassified = []
    checked = 0
    for route, name in _walk(get_resolver().url_patterns):
        if not route.startswith(audit.AUDITED_PREFIXES):
            continue
        if route.startswith("/admin/") and not name:
            continue  # admin's catch-all redirect and app-index regex carry no data
        checked += 1
        if not name or not audit.is_classified(name):
            unclassified.append(f"{route} ({name or 'unnamed'})")
    assert checked > 50
    assert not unclassified, "classify these in <app>/audit_urls.py: " + ", ".join(unclassified)


def test_patient_data_urls_are_audited_and_exempt_ones_are_not():
    assert (
        audit.classify(path="/api/v1/patients/1/", url_name="api-patient").object_type == "patient"
    )
    assert (
        audit.classify(path="/api/v1/screenings/1/fhir/", url_name="api-screening-fhir").action
        == "export"
    )
    assert audit.classify(
        path="/admin/screening/patient/1/change/", url_name="admin:screening_patient_change"
    )
    assert (
        audit.classify(path="/api/v1/kiosk/heartbeat/", url_name="pharmacy-kiosk-heartbeat") is None
    )
    # Unlisted but under an audited prefix: audited anyway, never silently skipped.
    assert audit.classify(path="/api/v1/new/", url_name="brand-new").object_type == "unclassified"


def test_reading_a_patient_records_who_what_when_where_and_outcome(api_client):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    api_client.force_authenticate(hw)
    r = api_client.get(
        f"/api/v1/patients/{patient.id}/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="tablet/1.0"
    )
    assert r.status_code == 200
    (event,) = AuditEvent.objects.all()
    assert (event.actor_type, event.actor_id, event.actor_username) == ("user", hw.id, hw.username)
    assert (event.action, event.object_type, event.object_ids) == (
        "read",
        "patient",
        [str(patient.id)],
    )
    assert (event.method, event.path, event.url_name) == (
        "GET",
        f"/api/v1/patients/{patient.id}/",
        "api-patient",
    )
    assert (event.status_code, event.ip, event.user_agent) == (200, "203.0.113.7", "tablet/1.0")
    assert event.extra == {"patient_ids": [str(patient.id)]}
    assert event.created_at.utcoffset().total_seconds() == 0


def test_another_sites_patient_is_recorded_with_its_404(api_client):
    api_client.force_authenticate(HealthWorkerFactory())
    other = PatientFactory()
    assert api_client.get(f"/api/v1/patients/{other.id}/").status_code == 404
    event = AuditEvent.objects.get()
    assert (event.action, event.object_ids, event.status_code) == ("read", [str(other.id)], 404)


def test_anonymous_access_is_recorded_as_denied(api_client):
    patient = PatientFactory()
    assert api_client.get(f"/api/v1/patients/{patient.id}/").status_code == 401
    event = AuditEvent.objects.get()
    assert (event.actor_type, event.action, event.status_code) == ("anonymous", "denied", 401)
    assert event.extra == {"intended": "read", "patient_ids": [str(patient.id)]}


def test_creating_a_patient_records_the_new_id(api_client):
    hw = HealthWorkerFactory()
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/patients/",
        {"name": "김영희", "birth_date": "1950-01-02", "sex": "F", "consent_given": True},
        format="json",
    )
    assert r.status_code == 201, r.content
    event = AuditEvent.objects.get()
    assert (event.action, event.object_type, event.object_ids) == (
        "create",
        "patient",
        [str(r.json()["id"])],
    )


def test_portal_pages_and_image_files_are_audited(client):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    client.force_login(hw)
    assert client.get(f"/screening/patients/{patient.id}/").status_code == 200
    assert client.get("/screening/images/999999/").status_code == 404
    events = list(AuditEvent.objects.exclude(action="login").order_by("id"))
    assert [(e.url_name, e.object_type, e.object_ids, e.status_code) for e in events] == [
        ("screening:patient_detail", "patient", [str(patient.id)], 200),
        ("screening:image_file", "screening_image", ["999999"], 404),
    ]


def test_exempt_endpoints_write_no_row(api_client):
    api_client.post("/api/v1/kiosk/heartbeat/", {}, format="json")
    api_client.get("/accounts/login/")
    assert AuditEvent.objects.count() == 0


def test_kiosk_requests_record_the_kiosk(api_client):
    from tests.pharmacy.factories import PharmacyFactory, kiosk_for

    kiosk, secret = kiosk_for(PharmacyFactory())
    api_client.credentials(HTTP_AUTHORIZATION=f"Kiosk {kiosk.kiosk_id}:{secret}")
    r = api_client.post(
        "/api/v1/kiosk/dispenses/",
        {"code": "000000"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="11111111-1111-1111-1111-111111111111",
    )
    assert 400 <= r.status_code < 500
    event = AuditEvent.objects.get()
    assert (event.actor_type, event.kiosk_id, event.object_type) == (
        "kiosk",
        kiosk.kiosk_id,
        "dispense",
    )


def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(api_client, settings):
    api_client.force_authenticate(HealthWorkerFactory())
    headers = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.9"}
    api_client.get("/api/v1/patients/", **headers)
    settings.AUDIT_TRUSTED_PROXY_COUNT = 1
    api_client.get("/api/v1/patients/", **headers)
    assert list(AuditEvent.objects.order_by("id").values_list("ip", flat=True)) == [
        "10.0.0.2",
        "198.51.100.9",
    ]


def test_portal_sign_in_and_failed_sign_in_are_recorded(client):
    user = UserFactory(username="nurse1")
    r = client.post(
        "/accounts/login/", {"username": "nurse1", "password": "wrong"}, REMOTE_ADDR="192.0.2.1"
    )
    assert r.status_code == 200
    r = client.post(
        "/accounts/login/",
        {"username": "nurse1", "password": "pw-test-123"},
        REMOTE_ADDR="192.0.2.1",
    )
    assert r.status_code == 302
    failed, ok = AuditEvent.objects.order_by("id")
    assert (failed.action, failed.actor_username, failed.actor_type, failed.ip) == (
        "login_failed",
        "nurse1",
        "anonymous",
        "192.0.2.1",
    )
    assert (ok.action, ok.actor_id, ok.url_name) == ("login", user.id, "accounts:login")


def test_api_token_sign_in_and_failure_are_recorded(api_client):
    user = UserFactory(username="apiuser")
    assert (
        api_client.post(
            "/api/v1/auth/token/", {"username": "apiuser", "password": "nope"}, format="json"
        ).status_code
        == 401
    )
    assert (
        api_client.post(
            "/api/v1/auth/token/", {"username": "apiuser", "password": "pw-test-123"}, format="json"
        ).status_code
        == 200
    )
    assert list(
        AuditEvent.objects.order_by("id").values_list("action", "actor_username", "url_name")
    ) == [("login_failed", "apiuser", "api-token"), ("login", user.username, "api-token")]


# --- append-only ---------------------------------------------------------------------------
def _events(n: int = 3) -> list[AuditEvent]:
    return [
        audit.audit_record(action="read", object_type="patient", object_ids=[i]) for i in range(n)
    ]


def test_the_model_refuses_updates_and_deletes():
    event = _events(1)[0]
    event.path = "/forged/"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(path="/forged/")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


@pytest.mark.parametrize(
    "sql", ["UPDATE accounts_auditevent SET path = '/forged/'", "DELETE FROM accounts_auditevent"]
)
def test_the_database_refuses_updates_and_deletes_whatever_the_client(sql):
    _events(2)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEvent.objects.filter(path="").count() == 2


# --- hash chain ----------------------------------------------------------------------------
def _tamper(sql: str, params: list) -> None:
    """What an attacker with table-owner rights could do: disable the trigger, rewrite, re-enable."""
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE accounts_auditevent DISABLE TRIGGER accounts_auditevent_append_only"
        )
        cursor.execute(sql, params)
        cursor.execute(
            "ALTER TABLE accounts_auditevent ENABLE TRIGGER accounts_auditevent_append_only"
        )


def test_an_intact_chain_verifies():
    events = _events(5)
    out = io.StringIO()
    call_command("verify_audit_chain", stdout=out)
    assert "audit chain OK: 5 events" in out.getvalue() and events[-1].hash in out.getvalue()
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))


def test_an_altered_row_is_named_by_verify_audit_chain():
    events = _events(5)
    _tamper(
        "UPDATE accounts_auditevent SET object_ids = %s WHERE id = %s", ['["999"]', events[2].id]
    )
    with pytest.raises(
        CommandError, match=f"broken at event id {events[2].id}: hash does not match"
    ):
        call_command("verify_audit_chain")


def test_a_removed_row_is_detected_at_the_next_one():
    events = _events(5)
    _tamper("DELETE FROM accounts_auditevent WHERE id = %s", [events[1].id])
    with pytest.raises(CommandError, match=f"broken at event id {events[2].id}: prev_hash"):
        call_command("verify_audit_chain")


def test_verify_audit_chain_exits_non_zero_from_the_command_line():
    from django.core.management import ManagementUtility

    events = _events(2)
    _tamper("UPDATE accounts_auditevent SET action = 'create' WHERE id = %s", [events[0].id])
    with pytest.raises(SystemExit) as exc:
        ManagementUtility(["manage.py", "verify_audit_chain"]).execute()
    assert exc.value.code == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_unbroken_chain():
    """Without pg_advisory_xact_lock two writers read the same last hash and fork the chain."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(15):
                audit.audit_record(action="read", object_type="patient", object_ids=[n * 100 + i])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    checked, broken = audit.verify_chain()
    assert (checked, broken) == (120, None)
    # The head row is where the next append starts: the last event's hash.
    last = AuditEvent.objects.order_by("-id").first()
    assert AuditChainHead.objects.get().hash == last.hash


def test_a_missing_head_row_continues_the_existing_chain():
    """A database restored without the head row (or a fresh one) must not restart at GENESIS."""
    events = _events(3)
    AuditChainHead.objects.all().delete()
    more = _events(2)
    assert more[0].prev_hash == events[-1].hash
    assert audit.verify_chain() == (5, None)


def test_a_forged_head_row_breaks_the_chain_at_the_next_event():
    _events(3)
    AuditChainHead.objects.update(hash="f" * 64)
    after = _events(1)[0]
    checked, broken = audit.verify_chain()
    assert (checked, broken.event_id) == (3, after.id)


# --- failure handling ----------------------------------------------------------------------
def _break_audit_inserts() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE accounts_auditevent ADD CONSTRAINT test_no_insert CHECK (false) NOT VALID"
        )


def test_a_read_fails_closed_when_the_audit_row_cannot_be_written(api_client, caplog):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    api_client.force_authenticate(hw)
    _break_audit_inserts()
    with caplog.at_level(logging.CRITICAL, logger="eyebridge.audit"):
        r = api_client.get(f"/api/v1/patients/{patient.id}/")
    assert r.status_code == 503 and patient.name not in r.content.decode()
    assert "audit write failed" in caplog.text


def test_a_committed_write_keeps_its_response_and_is_logged_when_the_audit_row_fails(
    api_client, caplog
):
    from screening.models import Patient

    api_client.force_authenticate(HealthWorkerFactory())
    _break_audit_inserts()
    with caplog.at_level(logging.CRITICAL, logger="eyebridge.audit"):
        r = api_client.post(
            "/api/v1/patients/",
            {"name": "박철수", "birth_date": "1960-05-05", "sex": "M", "consent_given": True},
            format="json",
        )
    assert r.status_code == 201 and Patient.objects.filter(id=r.json()["id"]).exists()
    assert "audit write failed" in caplog.text and f'"ids": ["{r.json()["id"]}"]' in caplog.text


# --- admin ---------------------------------------------------------------------------------
def test_admins_filter_and_export_audit_events_and_the_export_is_audited(client):
    admin = AdminFactory()
    events = _events(3)
    client.force_login(admin)
    r = client.get("/admin/accounts/auditevent/", {"action__exact": "read", "q": "patient"})
    assert r.status_code == 200
    r = client.post(
        "/admin/accounts/auditevent/",
        {"action": "export_csv", "_selected_action": [e.id for e in events[:2]]},
    )
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert rows[0][:2] == ["id", "created_at"] and [row[0] for row in rows[1:]] == [
        str(events[0].id),
        str(events[1].id),
    ]
    last = AuditEvent.objects.order_by("-id").first()
    assert (last.action, last.actor_id, last.object_type) == (
        "export",
        admin.id,
        "admin:accounts_auditevent",
    )
    assert set(last.object_ids) == {str(events[0].id), str(events[1].id)}


def test_the_admin_cannot_change_or_delete_audit_events(client):
    client.force_login(AdminFactory())
    event = _events(1)[0]
    assert (
        client.post(f"/admin/accounts/auditevent/{event.id}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert (
        client.post(f"/admin/accounts/auditevent/{event.id}/change/", {"path": "/x/"}).status_code
        == 403
    )
    assert AuditEvent.objects.filter(id=event.id, path="").exists()


def test_export_audit_command_writes_csv_and_records_itself(tmp_path):
    _events(2)
    target = tmp_path / "audit.csv"
    call_command("export_audit", output=str(target))
    assert len(target.read_text().splitlines()) == 3
    last = AuditEvent.objects.order_by("-id").first()
    assert (last.action, last.actor_type, last.object_type) == ("export", "system", "audit_event")
    assert audit.verify_chain()[1] is None


def test_admin_pages_of_patient_data_are_audited_with_the_object_id(client):
    admin = AdminFactory()
    patient = PatientFactory()
    client.force_login(admin)
    assert client.get(f"/admin/screening/patient/{patient.id}/change/").status_code == 200
    event = AuditEvent.objects.exclude(action="login").get()
    assert (event.action, event.object_type, event.object_ids, event.actor_id) == (
        "read",
        "admin:screening_patient",
        [str(patient.id)],
        admin.id,
    )


def test_an_audited_request_costs_one_insert(api_client):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    api_client.force_authenticate(hw)
    with CaptureQueriesContext(conn) as ctx:
        assert api_client.get(f"/api/v1/patients/{patient.id}/").status_code == 200
    audit_sql = [q["sql"] for q in ctx.captured_queries if "accounts_audit" in q["sql"]]
    # One statement: advance the chain head under its row lock and insert the event.
    assert len(audit_sql) == 1, audit_sql
    assert "INSERT INTO accounts_auditevent" in audit_sql[0]
    assert "ON CONFLICT (id) DO UPDATE" in audit_sql[0]


def test_list_and_screening_reads_record_which_patients_they_showed(api_client):
    hw = HealthWorkerFactory()
    site = hw.site_membership.site
    patients = [PatientFactory(site=site) for _ in range(3)]
    screening = ScreeningFactory(patient=patients[0], site=site)
    api_client.force_authenticate(hw)
    assert api_client.get("/api/v1/patients/").status_code == 200
    assert api_client.get(f"/api/v1/screenings/{screening.id}/").status_code == 200
    listed, detail = AuditEvent.objects.order_by("id")
    assert sorted(listed.extra["patient_ids"]) == sorted(str(p.id) for p in patients)
    assert (detail.object_ids, detail.extra["patient_ids"]) == (
        [str(screening.id)],
        [str(patients[0].id)],
    )
    # Who saw patient X: a JSON containment query on the audit table.
    seen = AuditEvent.objects.filter(extra__patient_ids__contains=[str(patients[0].id)])
    assert seen.count() == 2
