"""The referral letter download (PDF): for whoever may open the referral page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from config.errors import NotFound
from config.http import AuthenticatedRequest
from referrals import selectors
from referrals.letter import LetterFontUnavailable, referral_letter_pdf
from referrals.models import AT_HOSPITAL_STATUSES
from referrals.views import render_detail

LETTER_LANGUAGES = ("ko", "en")


@require_GET
@login_required
def referral_letter(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    # Scoped first: another organisation's referral is a 404 whatever the query string says.
    try:
        referral = selectors.referral_get_for_user(user=request.user, referral_id=referral_id)
    except NotFound:
        raise Http404 from None
    preferred = request.user.preferred_language
    language = request.GET.get("lang") or (preferred if preferred in LETTER_LANGUAGES else "ko")
    if language not in LETTER_LANGUAGES:
        messages.error(request, _("Unknown language: choose ko or en."))
        return render_detail(request, referral, status=400)
    # The same rule as the referral page: a hospital sees the photographs only while the referral
    # is with it (not after it declined); the site's health workers and admins always do.
    with_images = (
        selectors.user_hospital_id(request.user) is None or referral.status in AT_HOSPITAL_STATUSES
    )
    try:
        pdf = referral_letter_pdf(referral=referral, language=language, with_images=with_images)
    except LetterFontUnavailable as exc:
        messages.error(request, exc.message)
        return render_detail(request, referral, status=exc.status_code)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="referral-{referral.pk}-{language}.pdf"'
    )
    # Patient data: never kept by a shared browser cache or a proxy.
    response["Cache-Control"] = "private, no-store"
    return response
