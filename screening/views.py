"""Health-worker portal: thin views over screening.selectors and screening.services."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.models import Role, User
from config.errors import Conflict, InvalidInput, NotFound
from config.http import AuthenticatedRequest
from screening import consent, pending_photos, recall, selectors, services, uploads
from screening.forms import PatientEditForm, PatientForm, ScreeningForm
from screening.models import CLASS_NAMES
from screening.triage import next_step_text, reason_plain, reason_text


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "screening/not_found.html", status=404)


def _require_health_worker(request: AuthenticatedRequest) -> HttpResponse | None:
    if selectors.user_site(user=request.user) is None and not request.user.is_platform_admin:
        # A pharmacist or hospital member has a role, just not this page's: say so and show
        # the way home, rather than "no role assigned".
        if request.user.role and request.user.role != Role.HEALTH_WORKER:
            return render(request, "role_elsewhere.html", status=403)
        return render(request, "accounts/no_role.html", status=403)
    return None


@login_required
def worklist(request: AuthenticatedRequest) -> HttpResponse:
    if denied := _require_health_worker(request):
        return denied
    screenings = selectors.worklist(user=request.user)
    return render(request, "screening/worklist.html", {"screenings": screenings})


@login_required
def patient_list(request: AuthenticatedRequest) -> HttpResponse:
    if denied := _require_health_worker(request):
        return denied
    query = request.GET.get("q", "")[:100]
    patients = selectors.patient_search(user=request.user, query=query)[:100]
    return render(request, "screening/patient_list.html", {"patients": patients, "q": query})


@login_required
@require_http_methods(["GET", "POST"])
def patient_create(request: AuthenticatedRequest) -> HttpResponse:
    if denied := _require_health_worker(request):
        return denied
    form = PatientForm(request.POST or None, site=selectors.user_site(user=request.user))
    duplicates = []
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        allow_duplicate = values.pop("allow_duplicate")
        try:
            patient = services.patient_create(
                user=request.user,
                data=services.PatientInput(**values),
                allow_duplicate=allow_duplicate,
            )
        except Conflict as exc:
            duplicates = exc.details.get("duplicates", [])
            # A bound form's data is request.POST: copied to tick the box on the page shown again.
            data = request.POST.copy()
            data["allow_duplicate"] = "on"
            form.data = data
        except InvalidInput as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, _("Patient registered."))
            return redirect("screening:patient_detail", patient_id=patient.id)
    status = 409 if duplicates else (400 if request.method == "POST" else 200)
    # The full text of the version being agreed to, read to the patient before the box is ticked.
    text = consent.consent_text_current()
    return render(
        request,
        "screening/patient_form.html",
        {
            "form": form,
            "duplicates": duplicates,
            "consent_text": text.text(get_language()) if text is not None else "",
        },
        status=status,
    )


@login_required
def patient_detail(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    try:
        patient = selectors.patient_get(user=request.user, patient_id=patient_id)
    except NotFound:
        return _not_found(request)
    screenings = patient.screenings.order_by("-created_at")[:50]
    context = {
        "patient": patient,
        "screenings": screenings,
        "recall": recall.patient_recall(patient=patient),
        "today": timezone.localdate(),
    }
    return render(request, "screening/patient_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def patient_edit(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    """Correct the patient's demographics and risk factors (audited by the service)."""
    if denied := _require_health_worker(request):
        return denied
    try:
        patient = selectors.patient_get(user=request.user, patient_id=patient_id)
    except NotFound:
        return _not_found(request)
    form = PatientEditForm(request.POST or None, patient=patient)
    duplicates = []
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update(
                user=request.user,
                patient_id=patient.id,
                changes=form.changes(),
                allow_duplicate=form.cleaned_data["allow_duplicate"],
                request=request,
            )
        except Conflict as exc:
            duplicates = exc.details.get("duplicates", [])
            data = request.POST.copy()
            data["allow_duplicate"] = "on"
            form.data = data
        except InvalidInput as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, _("Patient record updated."))
            return redirect("screening:patient_detail", patient_id=patient.id)
    status = 409 if duplicates else (400 if request.method == "POST" else 200)
    return render(
        request,
        "screening/patient_edit.html",
        {"form": form, "patient": patient, "duplicates": duplicates},
        status=status,
    )


@login_required
def recall_list(request: AuthenticatedRequest) -> HttpResponse:
    """Who is due for rescreening at the health worker's site, overdue first."""
    if denied := _require_health_worker(request):
        return denied
    today = timezone.localdate()
    recalls = list(recall.recalls_due(user=request.user, today=today)[:300])
    return render(
        request,
        "screening/recall_list.html",
        {"recalls": recalls, "today": today, "days_before": settings.RECALL_REMINDER_DAYS_BEFORE},
    )


