"""Notifications and alerts that reach people: in the portal (with the unread count in the header)
and by email, each as the recipient chose per kind.

- ``notification_send`` tells one person about one event, once (the dedupe key).
- ``alert_raise`` / ``alert_resolve`` keep a condition (a low slot, an offline kiosk) raised once
  until it is resolved, and notify its audience when it is raised.
- Emails go out from a Celery task enqueued after commit (``accounts.notifications_tasks``);
  ``notification_email_deliver`` claims each email with a conditional UPDATE, so it is sent at
  most once however often the task is delivered.

Texts are stored as English message ids plus parameters (marked for the catalogue with
``gettext_noop`` where they are written) and translated when shown: in the reader's language on a
page, in the recipient's saved language in an email. The reads are in
``accounts.notifications_selectors``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import (
    Alert,
    Notification,
    NotificationKind,
    NotificationPreference,
    Role,
    User,
)
from config.errors import InvalidInput, NotFound

logger = logging.getLogger("eyebridge.notifications")

# Who each kind is for: the preferences page offers a user the kinds of their role.
KINDS_BY_ROLE: dict[str, list[str]] = {
    Role.HOSPITAL_STAFF: [NotificationKind.REFERRAL_NEW],
    Role.HEALTH_WORKER: [NotificationKind.REFERRAL_OUTCOME],
    Role.PHARMACIST: [
        NotificationKind.LOW_STOCK,
        NotificationKind.LOT_EXPIRY,
        NotificationKind.KIOSK_OFFLINE,
    ],
}
KIND_HELP = {
    NotificationKind.REFERRAL_NEW: gettext_lazy(
        "A health worker sends a referral to your hospital, or an unanswered one is passed on "
        "to it."
    ),
    NotificationKind.REFERRAL_OUTCOME: gettext_lazy(
        "A hospital answers a referral of your screening or records its outcome."
    ),
    NotificationKind.LOW_STOCK: gettext_lazy(
        "A medication in one of your kiosks runs below the low-stock level."
    ),
    NotificationKind.LOT_EXPIRY: gettext_lazy(
        "A lot in one of your kiosks is about to expire, or has expired and is still in its slot."
    ),
    NotificationKind.KIOSK_OFFLINE: gettext_lazy(
        "One of your kiosks has sent no heartbeat for longer than the offline limit."
    ),
}


class EmailDeliveryFailed(Exception):
    """The mail backend refused a message that may be retried."""


# --- texts ----------------------------------------------------------------------------------


def translatable(msgid: str) -> dict[str, str]:
    """A parameter that is itself a message id (e.g. "urgent"), translated when shown."""
    return {"msgid": msgid}


def per_language(*, ko: str, en: str = "") -> dict[str, str]:
    """A parameter that is a name kept in both languages (a hospital, a medication)."""
    return {"ko": ko, "en": en or ko}


def _param_value(value: Any, language: str) -> Any:
    if isinstance(value, dict):
        if "msgid" in value:
            return _(value["msgid"])
        return value.get(language) or value.get(settings.LANGUAGE_CODE) or ""
    return value


def render_text(msgid: str, params: Mapping[str, Any] | None) -> str:
    """``msgid`` translated into the active language, with its parameters filled in.

    Never raises: a translation that lost a placeholder falls back to the English text, so a
    catalogue mistake cannot turn the header or a worker's email into an error."""
    if not msgid:
        return ""
    language = (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    text = _(msgid)
    if not params:
        return text
    values = {key: _param_value(value, language) for key, value in params.items()}
    for template in (text, msgid):
        try:
            return template % values
        except (KeyError, ValueError, TypeError):
            logger.warning("notification text %r does not take its parameters", template)
    return msgid


def notification_title(notification: Notification) -> str:
    return render_text(notification.title_msgid, notification.params)


def notification_body(notification: Notification) -> str:
    return render_text(notification.body_msgid, notification.params)


def _check_renders(title: str, body: str, params: Mapping[str, Any]) -> None:
    """A programming error (a parameter missing from ``params``) shows up at the call, in tests,
    rather than as an English fallback in someone's inbox."""
    language = settings.LANGUAGE_CODE
    values = {key: _param_value(value, language) for key, value in params.items()}
    for msgid in (title, body):
        if params:
            msgid % values  # noqa: B018 - raises KeyError/ValueError on a bad call
        elif "%(" in msgid:
            raise KeyError(f"{msgid!r} needs parameters")
    if len(title) > 200 or len(body) > 500:
        raise ValueError("notification message ids are limited to 200/500 characters")


# --- preferences ----------------------------------------------------------------------------


def kinds_for_user(user: User) -> list[str]:
    """The kinds a user can receive (all of them for a platform administrator)."""
    if user.is_platform_admin:
        return list(NotificationKind.values)
    return list(KINDS_BY_ROLE.get(user.role, []))


def preference_get(*, user: User, kind: str) -> tuple[bool, bool]:
    """(email, in_app) for this user and kind; both on without a saved choice."""
    row = (
        NotificationPreference.objects.filter(user=user, kind=kind)
        .values_list("email", "in_app")
        .first()
    )
    return (True, True) if row is None else (row[0], row[1])


def notification_preferences_update(
    *, user: User, choices: Mapping[str, tuple[bool, bool]]
) -> None:
    """Save (email, in_app) per kind. One upsert on (user, kind), so two tabs saving at once end
    with one row per kind, the last one's choice."""
    unknown = set(choices) - set(NotificationKind.values)
    if unknown:
        raise InvalidInput(_("Unknown kind of notification."), code="unknown_kind", field="kind")
    rows = [
        NotificationPreference(user=user, kind=kind, email=bool(email), in_app=bool(in_app))
        for kind, (email, in_app) in choices.items()
    ]
    NotificationPreference.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["user", "kind"],
        update_fields=["email", "in_app"],
    )


