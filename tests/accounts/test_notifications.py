"""The notifications core: in-app with the header's unread count, email by preference, each
event once per person, alerts once until resolved, texts in the reader's language."""

from __future__ import annotations

import re

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext

from accounts.models import Alert, Notification, NotificationKind, NotificationPreference
from accounts.notifications import (
    EmailDeliveryFailed,
    alert_raise,
    alert_resolve,
    notification_email_deliver,
    notification_preferences_update,
    notification_send,
    per_language,
    render_text,
)
from config.celery import app as celery_app
from tests.factories import HealthWorkerFactory, UserFactory
from tests.pharmacy.factories import PharmacistFactory

pytestmark = pytest.mark.django_db
KIND = NotificationKind.KIOSK_OFFLINE
# A message id the catalogue already translates (the stock page's offline line).
OFFLINE = "No heartbeat from %(kiosk)s for over %(minutes)d minutes."
UNREAD = re.compile(r'id="notifications-unread"[^>]*>(\d+)<')


@pytest.fixture(autouse=True)
def _tasks_run_inline():
    """The email task runs in-process when enqueued (after commit), as a worker would run it."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def send(user, key: str = "event:1", **kwargs) -> Notification | None:
    kwargs.setdefault("kind", KIND)
    kwargs.setdefault("title", "Kiosk %(kiosk)s is offline")
    kwargs.setdefault("body", OFFLINE)
    kwargs.setdefault("params", {"kiosk": "K-1", "minutes": 15})
    kwargs.setdefault("link", "/pharmacy/stock/")
    return notification_send(recipient=user, dedupe_key=key, **kwargs)


def header_count(client) -> int | None:
    html = client.get("/accounts/notifications/").content.decode()
    match = UNREAD.search(html)
    return int(match.group(1)) if match else None


def test_the_unread_count_is_in_the_header_and_falls_as_notifications_are_read(client):
    user = PharmacistFactory()
    first, second, third = (send(user, key=f"event:{i}") for i in range(3))
    assert first and second and third
    client.force_login(user)
    assert header_count(client) == 3
    # Every page that extends the base template carries it, not only the list.
    assert UNREAD.search(client.get("/pharmacy/stock/").content.decode()).group(1) == "3"

    response = client.post(f"/accounts/notifications/{first.pk}/read/")
    assert response.status_code == 302
    assert header_count(client) == 2
    client.post(f"/accounts/notifications/{first.pk}/read/")  # again: nothing changes
    assert header_count(client) == 2

    opened = client.post(f"/accounts/notifications/{second.pk}/read/", {"open": "1"})
    assert opened.status_code == 302 and opened["Location"] == "/pharmacy/stock/"
    assert header_count(client) == 1

    client.post("/accounts/notifications/read-all/")
    assert header_count(client) is None
    assert not Notification.objects.filter(recipient=user, read_at__isnull=True).exists()


def test_another_users_notification_is_404_and_stays_unread(client):
    owner, other = PharmacistFactory(), PharmacistFactory()
    notification = send(owner)
    client.force_login(other)
    assert client.post(f"/accounts/notifications/{notification.pk}/read/").status_code == 404
    page = client.get("/accounts/notifications/").content.decode()
    assert f"notification-{notification.pk}" not in page and "K-1" not in page
    client.post("/accounts/notifications/read-all/")
    notification.refresh_from_db()
    assert notification.read_at is None
    assert header_count(client) is None


def test_email_is_sent_only_when_the_preference_allows(
    mailoutbox, django_capture_on_commit_callbacks
):
    user = PharmacistFactory(email="pharmacist@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        on = send(user, key="event:on")
    assert on.email_status == Notification.EmailStatus.PENDING
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["pharmacist@example.org"]
    assert "K-1" in mail.subject and "K-1" in mail.body
    assert "http://127.0.0.1:8000/pharmacy/stock/" in mail.body
    assert "/accounts/notifications/settings/" in mail.body
    on.refresh_from_db()
    assert on.email_status == Notification.EmailStatus.SENT and on.emailed_at is not None

    notification_preferences_update(user=user, choices={KIND: (False, True)})
    with django_capture_on_commit_callbacks(execute=True):
        off = send(user, key="event:off")
    assert off.email_status == Notification.EmailStatus.OFF and off.in_app
    assert len(mailoutbox) == 1
    # Another kind keeps its default (both on).
    with django_capture_on_commit_callbacks(execute=True):
        send(user, key="event:other", kind=NotificationKind.LOW_STOCK)
    assert len(mailoutbox) == 2


def test_email_only_is_sent_but_not_listed_and_both_off_records_nothing(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    user = PharmacistFactory(email="p@example.org")
    notification_preferences_update(
        user=user,
        choices={KIND: (True, False), NotificationKind.LOW_STOCK: (False, False)},
    )
    with django_capture_on_commit_callbacks(execute=True):
        email_only = send(user, key="event:1")
        nothing = send(user, key="event:2", kind=NotificationKind.LOW_STOCK)
    assert email_only is not None and not email_only.in_app
    assert nothing is None
    assert len(mailoutbox) == 1
    client.force_login(user)
    assert header_count(client) is None
    assert (
        f"notification-{email_only.pk}"
        not in client.get("/accounts/notifications/").content.decode()
    )


def test_a_user_without_an_email_address_gets_the_portal_notification_only(mailoutbox):
    user = PharmacistFactory(email="")
    notification = send(user)
    assert notification.email_status == Notification.EmailStatus.NO_ADDRESS
    assert mailoutbox == []


def test_the_same_event_notifies_a_person_once(django_capture_on_commit_callbacks, mailoutbox):
    user = PharmacistFactory(email="p@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        assert send(user, key="referral-event:7") is not None
        assert send(user, key="referral-event:7") is None
    assert Notification.objects.filter(recipient=user).count() == 1
    assert len(mailoutbox) == 1
    # The same event for someone else is their own notification.
    assert send(PharmacistFactory(), key="referral-event:7") is not None


def test_a_redelivered_email_task_sends_once(mailoutbox, django_capture_on_commit_callbacks):
    user = PharmacistFactory(email="p@example.org")
    with django_capture_on_commit_callbacks(execute=False):
        notification = send(user)
    assert notification_email_deliver(notification_id=notification.pk) is True
    assert notification_email_deliver(notification_id=notification.pk) is False
    assert len(mailoutbox) == 1


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("smtp down")


def test_a_refused_email_is_retried_and_marked_failed_on_the_last_try(
    settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    user = PharmacistFactory(email="p@example.org")
    with django_capture_on_commit_callbacks(execute=False):
        notification = send(user)
    with pytest.raises(EmailDeliveryFailed):
        notification_email_deliver(notification_id=notification.pk, final_attempt=False)
    notification.refresh_from_db()
    assert notification.email_status == Notification.EmailStatus.PENDING
    assert notification_email_deliver(notification_id=notification.pk) is False
    notification.refresh_from_db()
    assert notification.email_status == Notification.EmailStatus.FAILED


def test_a_korean_users_notification_is_in_korean_and_follows_the_reader(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with translation.override("ko"):
        korean = gettext(OFFLINE)
    assert re.search(r"[\uac00-\ud7a3]", korean), "the catalogue translates this message"
    user = PharmacistFactory(email="p@example.org", preferred_language="ko")
    params = {"kiosk": per_language(ko="정선 1호기", en="Jeongseon 1"), "minutes": 15}
    with django_capture_on_commit_callbacks(execute=True):
        send(user, params=params)
    expected_ko = korean % {"kiosk": "정선 1호기", "minutes": 15}
    assert expected_ko in mailoutbox[0].body
    assert "No heartbeat" not in mailoutbox[0].body

    client.force_login(user)
    assert expected_ko in client.get("/accounts/notifications/").content.decode()
    # Stored as a message id, not as text: switching to English shows it in English.
    client.post("/accounts/language/", {"language": "en", "next": "/accounts/notifications/"})
    page = client.get("/accounts/notifications/").content.decode()
    assert "No heartbeat from Jeongseon 1 for over 15 minutes." in page


def test_a_translation_that_lost_its_placeholder_falls_back_to_english():
    assert render_text("%(missing)s and more", {"other": 1}) == "%(missing)s and more"
    with pytest.raises(KeyError):
        send(UserFactory(), params={"kiosk": "K-1"})  # %(minutes)d missing: a caller's bug


def test_the_preferences_page_offers_the_roles_kinds_and_saves_them(client):
    user = PharmacistFactory()
    client.force_login(user)
    page = client.get("/accounts/notifications/settings/").content.decode()
    for kind in ("low_stock", "lot_expiry", "kiosk_offline"):
        assert f'name="email_{kind}"' in page and f'name="in_app_{kind}"' in page
    assert "referral_new" not in page
    response = client.post(
        "/accounts/notifications/settings/",
        {"in_app_low_stock": "on", "email_kiosk_offline": "on", "in_app_kiosk_offline": "on"},
    )
    assert response.status_code == 302
    saved = {p.kind: (p.email, p.in_app) for p in NotificationPreference.objects.filter(user=user)}
    assert saved == {
        "low_stock": (False, True),
        "lot_expiry": (False, False),
        "kiosk_offline": (True, True),
    }
    # Saving again updates the same rows (one per kind).
    client.post("/accounts/notifications/settings/", {"email_low_stock": "on"})
    assert NotificationPreference.objects.filter(user=user).count() == 3
    assert NotificationPreference.objects.get(user=user, kind="low_stock").email is True
    health_worker = HealthWorkerFactory()
    client.force_login(health_worker)
    page = client.get("/accounts/notifications/settings/").content.decode()
    assert 'name="email_referral_outcome"' in page and "low_stock" not in page


def test_an_alert_is_raised_once_until_resolved_and_can_be_raised_again():
    pharmacists = [PharmacistFactory(), PharmacistFactory()]
    raise_it = lambda: alert_raise(  # noqa: E731
        kind=KIND,
        subject_key="pharmacy:1:kiosk:9",
        recipients=pharmacists,
        title="Kiosk %(kiosk)s is offline",
        body=OFFLINE,
        params={"kiosk": "K-9", "minutes": 15},
    )
    first = raise_it()
    assert first is not None
    assert raise_it() is None
    assert Notification.objects.filter(alert=first).count() == 2
    assert alert_resolve(kind=KIND, subject_key="pharmacy:1:kiosk:9") is True
    assert alert_resolve(kind=KIND, subject_key="pharmacy:1:kiosk:9") is False
    again = raise_it()
    assert again is not None and again.pk != first.pk
    assert Notification.objects.filter(recipient=pharmacists[0]).count() == 2
    assert Alert.objects.filter(subject_key="pharmacy:1:kiosk:9").count() == 2


def test_the_database_refuses_a_second_open_alert_for_the_same_subject():
    Alert.objects.create(kind=KIND, subject_key="pharmacy:1:kiosk:1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(kind=KIND, subject_key="pharmacy:1:kiosk:1")
    # Another kind, or a resolved one, is no conflict.
    Alert.objects.create(kind=NotificationKind.LOW_STOCK, subject_key="pharmacy:1:kiosk:1")


def test_the_list_marks_a_resolved_alerts_notification(client):
    user = PharmacistFactory()
    alert_raise(
        kind=KIND,
        subject_key="pharmacy:1:kiosk:2",
        recipients=[user],
        title="Kiosk %(kiosk)s is offline",
        body=OFFLINE,
        params={"kiosk": "K-2", "minutes": 15},
    )
    client.force_login(user)
    client.post("/accounts/language/", {"language": "en", "next": "/"})
    assert "Resolved" not in client.get("/accounts/notifications/").content.decode()
    alert_resolve(kind=KIND, subject_key="pharmacy:1:kiosk:2")
    assert "Resolved" in client.get("/accounts/notifications/").content.decode()


def test_anonymous_pages_query_no_unread_count(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/accounts/login/")
    assert response.status_code == 200 and "notifications-link" not in response.content.decode()


def test_every_worker_knows_the_email_task():
    # accounts has no tasks.py for autodiscovery: the module is named in CELERY_IMPORTS.
    assert "accounts.notifications_tasks" in celery_app.conf.imports
    celery_app.loader.import_default_modules()  # what a worker imports at start
    assert "accounts.notifications_tasks.notification_email_send" in celery_app.tasks