@login_required
@require_http_methods(["GET", "POST"])
def screening_create(request: AuthenticatedRequest, patient_id: int) -> HttpResponse:
    try:
        patient = selectors.patient_get(user=request.user, patient_id=patient_id)
    except NotFound:
        return _not_found(request)
    form = ScreeningForm(request.POST or None, request.FILES or None)
    retake: dict[str, list[dict]] = {}
    kept = pending_photos.unsign(request.POST, user=request.user, patient=patient)
    if request.method == "POST" and form.is_valid():
        try:
            screening = services.screening_submit(
                user=request.user,
                patient_id=patient.id,
                left_image=form.cleaned_data["left_image"],
                right_image=form.cleaned_data["right_image"],
                symptoms=form.cleaned_data["symptoms"],
                notes=form.cleaned_data["notes"],
                accept_ungradable=form.cleaned_data["accept_ungradable"],
                kept=kept,
                keep_accepted=True,
            )
        except InvalidInput as exc:
            retake = exc.details.get("errors", {})
            kept = exc.details.get("accepted", kept)
            if not retake:
                form.add_error(None, exc.message)
        else:
            return redirect("screening:screening_detail", screening_id=screening.id)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "screening/screening_form.html",
        {
            "form": form,
            "patient": patient,
            "retake": retake,
            # The eyes that passed stay chosen: the health worker retakes only the one that failed.
            "kept": pending_photos.sign(kept, user=request.user, patient=patient),
        },
        status=status,
    )


def _result_context(screening) -> dict:
    results = {r.eye: r for r in screening.results.all()}
    images = {i.eye: i for i in screening.images.all()}
    eyes = []
    for eye in ("right", "left"):
        if eye in images:
            result = results.get(eye)
            probs = (
                [
                    (code, CLASS_NAMES.get(code, code), p)
                    for code, p in sorted(result.probabilities.items(), key=lambda kv: -kv[1])
                ]
                if result
                else []
            )
            eyes.append(
                {"eye": eye, "image": images[eye], "result": result, "probabilities": probs}
            )
    return {
        "screening": screening,
        "eyes": eyes,
        # The health worker reads the decision, why in plain words and what to do now; the
        # probabilities and thresholds are for clinicians, behind "details".
        "reasons": [reason_plain(r) for r in screening.reasons],
        "clinical_reasons": [reason_text(r) for r in screening.reasons],
        "next_step": next_step_text(screening.triage),
    }


@login_required
def screening_detail(request: AuthenticatedRequest, screening_id: int) -> HttpResponse:
    try:
        screening = selectors.screening_get(user=request.user, screening_id=screening_id)
    except NotFound:
        return _not_found(request)
    return render(request, "screening/screening_detail.html", _result_context(screening))


@login_required
def screening_status(request: AuthenticatedRequest, screening_id: int) -> HttpResponse:
    """htmx polls this fragment until the result arrives."""
    try:
        screening = selectors.screening_get(user=request.user, screening_id=screening_id)
    except NotFound:
        return _not_found(request)
    response = render(request, "screening/_status.html", _result_context(screening))
    if screening.is_finished:
        # Reload the whole page once the result exists, so the panels below render too.
        response["HX-Refresh"] = "true"
    return response


def _stream(path: str, content_type: str) -> HttpResponse | FileResponse:
    try:
        handle = uploads.open_stored(path)
    except (FileNotFoundError, InvalidInput):
        return HttpResponse(status=404)
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _file_user(request: HttpRequest) -> User | None:
    """Photos and heatmaps are fetched by the portal (session) and by API clients (token)."""
    if request.user.is_authenticated:
        return request.user
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.exceptions import AuthenticationFailed

    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found else None


def image_file(request: HttpRequest, image_id: int) -> HttpResponse | FileResponse:
    request.user = _file_user(request) or request.user
    if not request.user.is_authenticated:
        return HttpResponse(status=401)
    try:
        image = selectors.image_get(user=request.user, image_id=image_id)
    except NotFound:
        return HttpResponse(status=404)
    return _stream(image.path, "image/jpeg")


def heatmap_file(request: HttpRequest, result_id: int) -> HttpResponse | FileResponse:
    request.user = _file_user(request) or request.user
    if not request.user.is_authenticated:
        return HttpResponse(status=401)
    try:
        result = selectors.result_get(user=request.user, result_id=result_id)
    except NotFound:
        return HttpResponse(status=404)
    if not result.heatmap_path:
        return HttpResponse(status=404)
    return _stream(result.heatmap_path, "image/png")
