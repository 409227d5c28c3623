"""Screening API: one view per use case, nested input/output serializers, one service call."""

from __future__ import annotations

import copy

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import InvalidInput
from config.pagination import Pagination
from config.renderers import FHIR_RENDERERS, fhir_schema_responses
from config.schema import error_response
from config.serializers import StrictSerializer
from screening import selectors, services
from screening.duplicate_photos import duplicate_photo_warnings
from screening.models import Patient, ResultSource, Screening, Sex, Symptom, Triage
from screening.result_of_record import result_of_record
from screening.triage import next_step_text, reason_text


def page_schema(name: str, results: serializers.Field) -> serializers.Serializer:
    """The OpenAPI shape of a LimitOffsetPagination page."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": results,
        },
    )


def paginated(request: Request, view: APIView, qs, serialize) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(serialize(page))


class PatientOutput(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = [
            "id",
            "pseudonym",
            "name",
            "birth_date",
            "sex",
            "phone",
            "region",
            "address",
            "home_latitude",
            "home_longitude",
            "has_diabetes",
            "has_hypertension",
            "family_history_glaucoma",
            "high_myopia",
            "allergies",
            "created_at",
            "consent_withdrawn_at",
            "erased_at",
        ]
        read_only_fields = ["consent_withdrawn_at", "erased_at"]


class PatientListCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=120)
        birth_date = serializers.DateField()
        sex = serializers.ChoiceField(choices=Sex.choices)
        phone = serializers.RegexField(
            r"^[0-9+\- ]{0,32}$", required=False, default="", allow_blank=True
        )
        region = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
        address = serializers.CharField(
            max_length=300, required=False, default="", allow_blank=True
        )
        home_latitude = serializers.FloatField(
            required=False, allow_null=True, default=None, min_value=-90, max_value=90
        )
        home_longitude = serializers.FloatField(
            required=False, allow_null=True, default=None, min_value=-180, max_value=180
        )
        has_diabetes = serializers.BooleanField(required=False, default=False)
        has_hypertension = serializers.BooleanField(required=False, default=False)
        family_history_glaucoma = serializers.BooleanField(required=False, default=False)
        high_myopia = serializers.BooleanField(required=False, default=False)
        allergies = serializers.CharField(
            max_length=1000, required=False, default="", allow_blank=True
        )
        medical_notes = serializers.CharField(
            max_length=2000, required=False, default="", allow_blank=True
        )
        consent_given = serializers.BooleanField()
        allow_duplicate = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description="Name, patient code or phone")
        ],
        responses={200: page_schema("PatientPage", PatientOutput(many=True))},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params.get("q", "")[:100]
        if "\x00" in query:  # PostgreSQL refuses NUL in a string: answer 400, not a 500
            raise InvalidInput(_("The search must not contain NUL characters."), field="q")
        qs = selectors.patient_search(user=request.user, query=query)
        return paginated(request, self, qs, lambda page: PatientOutput(page, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: PatientOutput,
            409: error_response(
                "Possible duplicate: `duplicates` lists existing records; resend with "
                "allow_duplicate=true"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        allow_duplicate = values.pop("allow_duplicate")
        patient = services.patient_create(
            user=request.user, data=services.PatientInput(**values), allow_duplicate=allow_duplicate
        )
        return Response(PatientOutput(patient).data, status=status.HTTP_201_CREATED)


class PatientDetailApi(APIView):
    class PatchSerializer(StrictSerializer):
        """Only the fields sent are changed; consent, site and patient code cannot be."""

        name = serializers.CharField(max_length=120, required=False)
        birth_date = serializers.DateField(required=False)
        sex = serializers.ChoiceField(choices=Sex.choices, required=False)
        phone = serializers.RegexField(r"^[0-9+\- ]{0,32}$", required=False, allow_blank=True)
        region = serializers.CharField(max_length=100, required=False, allow_blank=True)
        address = serializers.CharField(max_length=300, required=False, allow_blank=True)
        home_latitude = serializers.FloatField(
            required=False, allow_null=True, min_value=-90, max_value=90
        )
        home_longitude = serializers.FloatField(
            required=False, allow_null=True, min_value=-180, max_value=180
        )
        has_diabetes = serializers.BooleanField(required=False)
        has_hypertension = serializers.BooleanField(required=False)
        family_history_glaucoma = serializers.BooleanField(required=False)
        high_myopia = serializers.BooleanField(required=False)
        allergies = serializers.CharField(max_length=1000, required=False, allow_blank=True)
        medical_notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)
        allow_duplicate = serializers.BooleanField(required=False, default=False)

    @extend_schema(responses={200: PatientOutput})
    def get(self, request: Request, patient_id: int) -> Response:
        return Response(
            PatientOutput(selectors.patient_get(user=request.user, patient_id=patient_id)).data
        )

    @extend_schema(
        request=PatchSerializer,
        responses={
            200: PatientOutput,
            409: error_response(
                "Possible duplicate after the change: `duplicates` lists existing records; "
                "resend with allow_duplicate=true"
            ),
        },
        description="Correct a patient's demographics or risk factors at a later visit. Audited; "
        "a change of name, birth date or phone reruns the duplicate check.",
    )
    def patch(self, request: Request, patient_id: int) -> Response:
        # 404 before 400: another organisation's patient is not found, whatever the body says.
        selectors.patient_get(user=request.user, patient_id=patient_id)
        data = self.PatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        allow_duplicate = values.pop("allow_duplicate")
        patient = services.patient_update(
            user=request.user,
            patient_id=patient_id,
            changes=values,
            allow_duplicate=allow_duplicate,
            request=request,
        )
        return Response(PatientOutput(patient).data)


def result_of_record_output(screening: Screening) -> dict | None:
    """The result that counts now (screening.result_of_record): a grader's final read where a
    person has read the photos, else the AI's own (``source`` "ai", nobody named). None while the
    screening has no result (queued, processing, failed). The AI's result stays beside it, in the
    screening's own ``triage`` and ``findings``; ``changed`` says whether the grader departed from
    it. ``final_by`` costs a query unless the caller select_related it (the list does)."""
    if not screening.triage:
        return None
    record = result_of_record(screening)
    by = screening.final_by if record.by_id is not None else None
    return {
        "triage": record.triage,
        "next_step": next_step_text(record.triage),
        "findings": record.findings,
        "source": record.source,
        # A display name, never the account's username alone when it has a name.
        "by": {"id": by.pk, "name": by.get_full_name() or by.get_username()} if by else None,
        "at": record.at.isoformat() if record.at else None,
        "changed": record.source != ResultSource.AI
        and (
            record.triage != screening.triage
            or set(record.findings) != set(screening.findings or [])
        ),
    }


def screening_output(screening: Screening, request: Request) -> dict:
    images = {im.eye: im for im in screening.images.all()}
    results = {r.eye: r for r in screening.results.all()}
    eyes = {}
    for eye in ("left", "right"):
        image, result = images.get(eye), results.get(eye)
        if image is None:
            continue
        eyes[eye] = {
            "image": request.build_absolute_uri(reverse("screening:image_file", args=[image.id])),
            "gradable": image.gradable,
            "quality": result.quality if result is not None and result.quality else image.quality,
            "probabilities": result.probabilities if result else None,
            "top_class": result.top_class if result else None,
            "findings": result.findings if result else [],
            "heatmap": (
                request.build_absolute_uri(reverse("screening:heatmap_file", args=[result.id]))
                if result is not None and result.heatmap_path
                else None
            ),
            # The finding the heatmap explains (heatmaps are made only for eyes with one).
            "heatmap_class": (result.heatmap_class or None) if result is not None else None,
            "model_version": result.model_version if result else None,
        }
    return {
        "id": screening.id,
        "status": screening.status,
        "patient": {"id": screening.patient_id, "pseudonym": screening.patient.pseudonym},
        "site": screening.site_id,
        "created_at": screening.created_at.isoformat(),
        "completed_at": screening.completed_at.isoformat() if screening.completed_at else None,
        "symptoms": screening.symptoms,
        "triage": screening.triage or None,
        "next_step": next_step_text(screening.triage) if screening.triage else None,
        "findings": screening.findings,
        "reasons": [{**r, "text": reason_text(r)} for r in screening.reasons],
        "model_version": screening.model_version or None,
        "eyes": eyes,
        "error": screening.error or None if screening.status == Screening.Status.FAILED else None,
        "result_of_record": result_of_record_output(screening),
    }


ScreeningOutputSchema = inline_serializer(
    "ScreeningOutput",
    {
        "id": serializers.IntegerField(),
        "status": serializers.ChoiceField(choices=Screening.Status.choices),
        "patient": inline_serializer(
            "ScreeningPatient",
            {"id": serializers.IntegerField(), "pseudonym": serializers.CharField()},
        ),
        "site": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "completed_at": serializers.DateTimeField(allow_null=True),
        "symptoms": serializers.ListField(child=serializers.CharField()),
        "triage": serializers.CharField(
            allow_null=True, help_text="The AI's triage (never overwritten by a grader)."
        ),
        "next_step": serializers.CharField(
            allow_null=True, help_text="The AI's next step, in the request's language."
        ),
        "findings": serializers.ListField(
            child=serializers.CharField(), help_text="The AI's findings (class letters)."
        ),
        "reasons": serializers.ListField(child=serializers.DictField()),
        "model_version": serializers.CharField(allow_null=True),
        "eyes": serializers.DictField(child=serializers.DictField()),
        "error": serializers.CharField(allow_null=True),
        "result_of_record": inline_serializer(
            "ScreeningResultOfRecord",
            {
                "triage": serializers.ChoiceField(choices=Triage.choices),
                "next_step": serializers.CharField(),
                "findings": serializers.ListField(child=serializers.CharField()),
                "source": serializers.ChoiceField(
                    choices=ResultSource.choices,
                    help_text="`ai`: the AI's result stands (no person has settled it); "
                    "`grader`: a grader's final read (the one that settled the case, after a "
                    "second read or arbitration where the reads disagreed).",
                ),
                "by": inline_serializer(
                    "ScreeningResultOfRecordBy",
                    {"id": serializers.IntegerField(), "name": serializers.CharField()},
                    allow_null=True,
                    help_text="The grader who settled it; null for the AI's result.",
                ),
                "at": serializers.DateTimeField(
                    allow_null=True,
                    help_text="When it was settled (for the AI's result: when it finished).",
                ),
                "changed": serializers.BooleanField(
                    help_text="True when the grader's triage or findings differ from the AI's."
                ),
            },
            allow_null=True,
            help_text="The result that counts now: a grader's final read, else the AI's. Null "
            "while the screening has no result. The AI's own result stays in `triage`, "
            "`findings` and `eyes`.",
        ),
    },
)


# The upload's answer: the screening plus warnings about a photo that was probably picked by
# mistake (screening.duplicate_photos). A warning never refuses the upload.
ScreeningCreatedSchema = inline_serializer(
    "ScreeningCreated",
    {
        **{name: copy.deepcopy(field) for name, field in ScreeningOutputSchema.fields.items()},
        "warnings": serializers.ListField(
            child=inline_serializer(
                "UploadWarning",
                {
                    "code": serializers.ChoiceField(
                        choices=["same_photo_both_eyes", "photo_used_before"]
                    ),
                    "message": serializers.CharField(),
                    "eye": serializers.CharField(required=False),
                    "screening": serializers.IntegerField(required=False),
                    "patient": serializers.CharField(required=False),
                },
            )
        ),
    },
)


class ScreeningListCreateApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(StrictSerializer):
        patient = serializers.IntegerField(min_value=1)
        left_image = serializers.FileField(required=False, allow_null=True, allow_empty_file=True)
        right_image = serializers.FileField(required=False, allow_null=True, allow_empty_file=True)
        symptoms = serializers.ListField(
            child=serializers.ChoiceField(choices=Symptom.choices),
            required=False,
            default=list,
            max_length=len(Symptom.choices),
        )
        notes = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
        accept_ungradable = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=Screening.Status.values),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={
            200: page_schema("ScreeningPage", serializers.ListField(child=ScreeningOutputSchema))
        },
    )
    def get(self, request: Request) -> Response:
        qs = (
            selectors.screenings_for_user(user=request.user)
            .select_related("final_by")
            .prefetch_related("images", "results")
        )
        status_filter = request.query_params.get("status")
        if status_filter:
            # Only a known status reaches the query (PostgreSQL refuses e.g. `?status=%00`).
            if status_filter not in Screening.Status.values:
                raise InvalidInput(_("Unknown status."), field="status")
            qs = qs.filter(status=status_filter)
        return paginated(
            request, self, qs, lambda page: [screening_output(s, request) for s in page]
        )

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={
            201: ScreeningCreatedSchema,
            404: error_response("No such patient at your site"),
        },
        description="Submit a screening with one or both eyes. Photos are checked inside the request "
        "(JPEG/PNG by content, size, quality gate); a photo that fails returns 400 with per-field "
        "reasons, e.g. `blurred: hold the camera still and retake`. The 201 answer lists "
        "`warnings` (translated) when both eyes are the same picture or a photo is already in an "
        "earlier screening at the site; the upload is kept either way.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            screening = services.screening_submit(
                user=request.user,
                patient_id=v["patient"],
                left_image=v.get("left_image"),
                right_image=v.get("right_image"),
                symptoms=v["symptoms"],
                notes=v["notes"],
                accept_ungradable=v["accept_ungradable"],
            )
        except InvalidInput as exc:
            if "errors" in exc.details:
                return Response(
                    {**exc.details["errors"], "detail": exc.message, "code": exc.code},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            raise
        screening = selectors.screening_get(user=request.user, screening_id=screening.id)
        body = screening_output(screening, request)
        body["warnings"] = duplicate_photo_warnings(screening=screening)
        return Response(body, status=status.HTTP_201_CREATED)


class ScreeningDetailApi(APIView):
    @extend_schema(responses={200: ScreeningOutputSchema})
    def get(self, request: Request, screening_id: int) -> Response:
        screening = selectors.screening_get(user=request.user, screening_id=screening_id)
        return Response(screening_output(screening, request))


class ScreeningFhirApi(APIView):
    renderer_classes = FHIR_RENDERERS

    @extend_schema(
        responses=fhir_schema_responses(OpenApiTypes.OBJECT, {}),
        description="FHIR R4B Bundle: Patient, ImagingStudy, Observations, DiagnosticReport.",
    )
    def get(self, request: Request, screening_id: int) -> Response:
        from screening.fhir import screening_bundle

        screening = selectors.screening_get(user=request.user, screening_id=screening_id)
        return Response(screening_bundle(screening))
