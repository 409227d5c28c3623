"""Referral API: one view per use case, each calling one selector or service."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.pagination import Pagination
from config.renderers import FHIR_RENDERERS, fhir_schema_responses
from config.schema import error_response
from config.serializers import StrictSerializer
from referrals import selectors, services
from referrals.fhir import referral_fhir_bundle
from referrals.presenters import candidate_dict, referral_dict

SCREENING_NOT_FOUND = {404: error_response("No such screening in your organisation")}
CONFLICT = {
    409: error_response("The referral changed meanwhile (someone else acted first)"),
}


class HospitalOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    name_en = serializers.CharField()
    address = serializers.CharField()
    phone = serializers.CharField()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    is_partner = serializers.BooleanField()
    open_slots = serializers.IntegerField(required=False)
    typical_wait_days = serializers.IntegerField(required=False)


class CandidateOutSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    hospital = HospitalOutSerializer()
    distance_km = serializers.FloatField()
    specialties = serializers.ListField(child=serializers.CharField())
    score = serializers.FloatField()
    reasons = serializers.ListField(child=serializers.CharField())


class OriginSerializer(serializers.Serializer):
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    source = serializers.CharField()


class CandidatesOutSerializer(serializers.Serializer):
    radius_km = serializers.FloatField()
    origin = OriginSerializer()
    required_specialties = serializers.ListField(child=serializers.CharField())
    urgent = serializers.BooleanField()
    candidates = CandidateOutSerializer(many=True)


class EventOutSerializer(serializers.Serializer):
    kind = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    hospital = serializers.IntegerField(allow_null=True)
    actor = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class ReferralOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    screening = serializers.IntegerField()
    patient = serializers.DictField()
    status = serializers.CharField()
    status_display = serializers.CharField()
    urgency = serializers.CharField()
    hospital = HospitalOutSerializer(allow_null=True)
    required_specialties = serializers.ListField(child=serializers.CharField())
    findings = serializers.ListField(child=serializers.CharField())
    triage_reasons = serializers.ListField(
        child=serializers.DictField(),
        help_text="The screening's triage reasons: {code, eye?, class?, ...} and a sentence, text.",
    )
    appointment_at = serializers.DateTimeField(allow_null=True)
    decline_reason = serializers.CharField()
    diagnosis = serializers.CharField()
    outcome_notes = serializers.CharField()
    radius_km = serializers.FloatField(allow_null=True)
    proposal_note = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    responded_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    candidates = CandidateOutSerializer(many=True, required=False)
    events = EventOutSerializer(many=True, required=False)


class ReferralPageSerializer(serializers.Serializer):
    """LimitOffsetPagination's envelope around the list (the schema said a bare array)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ReferralOutSerializer(many=True)