# --- sending --------------------------------------------------------------------------------


def notification_send(
    *,
    recipient: User,
    kind: str,
    title: str,
    body: str = "",
    params: Mapping[str, Any] | None = None,
    link: str = "",
    dedupe_key: str,
    alert: Alert | None = None,
) -> Notification | None:
    """Tell ``recipient`` about one event, as they chose for ``kind``: a row for the portal and/or
    an email, enqueued after commit.

    ``title`` and ``body`` are English message ids (mark them with ``gettext_noop``); ``params``
    fill their placeholders (plain values, ``translatable(...)`` or ``per_language(...)``).
    Idempotent: a second call with the same ``dedupe_key`` for the same person returns None and
    sends nothing (the unique constraint decides, so concurrent calls are safe too). Returns None
    also when the recipient is inactive or turned both off. Safe inside the caller's transaction:
    a rollback takes the notification and the email with it."""
    if kind not in NotificationKind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    params = dict(params or {})
    _check_renders(title, body, params)
    if not recipient.is_active:
        return None
    email_on, in_app = preference_get(user=recipient, kind=kind)
    if not (email_on or in_app):
        return None
    if not email_on:
        email_status = Notification.EmailStatus.OFF
    elif not recipient.email:
        email_status = Notification.EmailStatus.NO_ADDRESS
    else:
        email_status = Notification.EmailStatus.PENDING
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                recipient=recipient,
                kind=kind,
                title_msgid=title,
                body_msgid=body,
                params=params,
                link=link[:300],
                alert=alert,
                dedupe_key=dedupe_key[:160],
                in_app=in_app,
                email_status=email_status,
            )
    except IntegrityError:
        return None  # this person was already told about this event
    if email_status == Notification.EmailStatus.PENDING:
        transaction.on_commit(lambda: _enqueue_email(notification.pk))
    return notification


def _enqueue_email(notification_id: int) -> None:
    from accounts.notifications_tasks import notification_email_send

    try:
        notification_email_send.delay(notification_id)
    except Exception:
        # The event is committed; a broker outage must not lose the email nor fail the request
        # that caused it. Deliver inline instead (idempotent: the claim below).
        logger.exception("could not enqueue notification email %s; sending inline", notification_id)
        notification_email_deliver(notification_id=notification_id)


