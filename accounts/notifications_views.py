"""Portal pages of notifications: the list with mark-as-read, and the per-kind preferences."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import NotificationKind
from accounts.notifications import (
    KIND_HELP,
    kinds_for_user,
    notification_body,
    notification_mark_read,
    notification_preferences_update,
    notification_title,
    notifications_mark_all_read,
)
from accounts.notifications_selectors import (
    notification_preferences_for,
    notifications_for_user,
)
from config.errors import NotFound
from config.http import AuthenticatedRequest

PAGE_SIZE = 30


def _local_path(value: str) -> str | None:
    """Only a path on this site: a notification's link is ours, but never an open redirect."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


@login_required
def notification_list(request: AuthenticatedRequest) -> HttpResponse:
    page = Paginator(notifications_for_user(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    items = [
        {
            "notification": n,
            "title": notification_title(n),
            "body": notification_body(n),
            "kind": NotificationKind(n.kind).label,
            "resolved": n.alert is not None and n.alert.resolved_at is not None,
        }
        for n in page
    ]
    return render(request, "accounts/notifications.html", {"page": page, "items": items})


@login_required
@require_POST
def notification_read(request: AuthenticatedRequest, notification_id: int) -> HttpResponse:
    """Mark one read; with ``open`` in the form, go on to what it is about."""
    try:
        notification = notification_mark_read(user=request.user, notification_id=notification_id)
    except NotFound:
        raise Http404 from None
    target = _local_path(notification.link) if "open" in request.POST else None
    if target:
        return redirect(target)
    page = request.POST.get("page", "")
    suffix = f"?page={page}" if page.isdigit() else ""
    return redirect(reverse("accounts:notifications") + suffix)


@login_required
@require_POST
def notifications_read_all(request: AuthenticatedRequest) -> HttpResponse:
    notifications_mark_all_read(user=request.user)
    return redirect("accounts:notifications")


@login_required
@require_http_methods(["GET", "POST"])
def notification_preferences(request: AuthenticatedRequest) -> HttpResponse:
    kinds = kinds_for_user(request.user)
    if request.method == "POST":
        notification_preferences_update(
            user=request.user,
            choices={
                kind: (f"email_{kind}" in request.POST, f"in_app_{kind}" in request.POST)
                for kind in kinds
            },
        )
        messages.success(request, _("Your notification settings are saved."))
        return redirect("accounts:notification_preferences")
    saved = notification_preferences_for(user=request.user, kinds=kinds)
    rows = [
        {
            "kind": kind,
            "label": NotificationKind(kind).label,
            "help": KIND_HELP[NotificationKind(kind)],
            "email": saved[kind][0],
            "in_app": saved[kind][1],
        }
        for kind in kinds
    ]
    return render(
        request,
        "accounts/notification_preferences.html",
        {"rows": rows, "has_email": bool(request.user.email)},
    )
