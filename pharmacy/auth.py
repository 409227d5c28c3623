"""Kiosk authentication: ``Authorization: Kiosk <kiosk_id>:<secret>``.

Kiosk endpoints accept only this scheme (a staff session or token is ignored there, so it is a
401); staff endpoints never list this class, so a kiosk credential is a 401 there. A kiosk is not a
user: ``request.user`` is a small principal object and ``request.auth`` the Kiosk row.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from pharmacy.codes import kiosk_secret_matches
from pharmacy.models import Kiosk

_KIOSK_SQL = "SELECT * FROM pharmacy_kiosk WHERE kiosk_id = %s"


class KioskPrincipal:
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_platform_admin = False
    role = "kiosk"

    def __init__(self, kiosk: Kiosk) -> None:
        self.kiosk = kiosk
        self.pk = None
        self.username = f"kiosk:{kiosk.kiosk_id}"

    def __str__(self) -> str:
        return self.username


class KioskAuthentication(BaseAuthentication):
    keyword = "Kiosk"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid kiosk credentials header."))
        try:
            kiosk_id, secret = header[1].decode("ascii").split(":", 1)
        except (UnicodeDecodeError, ValueError) as exc:
            raise exceptions.AuthenticationFailed(_("Invalid kiosk credentials header.")) from exc
        # Every kiosk call runs this lookup: a raw query skips the ORM's query compilation
        # (~0.6 ms of CPU per request on the 2-core reference machine, docs/benchmarks.md).
        kiosk = next(
            iter(Kiosk.objects.raw(_KIOSK_SQL, [kiosk_id[:32]])),
            None,
        )
        if kiosk is None or not kiosk_secret_matches(secret, kiosk.secret_hash):
            raise exceptions.AuthenticationFailed(_("Invalid kiosk credentials."))
        if kiosk.status != Kiosk.Status.ACTIVE:
            raise exceptions.AuthenticationFailed(_("This kiosk is not active."))
        return KioskPrincipal(kiosk), kiosk

    def authenticate_header(self, request) -> str:
        return 'Kiosk realm="api"'


class IsKiosk(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Kiosk)


class KioskAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "pharmacy.auth.KioskAuthentication"
    name = "kioskAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Kiosk <kiosk_id>:<secret>`",
        }
