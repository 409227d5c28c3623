"""The graded set as data for the next model version: one record per graded screening, with its
photos by reference (ids, URLs, content hashes: never the bytes), the labels (the final human read
per eye) and the model's outputs (probabilities per class, findings, model version, triage).

The same records feed the CSV (one row per screening, the eyes side by side) and the JSON (eyes
nested). Patients appear by pseudonym only: a training split must keep a patient's screenings on
one side, and the name is no use to a model. Four queries whatever the number of screenings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.utils import timezone

from dashboard.field_performance import camera_expression, case_weight, graded_cases
from dashboard.scope import DashboardFilters, DashboardScope
from grading.models import EyeRead
from screening.models import CLASS_CODES, Eye, EyeResult, ScreeningImage

EYES = (Eye.LEFT, Eye.RIGHT)
# Version of the record layout below, for the tools that read the export.
FORMAT = "eyebridge-graded-set/1"


def graded_set(
    *, scope: DashboardScope, filters: DashboardFilters, image_url: Callable[[int], str]
) -> list[dict[str, Any]]:
    """The graded screenings of the filters within the scope, oldest first. ``image_url`` turns a
    photo's id into its URL (the view makes it absolute)."""
    cases = graded_cases(scope=scope, filters=filters)
    rows = list(
        cases.order_by("screening__created_at", "screening_id")
        .annotate(camera=camera_expression())
        .values(
            "screening_id",
            "screening__created_at",
            "screening__site_id",
            "screening__site__name",
            "screening__site__region",
            "screening__patient__pseudonym",
            "screening__model_version",
            "screening__triage",
            "screening__findings",
            "screening__final_triage",
            "screening__final_findings",
            "ai_triage",
            "ai_refer",
            "final_refer",
            "reason",
            "sample_rate",
            "closed_at",
            "final_read_id",
            "final_read__role",
            "camera",
        )
    )
    ids = [r["screening_id"] for r in rows]
    images: dict[tuple[int, str], dict] = {}
    for image_row in ScreeningImage.objects.filter(screening_id__in=ids).values(
        "id", "screening_id", "eye", "sha256", "width", "height", "gradable"
    ):
        images[(image_row["screening_id"], image_row["eye"])] = dict(image_row)
    results: dict[tuple[int, str], dict] = {}
    for result_row in EyeResult.objects.filter(screening_id__in=ids).values(
        "screening_id", "eye", "probabilities", "findings", "model_version"
    ):
        results[(result_row["screening_id"], result_row["eye"])] = dict(result_row)
    labels: dict[tuple[int, str], dict] = {}
    read_ids = [r["final_read_id"] for r in rows]
    for eye_read in EyeRead.objects.filter(read_id__in=read_ids).values(
        "read__case__screening_id", "eye", "gradable", "findings", "dr_grade"
    ):
        labels[(eye_read["read__case__screening_id"], eye_read["eye"])] = dict(eye_read)

    records = []
    for r in rows:
        sid = r["screening_id"]
        eyes = []
        for eye in EYES:
            image, result, label = (
                images.get((sid, eye)),
                results.get((sid, eye)),
                labels.get((sid, eye)),
            )
            if image is None and result is None and label is None:
                continue
            eyes.append(
                {
                    "eye": str(eye),
                    "image": None
                    if image is None
                    else {
                        "id": image["id"],
                        "url": image_url(image["id"]),
                        "sha256": image["sha256"],
                        "width": image["width"],
                        "height": image["height"],
                        "quality_gate_gradable": image["gradable"],
                    },
                    "ai": None
                    if result is None
                    else {
                        "probabilities": {
                            c: result["probabilities"].get(c)
                            for c in CLASS_CODES
                            if isinstance(result["probabilities"], dict)
                        },
                        "findings": list(result["findings"] or []),
                        "model_version": result["model_version"],
                    },
                    "label": None
                    if label is None
                    else {
                        "gradable": label["gradable"],
                        "findings": list(label["findings"] or []),
                        "dr_grade": label["dr_grade"] or None,
                    },
                }
            )
        records.append(
            {
                "screening_id": sid,
                "created_at": timezone.localtime(r["screening__created_at"]).isoformat(),
                "site_id": r["screening__site_id"],
                "site": r["screening__site__name"],
                "region": r["screening__site__region"],
                "patient": r["screening__patient__pseudonym"],
                "camera": r["camera"] or None,
                "model_version": r["screening__model_version"],
                "ai_triage": r["ai_triage"],
                "ai_refer": r["ai_refer"],
                "ai_findings": list(r["screening__findings"] or []),
                "final_triage": r["screening__final_triage"],
                "final_refer": r["final_refer"],
                "final_findings": list(r["screening__final_findings"] or []),
                "final_read_role": r["final_read__role"],
                "graded_at": timezone.localtime(r["closed_at"]).isoformat(),
                "reason": r["reason"],
                "sample_rate": r["sample_rate"],
                "weight": case_weight(r["reason"], r["sample_rate"]),
                "eyes": eyes,
            }
        )
    return records


def _joined(values: list[str] | None) -> str:
    return ";".join(values or [])


def csv_header() -> list[str]:
    head = [
        "screening_id",
        "created_at",
        "site_id",
        "site",
        "region",
        "patient",
        "camera",
        "model_version",
        "ai_triage",
        "ai_refer",
        "ai_findings",
        "final_triage",
        "final_refer",
        "final_findings",
        "final_read_role",
        "graded_at",
        "reason",
        "sample_rate",
        "weight",
    ]
    for eye in EYES:
        head += [
            f"{eye}_image_id",
            f"{eye}_image_url",
            f"{eye}_image_sha256",
            f"{eye}_image_width",
            f"{eye}_image_height",
            f"{eye}_label_gradable",
            f"{eye}_label_findings",
            f"{eye}_label_dr_grade",
            f"{eye}_ai_findings",
            *(f"{eye}_ai_p_{c}" for c in CLASS_CODES),
        ]
    return head


def _flag(value: bool | None) -> str:
    return "" if value is None else ("1" if value else "0")


def csv_rows(records: list[dict[str, Any]]) -> Iterator[list[Any]]:
    """The header, then one row per screening: findings as ``;``-joined class letters, booleans
    as 1/0, a missing value (no photo of that eye) empty."""
    yield csv_header()
    for rec in records:
        row: list[Any] = [
            rec["screening_id"],
            rec["created_at"],
            rec["site_id"],
            rec["site"],
            rec["region"],
            rec["patient"],
            rec["camera"] or "",
            rec["model_version"],
            rec["ai_triage"],
            _flag(rec["ai_refer"]),
            _joined(rec["ai_findings"]),
            rec["final_triage"],
            _flag(rec["final_refer"]),
            _joined(rec["final_findings"]),
            rec["final_read_role"],
            rec["graded_at"],
            rec["reason"],
            "" if rec["sample_rate"] is None else rec["sample_rate"],
            rec["weight"],
        ]
        by_eye = {e["eye"]: e for e in rec["eyes"]}
        for eye in EYES:
            e = by_eye.get(str(eye), {})
            image, ai, label = e.get("image") or {}, e.get("ai") or {}, e.get("label") or {}
            probabilities = ai.get("probabilities") or {}
            row += [
                image.get("id", ""),
                image.get("url", ""),
                image.get("sha256", ""),
                image.get("width", ""),
                image.get("height", ""),
                _flag(label.get("gradable")),
                _joined(label.get("findings")),
                label.get("dr_grade") or "",
                _joined(ai.get("findings")) if ai else "",
                *("" if probabilities.get(c) is None else probabilities[c] for c in CLASS_CODES),
            ]
        yield row
