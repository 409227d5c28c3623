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

    @property
    def is_platform_admin(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN


class OutboundMessage(models.Model):
    """Every message sent to a patient (dispense code, referral update), whatever the backend.

    The row is the record of what the patient was told; the backend only delivers it."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    to = models.CharField(max_length=32)
    body = models.TextField()
    backend = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices)
    topic = models.CharField(max_length=60, blank=True)
    # A per-event key so that a redelivered task never texts the patient twice.
    dedupe_key = models.CharField(max_length=120, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class AdminAlert(models.Model):
    """Something an administrator must look at (a screening that failed for good, a kiosk jam)."""

    kind = models.CharField(max_length=60)
    message = models.TextField()
    object_ref = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open alert per (kind, object): a retried failure does not pile up alerts.
            models.UniqueConstraint(
                fields=["kind", "object_ref"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_alert_per_object",
            )
        ]


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
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["object_type", "created_at"], name="audit_object_when")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username or self.actor_type} {self.action} {self.object_type}"

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
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single_row")
        ]

    def __str__(self) -> str:
        return self.hash
