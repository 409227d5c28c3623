"""Grading API: the reading queue, a case, a read, the FHIR export. One view per use case,
nested Input/Output serializers, one selector or service call each."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from config.pagination import Pagination
from config.renderers import FHIR_RENDERERS, fhir_schema_responses
from config.schema import error_response
from config.serializers import StrictSerializer
from grading import selectors, services
from grading.models import (
    OPEN_STAGE_CHOICES,
    CaseReason,
    CaseStage,
    DrGrade,
    GraderRead,
    GradingCase,
    ReadRole,
)
from screening.models import CLASS_CODES, Eye, RiskFactor, Triage
from screening.result_of_record import result_of_record
from screening.triage import reason_text


# --- output shapes -----------------------------------------------------------------------------
class GradingPatientOutput(serializers.Serializer):
    id = serializers.IntegerField()
    pseudonym = serializers.CharField()


class GradingCaseSummaryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    screening = serializers.IntegerField()
    patient = GradingPatientOutput()
    site = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=CaseStage.choices)
    reason = serializers.ChoiceField(choices=CaseReason.choices)
    urgent = serializers.BooleanField()
    ai_triage = serializers.ChoiceField(choices=Triage.choices)
    ai_refer = serializers.BooleanField()
    opened_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    overdue = serializers.BooleanField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)


class GradingEyeReadOutput(serializers.Serializer):
    eye = serializers.ChoiceField(choices=Eye.choices)
    gradable = serializers.BooleanField()
    findings = serializers.ListField(child=serializers.CharField())
    dr_grade = serializers.CharField(allow_blank=True)


class GradingReadOutput(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=ReadRole.choices)
    grader = inline_serializer(
        "GradingGrader", {"id": serializers.IntegerField(), "name": serializers.CharField()}
    )
    created_at = serializers.DateTimeField()
    next_step = serializers.ChoiceField(choices=Triage.choices)
    refer = serializers.BooleanField()
    findings = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField(allow_blank=True)
    final = serializers.BooleanField()
    eyes = GradingEyeReadOutput(many=True)


def _summary(case: GradingCase) -> dict[str, Any]:
    screening = case.screening
    return {
        "id": case.pk,
        "screening": case.screening_id,
        "patient": {"id": screening.patient_id, "pseudonym": screening.patient.pseudonym},
        "site": screening.site_id,
        "stage": case.stage,
        "reason": case.reason,
        "urgent": case.urgent,
        "ai_triage": case.ai_triage,
        "ai_refer": case.ai_refer,
        "opened_at": case.opened_at,
        "due_at": case.due_at,
        "overdue": case.is_overdue,
        "escalated_at": case.escalated_at,
        "closed_at": case.closed_at,
    }


def _read(read: GraderRead, *, final_read_id: int | None) -> dict[str, Any]:
    grader = read.grader
    return {
        "id": read.pk,
        "role": read.role,
        "grader": {"id": grader.pk, "name": grader.get_full_name() or grader.username},
        "created_at": read.created_at,
        "next_step": read.next_step,
        "refer": read.refer,
        "findings": read.findings,
        "note": read.note,
        "final": read.pk == final_read_id,
        "eyes": [
            {"eye": e.eye, "gradable": e.gradable, "findings": e.findings, "dr_grade": e.dr_grade}
            for e in read.eyes.all()
        ],
    }


def _file_url(request: Request, name: str, pk: int) -> str:
    return request.build_absolute_uri(reverse(name, args=[pk]))


def _case(case: GradingCase, *, request: Request, user: User) -> dict[str, Any]:
    screening = case.screening
    patient = screening.patient
    results = {r.eye: r for r in screening.results.all()}
    eyes = []
    for image in screening.images.all():
        result = results.get(image.eye)
        eyes.append(
            {
                "eye": image.eye,
                "image": _file_url(request, "screening:image_file", image.pk),
                "width": image.width,
                "height": image.height,
                "gradable": image.gradable,
                "probabilities": result.probabilities if result else None,
                "findings": result.findings if result else [],
                "heatmap": _file_url(request, "screening:heatmap_file", result.pk)
                if result is not None and result.heatmap_path
                else None,
                "heatmap_class": (result.heatmap_class or None) if result else None,
                "model_version": result.model_version if result else None,
            }
        )
    record = result_of_record(screening)
    return {
        **_summary(case),
        "patient": {
            "id": patient.pk,
            "pseudonym": patient.pseudonym,
            "sex": patient.sex,
            "birth_year": patient.birth_date.year,
            "risk_factors": [v for v, _ in RiskFactor.choices if v and getattr(patient, v)],
        },
        "symptoms": screening.symptoms,
        "ai": {
            "triage": screening.triage,
            "findings": screening.findings,
            "reasons": [
                {**r, "text": reason_text(r)} if isinstance(r, dict) else {"text": r}
                for r in screening.reasons
            ],
            "model_version": screening.model_version or None,
        },
        "eyes": eyes,
        "result_of_record": {
            "triage": record.triage,
            "findings": record.findings,
            "source": record.source,
            "at": record.at,
        },
        "reads": [
            _read(r, final_read_id=case.final_read_id)
            for r in selectors.reads_visible_to(user=user, case=case)
        ],
        "earlier_screenings": [
            {
                "id": s.pk,
                "created_at": s.created_at,
                "triage": s.triage,
                "final_triage": s.final_triage or None,
                "images": [
                    {"eye": i.eye, "image": _file_url(request, "screening:image_file", i.pk)}
                    for i in s.images.all()
                ],
            }
            for s in selectors.patient_history(user=user, screening=screening)
        ],
    }


class GradingCaseOutput(GradingCaseSummaryOutput):
    patient = inline_serializer(
        "GradingCasePatient",
        {
            "id": serializers.IntegerField(),
            "pseudonym": serializers.CharField(),
            "sex": serializers.CharField(),
            "birth_year": serializers.IntegerField(),
            "risk_factors": serializers.ListField(child=serializers.CharField()),
        },
    )
    symptoms = serializers.ListField(child=serializers.CharField())
    ai = inline_serializer(
        "GradingAiReading",
        {
            "triage": serializers.ChoiceField(choices=Triage.choices),
            "findings": serializers.ListField(child=serializers.CharField()),
            "reasons": serializers.ListField(child=serializers.DictField()),
            "model_version": serializers.CharField(allow_null=True),
        },
    )
    eyes = serializers.ListField(child=serializers.DictField())
    result_of_record = inline_serializer(
        "GradingResultOfRecord",
        {
            "triage": serializers.ChoiceField(choices=Triage.choices),
            "findings": serializers.ListField(child=serializers.CharField()),
            "source": serializers.CharField(),
            "at": serializers.DateTimeField(allow_null=True),
        },
    )
    reads = GradingReadOutput(many=True)
    earlier_screenings = serializers.ListField(child=serializers.DictField())


GradingQueuePage = inline_serializer(
    "GradingQueuePage",
    {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": GradingCaseSummaryOutput(many=True),
    },
)


# --- views -------------------------------------------------------------------------------------
class GradingQueueApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: GradingQueuePage},
        description="The open cases the caller may read next: urgent first, then the oldest. "
        "Cases the caller has read already are left out (another grader reads them next).",
    )
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(
            selectors.grading_queue(user=request.user), request, view=self
        )
        return paginator.get_paginated_response(
            GradingCaseSummaryOutput([_summary(c) for c in page], many=True).data
        )


class GradingCaseApi(APIView):
    @extend_schema(
        responses={200: GradingCaseOutput},
        description="A case: the photos, heatmaps and AI probabilities, the patient's risk "
        "factors and symptoms, earlier screenings, and the reads the caller may see (a second "
        "reader does not see the first read; the arbitrator sees both).",
    )
    def get(self, request: Request, screening_id: int) -> Response:
        case = selectors.case_get(user=request.user, screening_id=screening_id)
        return Response(GradingCaseOutput(_case(case, request=request, user=request.user)).data)


class GradingEyeReadInput(StrictSerializer):
    eye = serializers.ChoiceField(choices=Eye.choices)
    gradable = serializers.BooleanField()
    findings = serializers.ListField(
        child=serializers.ChoiceField(choices=CLASS_CODES),
        required=False,
        default=list,
        max_length=len(CLASS_CODES),
    )
    dr_grade = serializers.ChoiceField(
        choices=DrGrade.choices, required=False, default="", allow_blank=True
    )


class GradingReadCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        eyes = GradingEyeReadInput(many=True, max_length=2, min_length=1)
        next_step = serializers.ChoiceField(choices=Triage.choices)
        note = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
        stage = serializers.ChoiceField(
            choices=OPEN_STAGE_CHOICES,
            required=False,
            help_text="The stage the read was made for (as the case showed it); if the case has "
            "moved on meanwhile, the read is refused with 409 instead of taking the next role.",
        )

    class OutputSerializer(serializers.Serializer):
        read = GradingReadOutput()
        case = GradingCaseSummaryOutput()

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            409: error_response(
                "The case is final, or another grader read it meanwhile (`stage` is where it is "
                "now)"
            ),
        },
        description="Record a read: per photographed eye gradable or not, the findings (the 8 "
        "classes; a DR grade when D is among them), then the next step. The primary read that "
        "agrees with the AI on the refer question is final; one that disagrees goes to a second "
        "grader, and a second read that disagrees with the first goes to arbitration. A grader "
        "never reads the same case twice (403).",
    )
    def post(self, request: Request, screening_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        read = services.grader_read_submit(
            user=request.user,
            screening_id=screening_id,
            data=services.ReadInput(
                eyes=[services.EyeReadInput(**eye) for eye in v["eyes"]],
                next_step=v["next_step"],
                note=v["note"],
            ),
            stage=v.get("stage"),
        )
        case = selectors.case_get(user=request.user, screening_id=screening_id)
        body = {"read": _read(read, final_read_id=case.final_read_id), "case": _summary(case)}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class GradingFhirApi(APIView):
    renderer_classes = FHIR_RENDERERS

    @extend_schema(
        responses=fhir_schema_responses(OpenApiTypes.OBJECT, {}),
        description="FHIR R4B Bundle: the screening's export plus one Observation per grader "
        "read and eye, with `performer` (the grader) and `derivedFrom` (the AI Observations).",
    )
    def get(self, request: Request, screening_id: int) -> Response:
        from grading.fhir import grading_bundle

        case = selectors.case_get(user=request.user, screening_id=screening_id)
        return Response(grading_bundle(case))
