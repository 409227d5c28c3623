"""Writes of the accounts app: saved languages, TOTP enrolment, sign-in steps, API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from accounts.audit import audit_record
from accounts.models import User
from accounts.security import otp_required_for

if TYPE_CHECKING:
    from django_otp.models import Device
    from django_otp.plugins.otp_totp.models import TOTPDevice


class SignInError(Exception):
    """A sign-in that api_token_obtain refuses."""


class InvalidCredentials(SignInError):
    """Wrong username or password, or an inactive user."""


class OTPRequired(SignInError):
    """The user has enrolled a TOTP device and the code was missing or wrong."""


def user_language_update(*, user: User, language: str) -> None:
    """Save ``language`` as the user's language. Updates that one column only, so that the rest of
    a long-lived ``request.user`` (possibly stale) is never written back."""
    User.objects.filter(pk=user.pk).update(preferred_language=language)
    user.preferred_language = language


def totp_device_start(*, user: User) -> TOTPDevice:
    """The unconfirmed TOTP device the user is enrolling, created on the first call and reused
    after, so that the QR code shown on the setup page stays valid until it is confirmed."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="default", confirmed=False)
    return device


def totp_device_confirm(*, device: TOTPDevice, token: str) -> bool:
    """Confirm the device if ``token`` is its current code. From then on every sign-in of the
    user asks for a code. Returns whether it was confirmed."""
    if not (token.isdigit() and device.verify_token(token)):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return True


def otp_token_verify(*, request: HttpRequest, user: User, token: str) -> Device | None:
    """The second sign-in step: the user's device that accepts ``token``, or None. A wrong code
    is recorded in the audit trail as a failed sign-in (stage ``otp``)."""
    from django_otp import match_token

    device = match_token(user, token) if token.isdigit() else None
    if device is None:
        audit_record(
            action="login_failed",
            user=user,
            object_type="user",
            object_ids=[user.pk],
            request=request,
            url_name="accounts:otp_verify",
            extra={"stage": "otp"},
        )
    return device


def api_token_issue(*, user: User) -> Token:
    """The user's API token, created on first use; the same token on every later call."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


def api_token_obtain(
    *, request: HttpRequest, username: str, password: str, otp: str | None = None
) -> Token:
    """Authenticate with a password (and, once the user has enrolled a TOTP device, a code) and
    issue the user's API token. Raises InvalidCredentials or OTPRequired.

    Sends the sign-in signals itself, so that axes and the audit trail see API sign-ins as they
    see portal ones."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials
    if otp_required_for(user):
        from django_otp import match_token

        if not otp or match_token(user, otp) is None:
            # Counts as a failed sign-in for axes and the audit trail: the password alone must
            # not be enough, nor a way to guess codes without limit.
            user_login_failed.send(
                sender=__name__, credentials={"username": user.get_username()}, request=request
            )
            raise OTPRequired
    # authenticate() alone sends no signal on success: send it, so the sign-in is audited and
    # axes resets this username+IP's failure count.
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    return api_token_issue(user=user)


def audit_export_record(*, rows: int, since: str, until: str) -> None:
    """Record an export of the audit trail (``manage.py export_audit``) in the trail itself."""
    audit_record(
        action="export",
        actor_type="system",
        object_type="audit_event",
        url_name="manage.py export_audit",
        extra={"rows": rows, "since": since, "until": until},
    )
