"""What the apps' demo seed commands share: the demo password and an idempotent user."""

from __future__ import annotations

import os
from typing import Any

from accounts.models import User


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD", "eyebridge-demo")


def ensure_user(username: str, role: str, **extra: Any) -> User:
    """The demo user with that name, created with the demo password the first time only (a
    password changed since is kept)."""
    user, created = User.objects.get_or_create(username=username, defaults={"role": role, **extra})
    if created:
        user.set_password(demo_password())
        user.save()
    return user
