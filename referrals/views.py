"""Portal pages: the hospital inbox and referral page (both roles), and their POST actions.

Each view parses the form, calls one selector or service and renders; service errors become a
message on the page (with the matching status code) and nothing is written."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Role
from config.errors import NotFound, ServiceError
from config.http import AuthenticatedRequest
from referrals import selectors, services
from referrals.models import AT_HOSPITAL_STATUSES, Referral, ReferralStatus
from referrals.presenters import grader_verdict, snapshot_dict
from screening.models import CLASS_NAMES
from screening.triage import reason_text as triage_reason_text

INBOX_FILTERS = {
    "open": [ReferralStatus.SENT, ReferralStatus.ACCEPTED, ReferralStatus.ATTENDED],
    "new": [ReferralStatus.SENT],
    "booked": [ReferralStatus.ACCEPTED],
    "done": [ReferralStatus.COMPLETED, ReferralStatus.NO_SHOW],
    "all": None,
}


@login_required
def inbox(request: AuthenticatedRequest) -> HttpResponse:
    """Hospital staff: referrals to their hospital. Health workers: their site's referrals."""
    if (
        request.user.role not in (Role.HOSPITAL_STAFF, Role.HEALTH_WORKER)
        and not request.user.is_platform_admin
    ):
        raise Http404
    current = request.GET.get("show", "open")
    if current not in INBOX_FILTERS:
        current = "open"
    qs = selectors.referrals_for_user(user=request.user).order_by("-updated_at", "-id")
    if INBOX_FILTERS[current] is not None:
        qs = qs.filter(status__in=INBOX_FILTERS[current])
    filters = [
        ("open", _("Open")),
        ("new", _("New")),
        ("booked", _("Booked")),
        ("done", _("Finished")),
        ("all", _("All")),
    ]
    return render(
        request,
        "referrals/inbox.html",
        {
            "referrals": qs[:200],
            "filters": filters,
            "current": current,
            "hospital": getattr(
                getattr(request.user, "hospital_membership", None), "hospital", None
            ),
        },
    )


