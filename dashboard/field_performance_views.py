"""The field-performance pages: the AI against the final human read, its alerts, and the graded
set's export. Access as for the dashboard (platform admins, DashboardAccess members for their
regions; everyone else 403); the filters are the dashboard's (range, region, site), with a year
by default: the figures need more graded screenings than a quarter holds."""

from __future__ import annotations

import csv
import datetime as dt
import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from config.errors import InvalidInput, NotFound
from config.http import AuthenticatedRequest
from dashboard import field_performance as fp
from dashboard import field_performance_export as export
from dashboard import field_performance_presenters as presenters
from dashboard.filters import filters_parse
from dashboard.models import SiteAgreementAlert
from dashboard.presenters import csv_safe
from dashboard.scope import DashboardFilters, DashboardScope
from dashboard.selectors import dashboard_scope, sites_for_scope
from dashboard.views import ExportRequest
from screening.models import Site

DEFAULT_DAYS = 365


def _params(request: AuthenticatedRequest) -> QueryDict:
    """The query with a year's range when no date is given."""
    params = request.GET.copy()
    if not params.get("date_from") and not params.get("date_to"):
        params["date_from"] = (
            timezone.localdate() - dt.timedelta(days=DEFAULT_DAYS - 1)
        ).isoformat()
    return params


def _load(
    request: AuthenticatedRequest,
) -> tuple[DashboardScope, DashboardFilters, dict[int, Site]] | HttpResponse:
    scope = dashboard_scope(user=request.user)
    if scope is None:
        return render(request, "dashboard/forbidden.html", status=403)
    sites = {s.pk: s for s in sites_for_scope(scope=scope)}
    try:
        filters = filters_parse(params=_params(request), scope=scope)
    except (InvalidInput, NotFound) as exc:
        context = {
            **_form_context(request, scope, sites),
            "error": exc.message,
            "error_field": exc.field,
        }
        status = 404 if isinstance(exc, NotFound) else 400
        return render(request, "dashboard/field_performance.html", context, status=status)
    return scope, filters, sites


def _form_context(
    request: AuthenticatedRequest, scope: DashboardScope, sites: dict[int, Site]
) -> dict:
    regions = sorted({s.region for s in sites.values()} | set(scope.regions or ()))
    return {"sites": list(sites.values()), "regions": regions, "params": request.GET}


def _alerts(scope: DashboardScope, sites: dict[int, Site]) -> list[dict]:
    below = fp.sites_below_threshold(fp.recent_agreement(scope=scope))
    open_alerts = list(
        SiteAgreementAlert.objects.filter(
            resolved_at__isnull=True, site_id__in=[a.site_id for a in below]
        )
    )
    return presenters.alert_rows(below=below, sites=sites, open_alerts=open_alerts)


@login_required
@require_GET
def field_performance(request: AuthenticatedRequest) -> HttpResponse:
    loaded = _load(request)
    if isinstance(loaded, HttpResponse):
        return loaded
    scope, filters, sites = loaded
    names = {pk: presenters.site_label(s) for pk, s in sites.items()}
    data = fp.field_performance_data(scope=scope, filters=filters, site_names=names)
    context = {
        **_form_context(request, scope, sites),
        **presenters.page_context(data, sites=sites, alerts=_alerts(scope, sites)),
        "scope": scope,
        "filters": filters,
        "export_query": urlencode(filters.as_query()),
    }
    return render(request, "dashboard/field_performance.html", context)


@login_required
@require_GET
def field_performance_summary(request: AuthenticatedRequest) -> HttpResponse:
    """The agreement figures on the dashboard's own page, fetched by the page after it loads
    (htmx), so that the dashboard's fixed query count does not grow. Same filters."""
    loaded = _load(request)
    if isinstance(loaded, HttpResponse):
        # The fragment replaces nothing on an error: the page keeps its plain link.
        return HttpResponse(status=loaded.status_code)
    scope, filters, sites = loaded
    names = {pk: presenters.site_label(s) for pk, s in sites.items()}
    data = fp.field_performance_data(scope=scope, filters=filters, site_names=names)
    context = {
        **presenters.page_context(data, sites=sites, alerts=_alerts(scope, sites)),
        "filters": filters,
        "export_query": urlencode(filters.as_query()),
    }
    return render(request, "dashboard/field_performance_summary.html", context)


def _records(request: ExportRequest) -> tuple[DashboardFilters, list[dict]] | HttpResponse:
    loaded = _load(request)
    if isinstance(loaded, HttpResponse):
        return loaded
    scope, filters, _sites = loaded
    records = export.graded_set(
        scope=scope,
        filters=filters,
        image_url=lambda pk: request.build_absolute_uri(reverse("screening:image_file", args=[pk])),
    )
    # The audit row says what left the platform: the filters and how many screenings (the row
    # keeps at most 100 ids, too few for a year's graded set; the filters and the time of the
    # request select it).
    request.audit_object_ids = [f"{k}={v}" for k, v in filters.as_query().items()] + [
        f"screenings={len(records)}"
    ]
    return filters, records


def _filename(filters: DashboardFilters, ext: str) -> str:
    return f"eyebridge-graded-set-{filters.date_from:%Y%m%d}-{filters.date_to:%Y%m%d}.{ext}"


@login_required
@require_GET
def field_performance_export_csv(request: ExportRequest) -> HttpResponse:
    """The graded set as CSV. Audited as an export (``dashboard:*export*``): keep the name."""
    loaded = _records(request)
    if isinstance(loaded, HttpResponse):
        return loaded
    filters, records = loaded
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(filters, "csv")}"'
    response["Cache-Control"] = "no-store"
    response.write("\ufeff")  # Excel reads the Korean site names as UTF-8
    writer = csv.writer(response)
    for row in export.csv_rows(records):
        writer.writerow([csv_safe(cell) for cell in row])
    return response


@login_required
@require_GET
def field_performance_export_json(request: ExportRequest) -> HttpResponse:
    """The graded set as JSON (eyes nested). Audited as an export: keep the name."""
    loaded = _records(request)
    if isinstance(loaded, HttpResponse):
        return loaded
    filters, records = loaded
    body = {
        "format": export.FORMAT,
        "generated_at": timezone.localtime().isoformat(),
        "filters": filters.as_query(),
        "count": len(records),
        "screenings": records,
    }
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, indent=1), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename(filters, "json")}"'
    response["Cache-Control"] = "no-store"
    return response
