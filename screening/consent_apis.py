"""Consent API: withdraw a patient's consent, erase a patient's record (screening.consent)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import InvalidInput
from config.schema import error_response
from config.serializers import StrictSerializer
from screening import consent, selectors
from screening.apis import PatientOutput


class PatientConsentWithdrawApi(APIView):
    class InputSerializer(StrictSerializer):
        confirm = serializers.BooleanField(
            help_text="true: the patient withdraws consent (the step stops all processing)."
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: PatientOutput,
            409: error_response("The patient already withdrew consent (`already_withdrawn`)"),
        },
        description="The patient withdraws consent: their screenings waiting for the model are "
        "stopped, no new screening can be submitted and no SMS is sent to them. Audited.",
    )
    def post(self, request: Request, patient_id: int) -> Response:
        # 404 before 400: another organisation's patient is not found, whatever the body says.
        selectors.patient_get(user=request.user, patient_id=patient_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data["confirm"]:
            raise InvalidInput(
                _("Send confirm: true to withdraw the patient's consent."),
                code="confirm_required",
                field="confirm",
            )
        patient = consent.patient_consent_withdraw(
            user=request.user, patient_id=patient_id, request=request
        )
        return Response(PatientOutput(patient).data)


class PatientEraseApi(APIView):
    class InputSerializer(StrictSerializer):
        confirm = serializers.CharField(
            max_length=20, help_text="The patient code, repeated: erasure cannot be undone."
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: PatientOutput,
            400: error_response("`confirm` is not the patient code (`confirm_mismatch`)"),
            403: error_response("Only an administrator can erase a record"),
            409: error_response("Already erased (`already_erased`)"),
        },
        description="Pseudonymise the patient on their request (administrators): photos and "
        "heatmaps deleted, identifying fields cleared, consent withdrawn. Results, aggregates "
        "and the audit trail stay. Audited.",
    )
    def post(self, request: Request, patient_id: int) -> Response:
        # 404 before 403 before 400: another organisation's patient is not found, and only an
        # administrator gets as far as the body.
        selectors.patient_get(user=request.user, patient_id=patient_id)
        consent.erase_require_admin(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        patient = consent.patient_erase(
            user=request.user,
            patient_id=patient_id,
            confirm=data.validated_data["confirm"],
            request=request,
        )
        return Response(PatientOutput(patient).data)