def _absolute(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _email_text(notification: Notification) -> tuple[str, str]:
    """(subject, body) in the active language."""
    title = notification_title(notification)
    lines = [title, ""]
    body = notification_body(notification)
    if body:
        lines += [body, ""]
    if notification.link:
        lines += [_("Open in EyeBridge: %(url)s") % {"url": _absolute(notification.link)}, ""]
    lines.append(
        _("You get this email because of your notification settings: %(url)s")
        % {"url": _absolute(reverse("accounts:notification_preferences"))}
    )
    subject = "EyeBridge: " + " ".join(title.split())
    return subject[:200], "\n".join(lines)


def notification_email_deliver(*, notification_id: int, final_attempt: bool = True) -> bool:
    """Send the notification's email once. Returns whether this call sent it.

    Claims the email with ``UPDATE ... SET email_status='sent' WHERE email_status='pending'``
    before handing it to the mail backend: of two deliveries of the task only one matches, so the
    recipient never gets it twice (at most once: a worker killed between the claim and the SMTP
    call loses that email; the portal notification remains). A refused message goes back to
    ``pending`` for a retry (raising ``EmailDeliveryFailed``), or to ``failed`` on the last try."""
    pending = Notification.EmailStatus.PENDING
    claimed = Notification.objects.filter(pk=notification_id, email_status=pending).update(
        email_status=Notification.EmailStatus.SENT, emailed_at=timezone.now()
    )
    if not claimed:
        return False
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    recipient = notification.recipient
    with translation.override(recipient.preferred_language or settings.LANGUAGE_CODE):
        subject, body = _email_text(notification)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email])
    except Exception as exc:
        status = Notification.EmailStatus.FAILED if final_attempt else pending
        Notification.objects.filter(pk=notification_id).update(email_status=status, emailed_at=None)
        logger.exception("notification email %s failed", notification_id)
        if not final_attempt:
            raise EmailDeliveryFailed(str(exc)) from exc
        return False
    return True


# --- reading --------------------------------------------------------------------------------


def notification_mark_read(*, user: User, notification_id: int) -> Notification:
    """Mark one of the user's notifications read. Another user's is not found (404)."""
    notification = Notification.objects.filter(
        pk=notification_id, recipient=user, in_app=True
    ).first()
    if notification is None:
        raise NotFound(_("Notification not found."), code="notification_not_found")
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = now
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(recipient=user, in_app=True, read_at__isnull=True).update(
        read_at=timezone.now()
    )


# --- alerts ---------------------------------------------------------------------------------


def alert_raise(
    *,
    kind: str,
    subject_key: str,
    recipients: Iterable[User],
    title: str,
    body: str = "",
    params: Mapping[str, Any] | None = None,
    link: str = "",
) -> Alert | None:
    """Raise the alert (kind, subject_key) and notify ``recipients``, unless it is already open.

    Once until resolved, enforced by the partial unique index on open alerts: of two checkers
    racing on the same condition, one inserts and notifies, the other gets None and sends
    nothing. Returns the new alert, or None when one was already open."""
    params = dict(params or {})
    _check_renders(title, body, params)
    # One transaction: an alert is never left open without its notifications.
    with transaction.atomic():
        try:
            with transaction.atomic():
                alert = Alert.objects.create(kind=kind, subject_key=subject_key, params=params)
        except IntegrityError:
            return None
        for user in recipients:
            notification_send(
                recipient=user,
                kind=kind,
                title=title,
                body=body,
                params=params,
                link=link,
                dedupe_key=f"alert:{alert.pk}",
                alert=alert,
            )
    return alert


def alert_resolve(*, kind: str, subject_key: str) -> bool:
    """Resolve the open alert (kind, subject_key): a conditional UPDATE, so resolving twice (or
    concurrently) is harmless. Returns whether this call resolved it. The same condition can be
    raised again afterwards."""
    return bool(
        Alert.objects.filter(kind=kind, subject_key=subject_key, resolved_at__isnull=True).update(
            resolved_at=timezone.now()
        )
    )
