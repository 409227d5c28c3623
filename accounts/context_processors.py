from __future__ import annotations

from django.http import HttpRequest

from accounts.models import Role


def roles(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    role = getattr(user, "role", "") if signed_in else ""
    is_admin = bool(signed_in and user is not None and user.is_platform_admin)
    return {
        # Public-health staff hold a dashboard.DashboardAccess row (reverse one-to-one).
        "can_see_dashboard": is_admin or bool(signed_in and hasattr(user, "dashboard_access")),
        "role": role,
        "is_health_worker": role == Role.HEALTH_WORKER,
        "is_pharmacist": role == Role.PHARMACIST,
        "is_hospital_staff": role == Role.HOSPITAL_STAFF,
        "is_grader": role == Role.GRADER,
        "is_platform_admin": is_admin,
    }


def notifications(request: HttpRequest) -> dict:
    """The header's unread count, as a callable: the template calls it (one COUNT) only on pages
    that show the header, and anonymous pages query nothing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from accounts.notifications_selectors import notification_unread_count

    cached: list[int] = []

    def unread() -> int:
        if not cached:
            cached.append(notification_unread_count(user=user))
        return cached[0]

    return {"notifications_unread": unread}
