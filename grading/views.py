"""Grader portal: the reading queue and the read page, thin over grading.selectors and services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from config.errors import Conflict, Forbidden, InvalidInput, NotFound
from config.http import AuthenticatedRequest
from grading import selectors, services
from grading.forms import ReadForm
from grading.models import CaseStage, GradingCase
from screening.models import CLASS_NAMES, RiskFactor, Symptom
from screening.triage import next_step_text, reason_text


def _require_grader(request: AuthenticatedRequest) -> HttpResponse | None:
    if selectors.is_grader(user=request.user):
        return None
    if request.user.role:
        return render(request, "grading/not_for_role.html", status=403)
    return render(request, "accounts/no_role.html", status=403)


@login_required
def queue(request: AuthenticatedRequest) -> HttpResponse:
    if denied := _require_grader(request):
        return denied
    cases = selectors.grading_queue(user=request.user)[:200]
    return render(request, "grading/queue.html", {"cases": cases})


def _eyes(case: GradingCase) -> list[dict[str, Any]]:
    screening = case.screening
    results = {r.eye: r for r in screening.results.all()}
    eyes = []
    for image in sorted(screening.images.all(), key=lambda i: i.eye != "right"):
        result = results.get(image.eye)
        probabilities = (
            [
                (code, CLASS_NAMES.get(code, code), p)
                for code, p in sorted(result.probabilities.items(), key=lambda kv: -kv[1])
            ]
            if result
            else []
        )
        eyes.append(
            {"eye": image.eye, "image": image, "result": result, "probabilities": probabilities}
        )
    return eyes


def _read_context(
    request: AuthenticatedRequest, case: GradingCase, form: ReadForm
) -> dict[str, Any]:
    screening = case.screening
    patient = screening.patient
    symptoms = dict(Symptom.choices)
    reads = selectors.reads_visible_to(user=request.user, case=case)
    can_read = case.stage != CaseStage.FINAL and not any(
        r.grader_id == request.user.pk for r in case.reads.all()
    )
    eyes = _eyes(case)
    fields = dict(form.eye_fields())
    for eye in eyes:
        eye["fields"] = fields.get(eye["eye"], []) if can_read else []
    return {
        "case": case,
        "screening": screening,
        "patient": patient,
        "age": _age(patient.birth_date, screening.created_at.date()),
        "risk_factors": [
            label for value, label in RiskFactor.choices if value and getattr(patient, value)
        ],
        "symptoms": [symptoms.get(s, s) for s in screening.symptoms],
        "eyes": eyes,
        "ai_reasons": [reason_text(r) for r in screening.reasons],
        "ai_next_step": next_step_text(screening.triage),
        "history": selectors.patient_history(user=request.user, screening=screening),
        "reads": reads,
        "form": form,
        "can_read": can_read,
    }


def _age(birth, on) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


@login_required
@require_http_methods(["GET", "POST"])
def read(request: AuthenticatedRequest, screening_id: int) -> HttpResponse:
    if denied := _require_grader(request):
        return denied
    try:
        case = selectors.case_get(user=request.user, screening_id=screening_id)
    except NotFound:
        return render(request, "screening/not_found.html", status=404)
    eyes = [image.eye for image in case.screening.images.all()]
    initial = {"stage": case.stage, "next_step": case.screening.triage}
    form = ReadForm(request.POST or None, eyes=sorted(eyes), initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.grader_read_submit(
                    user=request.user,
                    screening_id=screening_id,
                    data=form.read_input(),
                    stage=form.cleaned_data["stage"],
                )
            except InvalidInput as exc:
                form.add_error(form.field_for(exc.field), exc.message)
            except (Conflict, Forbidden) as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(request, _("Read recorded."))
                return redirect("grading:queue")
    return render(request, "grading/read.html", _read_context(request, case, form), status=status)
