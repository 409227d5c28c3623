from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    HEALTH_WORKER = "health_worker", _("Health worker")
    PHARMACIST = "pharmacist", _("Pharmacist")
    HOSPITAL_STAFF = "hospital_staff", _("Hospital staff")
    GRADER = "grader", _("Grader")
    ADMIN = "admin", _("Administrator")


class User(AbstractUser):
    """A person who signs in. The role says which portal they use; the membership in the role's
    app (screening.SiteMembership, pharmacy.PharmacistMembership, referrals.HospitalStaffMembership,
    grading.GraderMembership) says which organisation's data they see."""

    role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    preferred_language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="ko"
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def is_platform_admin(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN


class OutboundMessage(models.Model):
    """Every message sent to a patient (dispense code, referral update), whatever the backend.

    The row is the record of what the patient was told; the backend only delivers it."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    to = models.CharField(_("recipient"), max_length=32)
    body = models.TextField(_("text"))
    backend = models.CharField(_("sending backend"), max_length=120)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    topic = models.CharField(_("topic"), max_length=60, blank=True)
    # A per-event key so that a redelivered task never texts the patient twice.
    dedupe_key = models.CharField(
        _("deduplication key"), max_length=120, unique=True, null=True, blank=True
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("outbound message")
        verbose_name_plural = _("outbound messages")

    def __str__(self) -> str:
        # The topic and the outcome, not the recipient's number or the text.
        return _("%(topic)s message, %(when)s (%(status)s)") % {
            "topic": self.topic or "-",
            "when": f"{self.created_at:%Y-%m-%d %H:%M}" if self.created_at else "-",
            "status": self.get_status_display(),
        }


class AdminAlert(models.Model):
    """Something an administrator must look at (a screening that failed for good, a kiosk jam)."""

    kind = models.CharField(_("kind"), max_length=60)
    message = models.TextField(_("message"))
    object_ref = models.CharField(_("concerns"), max_length=120, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("administrator alert")
        verbose_name_plural = _("administrator alerts")
        constraints = [
            # One open alert per (kind, object): a retried failure does not pile up alerts.
            models.UniqueConstraint(
                fields=["kind", "object_ref"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_alert_per_object",
            )
        ]

    def __str__(self) -> str:
        state = _("resolved") if self.resolved_at else _("open")
        return f"{self.kind}: {self.object_ref or '-'} ({state})"


class AuditEventQuerySet(models.QuerySet):
    """Audit rows are written once, by accounts.audit.audit_record, and never changed.

    Bulk update/delete are refused here; the PostgreSQL trigger (migration 0002) refuses them for
    any other path (raw SQL, another client), so the application cannot rewrite history."""

    def update(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")

    _raw_delete = delete
    bulk_update = update


class AuditEvent(models.Model):
    """One access to patient data (or a sign-in attempt): who, what, when, from where, outcome.

    Tamper-evident: ``hash`` = sha256(prev_hash + canonical JSON of the other fields), and
    ``prev_hash`` is the previous row's hash, so editing or removing any row breaks the chain from
    there on (``manage.py verify_audit_chain``)."""

    class Action(models.TextChoices):
        READ = "read", _("Read")
        CREATE = "create", _("Create")
        UPDATE = "update", _("Update")
        DELETE = "delete", _("Delete")
        LOGIN = "login", _("Sign-in")
        LOGIN_FAILED = "login_failed", _("Failed sign-in")
        DENIED = "denied", _("Denied")
        EXPORT = "export", _("Export")

    class ActorType(models.TextChoices):
        USER = "user", _("User")
        KIOSK = "kiosk", _("Kiosk")
        ANONYMOUS = "anonymous", _("Anonymous")
        SYSTEM = "system", _("System")

    created_at = models.DateTimeField(_("when (UTC)"), db_index=True)
    actor_type = models.CharField(_("actor type"), max_length=10, choices=ActorType.choices)
    # A plain integer, not a foreign key: deleting a user must neither cascade into the audit trail
    # nor need an UPDATE of it (SET_NULL); the username is kept as it was at the time.
    actor_id = models.BigIntegerField(_("user id"), null=True, blank=True, db_index=True)
    actor_username = models.CharField(_("username"), max_length=150, blank=True, db_index=True)
    kiosk_id = models.CharField(_("kiosk"), max_length=32, blank=True)
    action = models.CharField(_("action"), max_length=14, choices=Action.choices, db_index=True)
    object_type = models.CharField(_("object type"), max_length=60, blank=True, db_index=True)
    object_ids = models.JSONField(_("object ids"), default=list, blank=True)
    url_name = models.CharField(_("URL name"), max_length=120, blank=True)
    path = models.CharField(_("path"), max_length=500, blank=True)
    method = models.CharField(_("method"), max_length=10, blank=True)
    status_code = models.PositiveSmallIntegerField(
        _("outcome (HTTP status)"), null=True, blank=True
    )
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    extra = models.JSONField(_("details"), default=dict, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["object_type", "created_at"], name="audit_object_when")]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}" if self.created_at else "-"
        who = self.actor_username or self.get_actor_type_display()
        return f"{when} {who}: {self.get_action_display()} {self.object_type}".rstrip()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")


class AuditChainHead(models.Model):
    """The end of the audit hash chain: one row (id 1) holding the last event's hash.

    On PostgreSQL an append is one statement that advances this row (an upsert, so the row lock
    is taken on its newest version even by a writer that waited for it) and inserts the event with
    the hashes it returned: one round trip, not a lock, a read and an insert in a transaction.
    Concurrent writers queue on this row's lock, so the chain cannot fork. The row is a cache of
    the chain, not part of it: ``verify_audit_chain`` reads only the events, so tampering with
    this row shows up as a break at the next event."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("audit chain head")
        verbose_name_plural = _("audit chain heads")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single_row")
        ]

    def __str__(self) -> str:
        return _("Audit chain head %(hash)s…") % {"hash": self.hash[:12]}


