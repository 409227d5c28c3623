from __future__ import annotations

from django.http import HttpRequest

from accounts.models import Role


def roles(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    role = getattr(user, "role", "") if user is not None and user.is_authenticated else ""
    return {
        "role": role,
        "is_health_worker": role == Role.HEALTH_WORKER,
        "is_pharmacist": role == Role.PHARMACIST,
        "is_hospital_staff": role == Role.HOSPITAL_STAFF,
        "is_platform_admin": bool(user is not None and user.is_authenticated and user.is_platform_admin),
    }
