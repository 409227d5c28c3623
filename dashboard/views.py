"""Public-health dashboard pages: parse the filters, call the selector, render. Access: platform
admins see everything, DashboardAccess members their regions, everyone else gets a 403."""

from __future__ import annotations

import csv
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config.errors import InvalidInput, NotFound
from config.http import AuthenticatedRequest
from dashboard import presenters, selectors
from dashboard.filters import filters_parse
from dashboard.recall import recall_context
from dashboard.scope import DashboardScope


class ExportRequest(AuthenticatedRequest):
    """The CSV export's request: accounts.audit's middleware puts ``audit_object_ids`` (what was
    exported) on the request's audit row."""

    audit_object_ids: list[str]


def _form_context(request: HttpRequest, scope: DashboardScope) -> dict:
    sites = list(selectors.sites_for_scope(scope=scope).only("id", "name", "name_en", "region"))
    regions = sorted({s.region for s in sites} | set(scope.regions or ()))
    return {
        "sites": sites,
        "regions": regions,
        "params": request.GET,
        "scope": scope,
    }


def _load(
    request: AuthenticatedRequest,
) -> tuple[DashboardScope, selectors.DashboardData] | HttpResponse:
    """Access check, filters, aggregates: the scope and data, or the 403/400/404 page."""
    scope = selectors.dashboard_scope(user=request.user)
    if scope is None:
        return render(request, "dashboard/forbidden.html", status=403)
    try:
        filters = filters_parse(params=request.GET, scope=scope)
    except (InvalidInput, NotFound) as exc:
        context = {**_form_context(request, scope), "error": exc.message, "error_field": exc.field}
        status = 404 if isinstance(exc, NotFound) else 400
        return render(request, "dashboard/index.html", context, status=status)
    return scope, selectors.dashboard_data(scope=scope, filters=filters)


@login_required
@require_GET
def index(request: AuthenticatedRequest) -> HttpResponse:
    loaded = _load(request)
    if isinstance(loaded, HttpResponse):
        return loaded
    scope, data = loaded
    context = {
        **_form_context(request, scope),
        **presenters.page_context(data),
        "filters": data.filters,
        "export_query": urlencode(data.filters.as_query()),
        **recall_context(scope=scope, filters=data.filters),
    }
    return render(request, "dashboard/index.html", context)


@login_required
@require_GET
def export_csv(request: ExportRequest) -> HttpResponse:
    """The aggregates as CSV. Data leaving the platform: accounts.audit records every request to
    this URL name as an "export" (the ``dashboard:*export*`` rule), so keep the name."""
    loaded = _load(request)
    if isinstance(loaded, HttpResponse):
        return loaded
    _scope, data = loaded
    filters = data.filters
    # The audit row says what left the platform: which range, region and site were exported.
    request.audit_object_ids = [f"{key}={value}" for key, value in filters.as_query().items()]
    name = f"eyebridge-dashboard-{filters.date_from:%Y%m%d}-{filters.date_to:%Y%m%d}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    # A BOM so that Excel (what public-health offices open CSVs with) reads the Korean as UTF-8.
    response.write("\ufeff")
    writer = csv.writer(response)
    for row in presenters.csv_rows(data):
        writer.writerow([presenters.csv_safe(cell) for cell in row])
    return response
