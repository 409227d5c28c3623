"""Session timeouts, the two-factor step and security headers (middleware)."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

SESSION_STARTED_KEY = "_eb_auth_started"
SESSION_SEEN_KEY = "_eb_last_seen"
# Rewriting the session on every request costs a write per page view; refreshing "last seen" at
# most once a minute keeps the idle timeout accurate to a minute.
SEEN_RESOLUTION_SECONDS = 60


class RequestSizeLimitMiddleware:
    """Refuses a body whose declared length exceeds REQUEST_MAX_BYTES with 413 before anything
    reads it. Without this, Django spools a multipart upload of any size to disk before the view
    can look at its size (DATA_UPLOAD_MAX_MEMORY_SIZE does not count files). The reverse proxy
    should enforce the same limit (client_max_body_size); this is the app's own guarantee."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.REQUEST_MAX_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(
                {"detail": "Invalid Content-Length.", "code": "bad_request"}, status=400
            )
        if not request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            # Only file uploads may be large; any other body must fit DATA_UPLOAD_MAX_MEMORY_SIZE
            # (Django would answer a bare HTML 400 when something reads it).
            limit = min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or limit)
        if length > limit:
            return JsonResponse(
                {"detail": f"Request body is larger than {limit} bytes.", "code": "too_large"},
                status=413,
            )
        return self.get_response(request)


class SessionTimeoutMiddleware:
    """Signs a session out after SESSION_IDLE_TIMEOUT_SECONDS without a request and
    SESSION_ABSOLUTE_TIMEOUT_SECONDS after sign-in, however active (a shared clinic tablet left
    signed in is the threat). Token and kiosk API clients have no session and are not affected."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = int(time.time())
            session = request.session
            started = session.get(SESSION_STARTED_KEY)
            seen = session.get(SESSION_SEEN_KEY)
            if started is None:
                session[SESSION_STARTED_KEY] = started = now
            expired = (now - started > settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS) or (
                seen is not None and now - seen > settings.SESSION_IDLE_TIMEOUT_SECONDS
            )
            if expired:
                logout(request)  # flushes the session; the request goes on as anonymous
            elif seen is None or now - seen >= SEEN_RESOLUTION_SECONDS:
                session[SESSION_SEEN_KEY] = now
        return self.get_response(request)


def otp_required_for(user) -> bool:
    """True for a user whose role is in OTP_REQUIRED_ROLES and who has a confirmed device.

    Enrolment is offered, not forced: a pharmacist without a device signs in with the password
    alone until they enrol; from then on the code is always asked."""
    from django_otp import user_has_device

    if (
        user is None
        or not getattr(user, "is_authenticated", False)
        or not getattr(user, "pk", None)
    ):
        return False
    roles = set(settings.OTP_REQUIRED_ROLES)
    in_role = user.role in roles or ("admin" in roles and user.is_platform_admin)
    return in_role and user_has_device(user, confirmed=True)


def otp_available_for(user) -> bool:
    roles = set(settings.OTP_REQUIRED_ROLES)
    return bool(user.is_authenticated and (user.role in roles or user.is_platform_admin))


class OTPRequiredMiddleware:
    """After the password, a user who must pass the TOTP step sees nothing but the code page
    (admin site included) until the session is verified. Requires django_otp's OTPMiddleware."""

    ALLOWED_URL_NAMES = {
        "accounts:otp_verify",
        "accounts:logout",
        "accounts:set_language",
        "accounts:login",
        "set_language",
        "javascript-catalog",
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static_prefix = settings.STATIC_URL or "/static/"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(self.static_prefix)
            and not user.is_verified()
            and otp_required_for(user)
        ):
            from django.urls import Resolver404, resolve

            try:
                match = resolve(request.path_info)
                name = f"{match.namespace}:{match.url_name}" if match.namespace else match.url_name
            except Resolver404:
                name = ""
            if name not in self.ALLOWED_URL_NAMES:
                if request.path.startswith("/api/"):
                    return JsonResponse(
                        {"detail": "Two-factor verification required.", "code": "otp_required"},
                        status=403,
                    )
                return redirect(
                    f"{reverse('accounts:otp_verify')}?{urlencode({'next': request.get_full_path()})}"
                )
        return self.get_response(request)


def _tile_source() -> str:
    url = settings.REFERRAL_MAP_TILE_URL
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.netloc.split("@")[-1].replace("{", "").replace("}", "")
    return f"{parts.scheme}://{host}"


def content_security_policy(*, relaxed_scripts: bool = False) -> str:
    """The portal serves every asset itself (htmx from /static/js/, Leaflet from /static/), so
    'self' is enough; map tiles may come from the configured tile server. Inline styles are
    allowed (Django admin and Leaflet set style attributes); inline scripts are not."""
    img = "'self' data: blob:"
    tiles = _tile_source()
    if tiles:
        img += f" {tiles}"
    script = "'self' 'unsafe-inline'" if relaxed_scripts else "'self'"
    return "; ".join(
        [
            "default-src 'self'",
            f"img-src {img}",
            "style-src 'self' 'unsafe-inline'",
            f"script-src {script}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


PERMISSIONS_POLICY = "camera=(self), geolocation=(self), microphone=(), payment=(), usb=()"


class SecurityHeadersMiddleware:
    """CSP and Permissions-Policy on every response (Django's SecurityMiddleware already sets
    X-Content-Type-Options, Referrer-Policy and HSTS; XFrameOptionsMiddleware X-Frame-Options).
    Health workers photograph retinas with the phone camera: camera=(self)."""

    # The API documentation pages (drf-spectacular's Swagger UI / ReDoc) start with an inline script.
    RELAXED_PREFIXES = ("/api/v1/docs/", "/api/v1/redoc/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            relaxed = request.path.startswith(self.RELAXED_PREFIXES)
            response["Content-Security-Policy"] = content_security_policy(relaxed_scripts=relaxed)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.setdefault("X-Content-Type-Options", "nosniff")
        return response


def lockout_response(
    request: HttpRequest, original_response=None, credentials=None
) -> HttpResponse:
    """django-axes' lockout answer: 429, JSON for the API, a page for the portal."""
    from django.shortcuts import render

    minutes = max(1, round(settings.AXES_COOLOFF_TIME * 60))
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "detail": "Too many failed sign-ins; try again later.",
                "code": "locked_out",
                "retry_after_minutes": minutes,
            },
            status=429,
        )
    else:
        response = render(request, "accounts/locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response