class CandidatesApi(APIView):
    class InputSerializer(serializers.Serializer):
        screening = serializers.IntegerField(min_value=1, max_value=2**62)
        # Strings so the selector can reject NaN/Infinity/out-of-range with one clear message.
        latitude = serializers.CharField(required=False, max_length=40)
        longitude = serializers.CharField(required=False, max_length=40)
        specialties = serializers.CharField(required=False, max_length=400)
        k = serializers.IntegerField(required=False, min_value=1, max_value=50, default=5)

    @extend_schema(
        operation_id="referrals_candidates",
        parameters=[
            OpenApiParameter("screening", int, required=True),
            OpenApiParameter("latitude", float, description="Override the origin (with longitude)"),
            OpenApiParameter("longitude", float),
            OpenApiParameter("specialties", str, description="Comma-separated specialty codes"),
            OpenApiParameter("k", int, description="How many candidates (1-50, default 5)"),
        ],
        responses={200: CandidatesOutSerializer, **SCREENING_NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result, source = selectors.referral_candidates_for_screening(
            user=request.user,
            screening_id=v["screening"],
            latitude=v.get("latitude"),
            longitude=v.get("longitude"),
            specialties=v.get("specialties"),
            k=v["k"],
        )
        return Response(
            {
                "radius_km": result.radius_km,
                "origin": {
                    "latitude": result.origin[0],
                    "longitude": result.origin[1],
                    "source": source,
                },
                "required_specialties": result.required,
                "urgent": result.urgent,
                "candidates": [
                    candidate_dict(c, rank=i + 1) for i, c in enumerate(result.candidates)
                ],
            }
        )


class ReferralListCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        screening = serializers.IntegerField(min_value=1, max_value=2**62)
        hospital = serializers.IntegerField(min_value=1, max_value=2**62)
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    class FilterSerializer(serializers.Serializer):
        status = serializers.CharField(required=False, max_length=20)
        screening = serializers.IntegerField(required=False, min_value=1, max_value=2**62)

    @extend_schema(
        operation_id="referrals_list",
        parameters=[
            OpenApiParameter("status", str),
            OpenApiParameter("screening", int),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses={200: ReferralPageSerializer},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = selectors.referrals_for_user(user=request.user).order_by("-created_at", "-id")
        if "status" in filters.validated_data:
            qs = qs.filter(status=filters.validated_data["status"])
        if "screening" in filters.validated_data:
            qs = qs.filter(screening_id=filters.validated_data["screening"])
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([referral_dict(r, detail=False) for r in page])

    @extend_schema(
        operation_id="referrals_send",
        request=InputSerializer,
        responses={
            201: ReferralOutSerializer,
            404: error_response("No such screening or hospital in your organisation"),
            **CONFLICT,
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        referral = services.referral_send(
            user=request.user,
            screening_id=data.validated_data["screening"],
            hospital_id=data.validated_data["hospital"],
            note=data.validated_data.get("note", ""),
        )
        return Response(referral_dict(referral, detail=True), status=status.HTTP_201_CREATED)


class ReferralDetailApi(APIView):
    @extend_schema(
        operation_id="referrals_retrieve",
        responses={200: ReferralOutSerializer},
    )
    def get(self, request: Request, referral_id: int) -> Response:
        referral = selectors.referral_get_for_user(user=request.user, referral_id=referral_id)
        return Response(referral_dict(referral, detail=True))


class ReferralFhirApi(APIView):
    renderer_classes = FHIR_RENDERERS

    @extend_schema(
        operation_id="referrals_fhir",
        description="The referral as a FHIR R4B Bundle (collection) of a ServiceRequest and a Task.",
        responses=fhir_schema_responses(
            OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR Bundle"), {}
        ),
    )
    def get(self, request: Request, referral_id: int) -> Response:
        referral = selectors.referral_get_for_user(user=request.user, referral_id=referral_id)
        return Response(referral_fhir_bundle(referral))


class _TransitionApi(APIView):
    """POST one lifecycle step; 409 when someone else moved the referral first."""

    InputSerializer: type[serializers.Serializer] = StrictSerializer

    def act(self, request: Request, referral_id: int, data: dict):
        raise NotImplementedError

    def post(self, request: Request, referral_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        referral = self.act(request, referral_id, data.validated_data)
        return Response(referral_dict(referral, detail=True))


TRANSITION_RESPONSES = {200: ReferralOutSerializer, **CONFLICT}


class ReferralAcceptApi(_TransitionApi):
    class InputSerializer(StrictSerializer):
        appointment_at = serializers.DateTimeField()
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(
        operation_id="referrals_accept", request=InputSerializer, responses=TRANSITION_RESPONSES
    )
    def post(self, request: Request, referral_id: int) -> Response:
        return super().post(request, referral_id)

    def act(self, request, referral_id, data):
        return services.referral_accept(
            user=request.user,
            referral_id=referral_id,
            appointment_at=data["appointment_at"],
            note=data.get("note", ""),
        )


class ReferralDeclineApi(_TransitionApi):
    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        operation_id="referrals_decline", request=InputSerializer, responses=TRANSITION_RESPONSES
    )
    def post(self, request: Request, referral_id: int) -> Response:
        return super().post(request, referral_id)

    def act(self, request, referral_id, data):
        return services.referral_decline(
            user=request.user, referral_id=referral_id, reason=data["reason"]
        )


class NoteSerializer(StrictSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ReferralAttendedApi(_TransitionApi):
    InputSerializer = NoteSerializer

    @extend_schema(
        operation_id="referrals_attended", request=NoteSerializer, responses=TRANSITION_RESPONSES
    )
    def post(self, request: Request, referral_id: int) -> Response:
        return super().post(request, referral_id)

    def act(self, request, referral_id, data):
        return services.referral_mark_attended(
            user=request.user, referral_id=referral_id, note=data.get("note", "")
        )


class ReferralNoShowApi(_TransitionApi):
    InputSerializer = NoteSerializer

    @extend_schema(
        operation_id="referrals_no_show", request=NoteSerializer, responses=TRANSITION_RESPONSES
    )
    def post(self, request: Request, referral_id: int) -> Response:
        return super().post(request, referral_id)

    def act(self, request, referral_id, data):
        return services.referral_mark_no_show(
            user=request.user, referral_id=referral_id, note=data.get("note", "")
        )


class ReferralCompleteApi(_TransitionApi):
    class InputSerializer(StrictSerializer):
        diagnosis = serializers.CharField(max_length=2000)
        notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(
        operation_id="referrals_complete", request=InputSerializer, responses=TRANSITION_RESPONSES
    )
    def post(self, request: Request, referral_id: int) -> Response:
        return super().post(request, referral_id)

    def act(self, request, referral_id, data):
        return services.referral_complete(
            user=request.user,
            referral_id=referral_id,
            diagnosis=data["diagnosis"],
            notes=data.get("notes", ""),
        )


class ReferralCancelApi(_TransitionApi):
    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(
        operation_id="referrals_cancel", request=InputSerializer, responses=TRANSITION_RESPONSES
    )
    def post(self, request: Request, referral_id: int) -> Response:
        return super().post(request, referral_id)

    def act(self, request, referral_id, data):
        return services.referral_cancel(
            user=request.user, referral_id=referral_id, reason=data.get("reason", "")
        )
