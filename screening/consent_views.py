"""The patient's consent page: what they agreed to and when, withdrawal, and (administrators)
erasure. Thin: the rules are in screening.consent."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from config.errors import InvalidInput, NotFound, ServiceError
from config.http import AuthenticatedRequest
from screening import consent, selectors
from screening.views import _not_found, _require_health_worker


@login_required
@require_http_methods(["GET", "POST"])
def patient_consent(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    if denied := _require_health_worker(request):
        return denied
    try:
        patient = selectors.patient_get(user=request.user, patient_id=patient_id)
    except NotFound:
        return _not_found(request)
    error = ""
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "withdraw":
                if request.POST.get("confirm_withdraw") != "on":
                    raise InvalidInput(
                        _("Tick the box to confirm that the patient withdraws consent."),
                        code="confirm_required",
                    )
                consent.patient_consent_withdraw(
                    user=request.user, patient_id=patient.pk, request=request
                )
                messages.success(request, _("Consent withdrawn: nothing more will be done."))
            elif action == "erase":
                consent.patient_erase(
                    user=request.user,
                    patient_id=patient.pk,
                    confirm=request.POST.get("confirm", ""),
                    request=request,
                )
                messages.success(request, _("The patient's record was erased."))
            else:
                raise InvalidInput(_("Unknown action."), code="unknown_action")
        except ServiceError as exc:
            error, status = exc.message, exc.status_code
        else:
            return redirect("screening:patient_consent", patient_id=patient.pk)
        patient.refresh_from_db()
    context = {
        "patient": patient,
        "events": patient.consent_events.select_related("text", "recorded_by"),
        "text": patient.consent_text.text(get_language()) if patient.consent_text else "",
        "can_erase": request.user.is_platform_admin,
        "error": error,
    }
    return render(request, "screening/patient_consent.html", context, status=status)
