from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Role
from accounts.security import otp_available_for
from accounts.services import (
    otp_token_verify,
    totp_device_confirm,
    totp_device_start,
    user_language_update,
)
from config.http import AuthenticatedRequest


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    """Send each role to its own portal."""
    role = request.user.role
    if role == Role.HEALTH_WORKER:
        return redirect("screening:worklist")
    if role == Role.PHARMACIST:
        return redirect("pharmacy:queue")
    if role == Role.HOSPITAL_STAFF:
        return redirect("referrals:inbox")
    if role == Role.GRADER:
        return redirect("grading:queue")
    if hasattr(request.user, "dashboard_access"):
        return redirect("dashboard:index")
    if request.user.is_platform_admin:
        return redirect("admin:index")
    return render(request, "accounts/no_role.html", status=403)


# The language a visitor picked on the sign-in page, kept in the (anonymous) session, which
# login() carries over to the signed-in one.
LOGIN_LANGUAGE_SESSION_KEY = "login_language"
PICKABLE_LANGUAGES = {"ko", "en"}


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        # A language picked on this page is the user's choice: it becomes their saved language
        # (which otherwise wins over the cookie at every request). Only an explicit pick counts,
        # so a browser's default never overwrites a saved English or Korean.
        language = self.request.session.pop(LOGIN_LANGUAGE_SESSION_KEY, None)
        user = form.get_user()
        if language in PICKABLE_LANGUAGES:
            if user.preferred_language != language:
                user_language_update(user=user, language=language)
            response.set_cookie("django_language", language, samesite="Lax")
        return response


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the language and, for a signed-in user, remember it on their account."""
    language = request.POST.get("language", "")
    if language not in PICKABLE_LANGUAGES:
        language = "ko"
    if request.user.is_authenticated:
        user_language_update(user=request.user, language=language)
    else:
        request.session[LOGIN_LANGUAGE_SESSION_KEY] = language
    translation.activate(language)
    next_url = request.POST.get("next") or reverse("home")
    if not next_url.startswith("/") or next_url.startswith("//"):
        next_url = reverse("home")
    response = redirect(next_url)
    response.set_cookie("django_language", language, samesite="Lax")
    return response


def _qr_svg(data: str) -> str:
    """The otpauth URI as an inline SVG QR code (no image request, no third-party service)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


def _safe_next(request: HttpRequest, value: str | None) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return reverse("home")


@login_required
@require_http_methods(["GET", "POST"])
def otp_setup(request: AuthenticatedRequest) -> HttpResponse:
    """Enrol a TOTP authenticator: show the otpauth URI and its QR code, confirm with a code.

    Offered to the roles in OTP_REQUIRED_ROLES. Once a device is confirmed, every later sign-in
    asks for a code. Re-enrolling (a lost phone) is an administrator's job: they delete the device
    in the admin, so a stolen password alone can never swap the authenticator."""
    from django_otp import login as otp_login
    from django_otp import user_has_device

    if not otp_available_for(request.user):
        return render(request, "accounts/no_role.html", status=403)
    if user_has_device(request.user, confirmed=True):
        return render(request, "accounts/otp_setup.html", {"enrolled": True})
    device = totp_device_start(user=request.user)
    error = ""
    if request.method == "POST":
        token = request.POST.get("token", "").strip()[:16]
        if totp_device_confirm(device=device, token=token):
            otp_login(request, device)
            messages.success(request, _("Two-factor authentication is on."))
            return redirect("home")
        error = _("That code is not right. Check the time on your phone and try the current code.")
    uri = device.config_url
    return render(
        request,
        "accounts/otp_setup.html",
        {"uri": uri, "qr_svg": _qr_svg(uri), "error": error, "enrolled": False},
        status=400 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def otp_verify(request: AuthenticatedRequest) -> HttpResponse:
    """The second step after the password, for users with a confirmed device."""
    from django_otp import login as otp_login

    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_verified():  # type: ignore[attr-defined]  # added by OTPMiddleware
        return redirect(next_url)
    error = ""
    if request.method == "POST":
        token = request.POST.get("token", "").strip()[:16]
        device = otp_token_verify(request=request, user=request.user, token=token)
        if device is not None:
            otp_login(request, device)
            return redirect(next_url)
        error = _("That code is not right. Try the code your authenticator shows now.")
    return render(
        request,
        "accounts/otp_verify.html",
        {"error": error, "next": next_url},
        status=400 if error else 200,
    )