@login_required
def referral_detail(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    try:
        referral = selectors.referral_get_for_user(user=request.user, referral_id=referral_id)
    except NotFound:
        raise Http404 from None
    return render_detail(request, referral)


def render_detail(request: AuthenticatedRequest, referral, status: int = 200) -> HttpResponse:
    """The referral page for a referral the caller may see (the letter view shows it again, with
    its message, when a letter cannot be made)."""
    screening = referral.screening
    user = request.user
    is_hospital = selectors.user_hospital_id(user) == referral.hospital_id and referral.hospital_id
    is_worker = user.role == Role.HEALTH_WORKER or user.is_platform_admin
    # The hospital sees the photographs while the referral is with it (not after declining).
    can_see_images = is_worker or (is_hospital and referral.status in AT_HOSPITAL_STATUSES)
    candidates = [snapshot_dict(s) for s in referral.candidates or []]
    map_data = {
        "origin": (
            {
                "lat": referral.origin_latitude,
                "lon": referral.origin_longitude,
                "label": str(referral.get_origin_source_display()),
            }
            if referral.origin_latitude is not None
            else None
        ),
        "candidates": [
            {
                "rank": c["rank"],
                "id": c["hospital"]["id"],
                "name": c["hospital"]["name"],
                "lat": c["hospital"]["latitude"],
                "lon": c["hospital"]["longitude"],
                "distance_km": c["distance_km"],
                "chosen": c["hospital"]["id"] == referral.hospital_id,
            }
            for c in candidates
            if c["hospital"]["latitude"] is not None
        ],
        "tiles": settings.REFERRAL_MAP_TILE_URL,
        "zoom_in": _("Zoom in"),
        "zoom_out": _("Zoom out"),
    }
    can_send = is_worker and (
        referral.status
        in (ReferralStatus.PROPOSED, ReferralStatus.DECLINED, ReferralStatus.NO_SHOW)
        or (referral.status == ReferralStatus.SENT and referral.escalation_exhausted)
    )
    return render(
        request,
        "referrals/detail.html",
        {
            "referral": referral,
            "screening": screening,
            "patient": screening.patient,
            "findings": [(f, CLASS_NAMES[f]) for f in screening.findings or [] if f in CLASS_NAMES],
            "triage_reasons": [
                triage_reason_text(r) for r in screening.reasons or [] if isinstance(r, dict | str)
            ],
            "images": list(screening.images.all()) if can_see_images else [],
            "results": list(screening.results.all()) if can_see_images else [],
            "events": selectors.referral_events(referral=referral),
            # "AI result, confirmed by grader X" / "changed by grader X": both roles see it.
            "grader_verdict": grader_verdict(screening),
            "candidates": candidates,
            "map_data": map_data,
            "is_hospital": bool(is_hospital),
            "is_worker": is_worker,
            "can_send": can_send,
            "can_cancel": is_worker
            and referral.status
            in (
                ReferralStatus.PROPOSED,
                ReferralStatus.SENT,
                ReferralStatus.DECLINED,
                ReferralStatus.NO_SHOW,
                ReferralStatus.ACCEPTED,
            ),
            "S": ReferralStatus,
        },
        status=status,
    )


def _act(
    request: AuthenticatedRequest,
    referral_id: int,
    action: Callable[[Referral], Referral | None],
    done: Callable[[Referral], str] = lambda referral: _("Saved."),
) -> HttpResponse:
    try:
        referral = selectors.referral_get_for_user(user=request.user, referral_id=referral_id)
    except NotFound:
        raise Http404 from None
    try:
        result = action(referral)
    except ServiceError as exc:
        messages.error(request, exc.message)
        referral.refresh_from_db()
        return render_detail(request, referral, status=exc.status_code)
    messages.success(request, done(result if result is not None else referral))
    return redirect("referrals:detail", referral_id=referral.pk)


def _sent_message(referral: Referral) -> str:
    # After sending, the health worker's question is "what now?": say where it went and when
    # the next hospital is asked if this one stays silent.
    return _(
        "Referral sent to %(hospital)s. Their answer will show here; without an answer within "
        "%(hours)s hours, the next hospital on the list is asked."
    ) % {
        "hospital": referral.hospital.name if referral.hospital is not None else "",
        "hours": int(services.escalate_after_hours(referral.urgency)),
    }


@require_POST
@login_required
def referral_send(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    return _act(
        request,
        referral_id,
        lambda r: services.referral_send(
            user=request.user,
            screening_id=r.screening_id,
            hospital_id=request.POST.get("hospital"),
            note=request.POST.get("note", ""),
        ),
        done=_sent_message,
    )


@require_POST
@login_required
def referral_accept(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    return _act(
        request,
        referral_id,
        lambda r: services.referral_accept(
            user=request.user,
            referral_id=r.pk,
            appointment_at=request.POST.get("appointment_at"),
            note=request.POST.get("note", ""),
        ),
    )


@require_POST
@login_required
def referral_decline(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    return _act(
        request,
        referral_id,
        lambda r: services.referral_decline(
            user=request.user,
            referral_id=r.pk,
            reason=request.POST.get("reason"),
        ),
    )


@require_POST
@login_required
def referral_attended(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    return _act(
        request,
        referral_id,
        lambda r: services.referral_mark_attended(user=request.user, referral_id=r.pk),
    )


@require_POST
@login_required
def referral_no_show(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    return _act(
        request,
        referral_id,
        lambda r: services.referral_mark_no_show(user=request.user, referral_id=r.pk),
    )


@require_POST
@login_required
def referral_complete(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    return _act(
        request,
        referral_id,
        lambda r: services.referral_complete(
            user=request.user,
            referral_id=r.pk,
            diagnosis=request.POST.get("diagnosis"),
            notes=request.POST.get("notes", ""),
        ),
    )


@require_POST
@login_required
def referral_cancel(request: AuthenticatedRequest, referral_id: int) -> HttpResponse:
    return _act(
        request,
        referral_id,
        lambda r: services.referral_cancel(
            user=request.user, referral_id=r.pk, reason=request.POST.get("reason", "")
        ),
    )
