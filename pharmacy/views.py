"""The pharmacist portal, the health worker's request form, the QR image and the kiosk simulator.

Views parse input, call one service or selector and render; a ServiceError becomes a message on
the page (or its HTTP status for 404/403)."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import wraps
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from config.errors import NotFound, ServiceError
from config.http import AuthenticatedRequest
from pharmacy import codes, demo, selectors, services
from pharmacy.forms import ApproveForm, ReasonForm, ReceiveForm, RequestForm, StockAdjustForm
from pharmacy.models import Pharmacy, Prescription


class PharmacistRequest(AuthenticatedRequest):
    """A request that passed ``pharmacist_required``: it carries the pharmacist's pharmacy."""

    pharmacy: Pharmacy


def pharmacist_required(view: Callable) -> Callable:
    @login_required
    @wraps(view)
    def wrapped(request: AuthenticatedRequest, *args, **kwargs) -> HttpResponse:
        pharmacy = selectors.pharmacy_for_user(user=request.user)
        if pharmacy is None:
            return render(request, "pharmacy/forbidden.html", status=403)
        pharmacist_request = cast(PharmacistRequest, request)
        pharmacist_request.pharmacy = pharmacy
        return view(pharmacist_request, *args, **kwargs)

    return wrapped


def _get_or_404(fn: Callable, **kwargs):
    try:
        return fn(**kwargs)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _nav_counts(request: PharmacistRequest) -> dict[str, int]:
    pharmacy = request.pharmacy
    return {
        "open_calls": selectors.call_requests_for_pharmacy(pharmacy=pharmacy)
        .filter(status="open")
        .count(),
        "open_alerts": selectors.open_alerts_for_pharmacy(pharmacy=pharmacy).count(),
    }


@pharmacist_required
def queue(request: PharmacistRequest) -> HttpResponse:
    pending = list(selectors.prescription_queue(user=request.user))
    rows = [(p, selectors.prescription_warnings(prescription=p)) for p in pending]
    approved = selectors.prescription_queue(user=request.user, status=Prescription.Status.APPROVED)[
        :50
    ]
    return render(
        request,
        "pharmacy/queue.html",
        {
            "rows": rows,
            "approved": approved,
            "pharmacy": request.pharmacy,
            **_nav_counts(request),
        },
    )


@pharmacist_required
@require_http_methods(["GET", "POST"])
def prescription_detail(request: PharmacistRequest, prescription_id: int) -> HttpResponse:
    prescription = _get_or_404(
        selectors.prescription_get_for_user, user=request.user, prescription_id=prescription_id
    )
    approve_form = ApproveForm(initial=ApproveForm.initial_for(prescription))
    reason_form = ReasonForm()
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "approve":
                approve_form = ApproveForm(request.POST)
                if approve_form.is_valid():
                    services.prescription_approve(
                        user=request.user,
                        prescription_id=prescription.pk,
                        counselling=approve_form.counselling(),
                        note=approve_form.cleaned_data["note"],
                        acknowledge_warnings=approve_form.cleaned_data["acknowledge_warnings"],
                    )
                    messages.success(
                        request, _("Approved. The patient will receive the pickup code.")
                    )
                    return redirect("pharmacy:prescription_detail", prescription_id=prescription.pk)
            elif action in {"reject", "cancel"}:
                reason_form = ReasonForm(request.POST)
                if reason_form.is_valid():
                    service = (
                        services.prescription_reject
                        if action == "reject"
                        else services.prescription_cancel
                    )
                    service(
                        user=request.user,
                        prescription_id=prescription.pk,
                        reason=reason_form.cleaned_data["reason"],
                    )
                    messages.success(
                        request, _("Rejected.") if action == "reject" else _("Cancelled.")
                    )
                    return redirect("pharmacy:queue")
            else:
                messages.error(request, _("Unknown action."))
        except ServiceError as exc:
            messages.error(request, exc.message)
            for warning in exc.details.get("warnings", []):
                messages.warning(request, warning)
    return render(
        request,
        "pharmacy/prescription_detail.html",
        {
            "p": prescription,
            # Both eyes' photos, linked to screening's image view: it checks that this pharmacy
            # holds a prescription for the screening and audits each fetch.
            "images": prescription.screening.images.all(),
            "warnings": selectors.prescription_warnings(prescription=prescription),
            "approve_form": approve_form,
            "reason_form": reason_form,
            "events": prescription.events.select_related("actor", "kiosk"),
            "dispenses": prescription.dispenses.select_related("kiosk").prefetch_related(
                "lines__medication"
            ),
            "code": _code_for(prescription),
            **_nav_counts(request),
        },
    )


def _code_for(prescription: Prescription) -> str | None:
    code_row = getattr(prescription, "dispense_code", None)
    if (
        prescription.status != Prescription.Status.APPROVED
        or code_row is None
        or code_row.revoked_at
    ):
        return None
    return codes.format_code(codes.code_from_salt(code_row.salt))