# --- Notifications (accounts/notifications.py) ----------------------------------------------


class NotificationKind(models.TextChoices):
    """What a notification is about; each user turns email and in-app on or off per kind.

    The catalogue lives here, below every app, so that the preferences page can list a kind
    before anything of that kind has happened; the apps above raise them (referrals, pharmacy)."""

    REFERRAL_NEW = "referral_new", _("New referral")
    REFERRAL_OUTCOME = "referral_outcome", _("Referral outcome")
    LOW_STOCK = "low_stock", _("Low stock")
    LOT_EXPIRY = "lot_expiry", _("Expiring or expired lot")
    KIOSK_OFFLINE = "kiosk_offline", _("Kiosk offline")


class Alert(models.Model):
    """A condition that holds until someone fixes it (a low slot, an offline kiosk): raised once,
    notified once, until it is resolved; after that the same condition may be raised again.

    ``subject_key`` names the thing, e.g. ``pharmacy:3:kiosk:7``; its leading part names the
    organisation, so a checker can resolve exactly the alerts it owns."""

    kind = models.CharField(_("kind"), max_length=30, choices=NotificationKind.choices)
    subject_key = models.CharField(_("subject"), max_length=160)
    params = models.JSONField(default=dict, blank=True)
    raised_at = models.DateTimeField(_("raised"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            # Once until resolved: two checker runs (or two beat processes) that both see the
            # same low slot can insert only one open row; the loser's INSERT fails and it sends
            # nothing. Resolved rows fall out of the index, so the condition can be raised again.
            models.UniqueConstraint(
                fields=["kind", "subject_key"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_alert_per_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject_key}"


class Notification(models.Model):
    """One thing one person is told, in the portal and/or by email.

    Title and body are stored as English message ids with their parameters, not as text, and are
    translated when read (``accounts.notifications.notification_title``): a Korean user who
    switches to English sees their notifications in English. Parameters that are names carry
    both languages (``{"ko": ..., "en": ...}``); the email is rendered in the recipient's saved
    language when it is sent."""

    class EmailStatus(models.TextChoices):
        OFF = "off", _("Not sent: turned off")
        NO_ADDRESS = "no_address", _("Not sent: no email address")
        PENDING = "pending", _("Waiting to be sent")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=NotificationKind.choices)
    title_msgid = models.CharField(max_length=200)
    body_msgid = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    # A path in the portal (``/referrals/12/``), checked again when it is opened.
    link = models.CharField(max_length=300, blank=True)
    alert = models.ForeignKey(
        Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    # The event this tells about (``referral-event:41``, ``alert:9``): a redelivered task or a
    # repeated call never notifies the same person twice.
    dedupe_key = models.CharField(max_length=160)
    # False when the recipient wants this kind by email only: the row is still the record (and
    # the email's claim), but it is not listed or counted.
    in_app = models.BooleanField(default=True)
    email_status = models.CharField(
        max_length=12, choices=EmailStatus.choices, default=EmailStatus.OFF
    )
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedupe_key"], name="one_notification_per_recipient_event"
            )
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
            # The header's unread count on every page: a small partial index.
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True, in_app=True),
                name="notification_unread",
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}" if self.created_at else "-"
        return f"{self.get_kind_display()} → {self.recipient} ({when})"


class NotificationPreference(models.Model):
    """A user's choice for one kind. No row: both on (the defaults)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=NotificationKind.choices)
    email = models.BooleanField(_("email"), default=True)
    in_app = models.BooleanField(_("in the portal"), default=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="one_preference_per_user_kind")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_kind_display()}"
