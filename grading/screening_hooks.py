"""Grading's part in screening's pages and access rules, registered from ``GradingConfig.ready``
through ``screening.extensions`` (screening never imports grading)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Role
from grading.models import CaseStage
from grading.selectors import case_for_screening, grader_can_view_screening
from screening import extensions
from screening.models import CLASS_NAMES, ResultSource, Screening
from screening.triage import next_step_text


def _changed(screening: Screening) -> bool:
    return screening.final_triage != screening.triage or set(screening.final_findings) != set(
        screening.findings
    )


def grader_name(user: Any) -> str:
    return (user.get_full_name() or user.username) if user is not None else ""


def grading_panel_context(*, request: HttpRequest | None, screening: Screening) -> dict[str, Any]:
    """What a person made of the AI's result: awaiting a read, confirmed by grader X, or changed
    by grader X (with the new next step). Nothing for a screening no one was asked to read.
    One query (the case, its final read and grader)."""
    case = case_for_screening(screening=screening)
    if case is None:
        return {"case": None}
    final = screening.final_source == ResultSource.GRADER
    grader = case.final_read.grader if case.final_read is not None else None
    return {
        "case": case,
        "awaiting": case.stage != CaseStage.FINAL,
        "final": final,
        "changed": final and _changed(screening),
        "grader": grader_name(grader),
        "final_triage": screening.get_final_triage_display() if final else "",
        "final_triage_code": screening.final_triage,
        "final_findings": [str(CLASS_NAMES.get(c, c)) for c in screening.final_findings],
        "next_step": next_step_text(screening.final_triage) if final else "",
        "note": case.final_read.note if case.final_read is not None else "",
    }


def grading_badge_context(*, request: HttpRequest | None, screening: Screening) -> dict[str, Any]:
    """Reads only the screening's own columns: no query, whatever the length of the worklist."""
    final = screening.final_source == ResultSource.GRADER
    return {"final": final, "changed": final and _changed(screening), "screening": screening}


def register() -> None:
    extensions.register_viewer(role=Role.GRADER, check=grader_can_view_screening, key="grading")
    extensions.register_panel(
        extensions.Panel(
            key="grading",
            template_name="grading/_panel.html",
            context=grading_panel_context,
            order=5,
        )
    )
    extensions.register_worklist_badge(
        extensions.WorklistBadge(
            key="grading",
            template_name="grading/_badge.html",
            context=grading_badge_context,
            order=5,
        )
    )
