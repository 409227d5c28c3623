"""Request types for views.

``request.user`` on a plain ``HttpRequest`` is ``User | AnonymousUser``; behind
``@login_required`` it is always a signed-in ``User``, and annotating the view's request with
``AuthenticatedRequest`` tells the type checker so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from accounts.models import User


class AuthenticatedRequest(HttpRequest):
    user: User
