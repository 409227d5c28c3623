"""Reads of notifications and alerts, always scoped to the signed-in recipient."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from accounts.models import Alert, Notification, NotificationPreference, User


def notifications_for_user(*, user: User) -> QuerySet[Notification]:
    """The user's in-portal notifications, newest first, with their alert (resolved or not)."""
    return (
        Notification.objects.filter(recipient=user, in_app=True)
        .select_related("alert")
        .order_by("-created_at", "-id")
    )


def notification_unread_count(*, user: User) -> int:
    """The header's number: one COUNT on the partial index of unread in-app rows."""
    return Notification.objects.filter(recipient=user, in_app=True, read_at__isnull=True).count()


def notification_preferences_for(
    *, user: User, kinds: Iterable[str]
) -> dict[str, tuple[bool, bool]]:
    """(email, in_app) per kind; both on where the user saved no choice."""
    kinds = list(kinds)
    saved = {
        kind: (email, in_app)
        for kind, email, in_app in NotificationPreference.objects.filter(
            user=user, kind__in=kinds
        ).values_list("kind", "email", "in_app")
    }
    return {kind: saved.get(kind, (True, True)) for kind in kinds}


def alerts_open(*, kinds: Iterable[str], subject_prefix: str) -> set[tuple[str, str]]:
    """(kind, subject_key) of the open alerts of these kinds under a subject prefix: what a
    checker raised earlier and has not yet seen resolved."""
    return set(
        Alert.objects.filter(
            kind__in=list(kinds),
            subject_key__startswith=subject_prefix,
            resolved_at__isnull=True,
        ).values_list("kind", "subject_key")
    )
