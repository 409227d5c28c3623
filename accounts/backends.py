"""Authentication backends."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class AxesHttpBackend(AxesStandaloneBackend):
    """django-axes lockout for every sign-in that comes over HTTP (portal, admin, API token).

    A caller without a request (Django's test client ``login()``, a shell) cannot be reached by an
    attacker, and axes cannot count it against an IP; it is passed on to the next backend instead
    of raising AxesBackendRequestParameterRequired."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
