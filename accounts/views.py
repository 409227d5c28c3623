from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_POST

from accounts.models import Role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own portal."""
    role = request.user.role
    if role == Role.HEALTH_WORKER:
        return redirect("screening:worklist")
    if role == Role.PHARMACIST:
        return redirect("pharmacy:queue")
    if role == Role.HOSPITAL_STAFF:
        return redirect("referrals:inbox")
    if request.user.is_platform_admin:
        return redirect("admin:index")
    return render(request, "accounts/no_role.html", status=403)


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the language and, for a signed-in user, remember it on their account."""
    language = request.POST.get("language", "")
    if language not in {"ko", "en"}:
        language = "ko"
    if request.user.is_authenticated:
        type(request.user).objects.filter(pk=request.user.pk).update(preferred_language=language)
    translation.activate(language)
    next_url = request.POST.get("next") or reverse("home")
    if not next_url.startswith("/") or next_url.startswith("//"):
        next_url = reverse("home")
    response = redirect(next_url)
    response.set_cookie("django_language", language, samesite="Lax")
    return response