@pharmacist_required
@require_http_methods(["GET", "POST"])
def stock(request: PharmacistRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            if request.POST.get("action") == "receive":
                form = _receive_form(request, data=request.POST)
                if form.is_valid():
                    services.stock_lot_receive(actor=request.user, **form.cleaned_data)
                    messages.success(request, _("Stock received."))
                else:
                    messages.error(
                        request,
                        _("Invalid stock receipt: %(errors)s")
                        % {
                            "errors": "; ".join(
                                f"{k}: {' '.join(str(m) for m in v)}"
                                for k, v in form.errors.items()
                            )
                        },
                    )
            elif request.POST.get("action") == "resolve_alert":
                services.pharmacy_alert_resolve(
                    user=request.user, alert_id=int(request.POST.get("alert", "0"))
                )
                messages.success(request, _("Alert resolved."))
            else:
                adjust_form = StockAdjustForm(request.POST)
                if adjust_form.is_valid():
                    services.stock_adjust(
                        user=request.user,
                        lot_id=adjust_form.cleaned_data["lot"],
                        delta=adjust_form.cleaned_data["delta"],
                        reason=adjust_form.cleaned_data["reason"],
                        note=adjust_form.cleaned_data["note"],
                    )
                    messages.success(request, _("Stock updated."))
                else:
                    messages.error(request, _("Invalid stock change."))
        except (ServiceError, ValueError) as exc:
            messages.error(request, getattr(exc, "message", _("Invalid input.")))
        return redirect("pharmacy:stock")
    kiosks, alerts = selectors.stock_overview(pharmacy=request.pharmacy)
    return render(
        request,
        "pharmacy/stock.html",
        {
            "kiosks": kiosks,
            "alerts": alerts,
            "open_alert_rows": selectors.open_alerts_for_pharmacy(pharmacy=request.pharmacy),
            "adjust_form": StockAdjustForm(),
            "receive_form": _receive_form(request),
            **_nav_counts(request),
        },
    )


def _receive_form(request: PharmacistRequest, data=None) -> ReceiveForm:
    return ReceiveForm(
        data,
        kiosks=selectors.kiosks_for_pharmacy(pharmacy=request.pharmacy),
        medications=selectors.medications_for_request(),
    )


@pharmacist_required
def dispenses(request: PharmacistRequest) -> HttpResponse:
    page = Paginator(selectors.dispenses_for_pharmacy(pharmacy=request.pharmacy), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "pharmacy/dispenses.html", {"page": page, **_nav_counts(request)})


@pharmacist_required
@require_http_methods(["GET", "POST"])
def calls(request: PharmacistRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            services.kiosk_call_request_answer(
                user=request.user, call_id=int(request.POST.get("call", "0"))
            )
        except (ServiceError, ValueError):
            messages.error(request, _("Call request not found."))
        return redirect("pharmacy:calls")
    call_list = selectors.call_requests_for_pharmacy(pharmacy=request.pharmacy)[:100]
    return render(request, "pharmacy/calls.html", {"calls": call_list, **_nav_counts(request)})


@login_required
@require_http_methods(["GET", "POST"])
def request_medication(request: AuthenticatedRequest) -> HttpResponse:
    """A health worker asks the pharmacist for a formulary item: /pharmacy/request/?screening=ID."""
    if request.user.role != Role.HEALTH_WORKER:
        return render(request, "pharmacy/forbidden.html", status=403)
    try:
        screening_id = int(request.GET.get("screening") or request.POST.get("screening") or 0)
    except ValueError as exc:
        raise Http404 from exc
    screening = _get_or_404(
        selectors.screening_get_for_health_worker, user=request.user, screening_id=screening_id
    )
    medications = selectors.medications_for_request()
    form = RequestForm(request.POST or None, medications=medications)
    if request.method == "POST" and form.is_valid():
        try:
            services.prescription_request(
                user=request.user,
                screening_id=screening.pk,
                medication_id=form.cleaned_data["medication"].pk,
                quantity=form.cleaned_data["quantity"],
                note=form.cleaned_data["note"],
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, _("Request sent to the pharmacist."))
            return redirect("screening:screening_detail", screening_id=screening.pk)
    return render(request, "pharmacy/request.html", {"form": form, "screening": screening})


@login_required
def prescription_qr(request: AuthenticatedRequest, prescription_id: int) -> HttpResponse:
    """The pickup code as an SVG QR code, for the patient's health worker or the pharmacist."""
    import qrcode
    import qrcode.image.svg

    prescription = _get_or_404(
        selectors.prescription_get_for_user, user=request.user, prescription_id=prescription_id
    )
    code = _code_for(prescription)
    if code is None:
        raise Http404(_("No active code."))
    buffer = io.BytesIO()
    qrcode.make(code, image_factory=qrcode.image.svg.SvgPathImage, box_size=12, border=2).save(
        buffer
    )
    response = HttpResponse(buffer.getvalue(), content_type="image/svg+xml")
    response["Cache-Control"] = "no-store"
    return response


def kiosk_simulator(request: HttpRequest) -> HttpResponse:
    """A touch-screen kiosk in the browser. It holds no patient data: it talks to the real kiosk
    API with the kiosk credential typed into it, exactly as a machine would.

    In development (settings.DEBUG) it also lists the seeded demo kiosks, and
    ``?demo_kiosk=<kiosk id>`` fills in that kiosk's credential (pharmacy.demo). In production
    there is no list, and the parameter is a 404 whatever it names."""
    chosen_id = request.GET.get("demo_kiosk")
    if chosen_id is not None and not settings.DEBUG:
        raise Http404
    kiosks = demo.demo_kiosks()
    chosen = None
    if chosen_id is not None:
        chosen = next((k for k in kiosks if k.kiosk.kiosk_id == chosen_id), None)
        if chosen is None:
            raise Http404
    return render(
        request,
        "pharmacy/kiosk_simulator.html",
        {"demo_kiosks": kiosks, "demo_kiosk": chosen},
    )
