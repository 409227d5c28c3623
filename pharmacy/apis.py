"""REST API of the pharmacy app: staff endpoints (pharmacists, health workers) and kiosk endpoints.

One view per use case, each parsing input with a strict serializer (unknown fields are a 400, so
``"status": "approved"`` cannot be mass-assigned) and calling one service or selector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.idempotency import Replay, idempotency_key, idempotent
from config.renderers import FHIR_RENDERERS, fhir_schema_responses
from config.serializers import StrictSerializer
from pharmacy import codes, selectors, services
from pharmacy.auth import IsKiosk, KioskAuthentication
from pharmacy.models import Medication, Prescription

# --- shared pieces -----------------------------------------------------------------------------


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error statuses of a view, with what each means there. Only the statuses and their
    descriptions count: config.schema.document_errors replaces every 4xx body with the one Error
    schema. The plain object body is a placeholder that keeps two media types of one status
    mergeable (the FHIR export)."""
    text = {
        400: "Malformed input or unknown fields",
        401: "Missing or invalid credentials",
        403: "Authenticated but not allowed (wrong role or credential type)",
        404: "Not found in your organisation",
        409: "Conflict with the current state",
        422: "Well-formed but not acceptable",
        429: "Too many attempts",
    }
    return {s: OpenApiResponse(OpenApiTypes.OBJECT, description=text[s]) for s in statuses}


class StaffApi(APIView):
    """Staff endpoints accept only sessions and tokens: a kiosk credential is refused here."""

    # Token first, as in REST_FRAMEWORK's default: its WWW-Authenticate header makes "not signed
    # in" (or a kiosk credential here) a 401; with Session first DRF would answer 403.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class KioskApi(APIView):
    """Kiosk endpoints accept only kiosk credentials: a staff session or token is refused here."""

    authentication_classes = [KioskAuthentication]
    permission_classes = [IsKiosk]


# --- output serializers ------------------------------------------------------------------------


class MedicationOutput(serializers.ModelSerializer):
    kiosk_dispensable = serializers.BooleanField(read_only=True)
    category = serializers.CharField(source="category.code", read_only=True)

    class Meta:
        model = Medication
        fields = [
            "id",
            "code",
            "name_ko",
            "name_en",
            "ingredient",
            "form",
            "strength",
            "package",
            "category",
            "is_otc",
            "kiosk_dispensable",
            "max_quantity",
        ]


class CounsellingBlock(StrictSerializer):
    dose = serializers.CharField(max_length=1000)
    frequency = serializers.CharField(max_length=1000)
    duration = serializers.CharField(max_length=1000)
    warnings = serializers.CharField(max_length=1000)


class Counselling(StrictSerializer):
    ko = CounsellingBlock()
    en = CounsellingBlock()


class PrescriptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    source = serializers.CharField()
    pharmacy = serializers.CharField(source="pharmacy.name")
    screening_id = serializers.IntegerField()
    triage = serializers.CharField(source="screening.triage")
    symptoms = serializers.ListField(source="screening.symptoms", child=serializers.CharField())
    patient = inline_serializer(
        "PrescriptionPatient",
        {
            "pseudonym": serializers.CharField(),
            "name": serializers.CharField(),
            "birth_year": serializers.IntegerField(),
            "sex": serializers.CharField(),
            "allergies": serializers.CharField(),
        },
        source="patient_summary",
    )
    items = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()
    request_note = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField()
    counselling = serializers.JSONField(
        help_text="{ko: {dose, frequency, duration, warnings}, en: {...}} or null"
    )
    pickup_expires_at = serializers.DateTimeField(allow_null=True)
    dispense_code = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_items(self, obj: Prescription) -> list[dict]:
        return [
            {"medication": MedicationOutput(i.medication).data, "quantity": i.quantity}
            for i in obj.items.all()
        ]

    def get_warnings(self, obj: Prescription) -> list[str]:
        return selectors.prescription_warnings(prescription=obj)

    def get_dispense_code(self, obj: Prescription) -> str | None:
        # Shown while the code can be used; the API's scoping already limits who sees this row.
        code_row = getattr(obj, "dispense_code", None)
        if obj.status != Prescription.Status.APPROVED or code_row is None or code_row.revoked_at:
            return None
        return codes.format_code(codes.code_from_salt(code_row.salt))


def _prescription_data(prescription: Prescription) -> dict:
    patient = prescription.patient
    # Read by PrescriptionOutput.patient (source="patient_summary"); never saved.
    prescription.patient_summary = {  # type: ignore[attr-defined]
        "pseudonym": patient.pseudonym,
        "name": patient.name,
        "birth_year": patient.birth_date.year,
        "sex": patient.sex,
        "allergies": patient.allergies,
    }
    data = PrescriptionOutput(prescription).data
    data["counselling"] = prescription.counselling or None
    return data


class DispenseItemOutput(serializers.Serializer):
    medication_id = serializers.IntegerField()
    code = serializers.CharField()
    name_ko = serializers.CharField()
    name_en = serializers.CharField()
    strength = serializers.CharField()
    slot = serializers.CharField()
    lot_number = serializers.CharField()
    expiry = serializers.DateField()
    quantity = serializers.IntegerField()


# Renders a services.KioskDispense (no docstring: it would become the schema's description).
class DispenseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    prescription_id = serializers.IntegerField()
    items = DispenseItemOutput(many=True)
    counselling = Counselling()
    counselling_confirmed = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


# Every kiosk call answers with a dispense, rendered by this one bound instance: a new serializer
# deep-copies its declared fields, ~0.4 ms of CPU per answer, where rendering with a bound one
# costs ~0.06 ms (measured on a 1- and 2-item dispense).
_DISPENSE_OUTPUT = DispenseOutput()


def _kiosk_answer(dispense: services.KioskDispense) -> dict[str, Any]:
    return _DISPENSE_OUTPUT.to_representation(dispense)


# --- staff endpoints ---------------------------------------------------------------------------


class PrescriptionListApi(StaffApi):
    class FilterSerializer(serializers.Serializer):  # query strings may carry ?format= etc.
        status = serializers.ChoiceField(choices=Prescription.Status.choices, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=200, required=False)
        # Bounded: an offset past PostgreSQL's bigint would be a database error (a 500).
        offset = serializers.IntegerField(min_value=0, max_value=10_000_000, required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: inline_serializer(
                "PrescriptionPage",
                {"count": serializers.IntegerField(), "results": PrescriptionOutput(many=True)},
            ),
            **_errors(400, 401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        qs = selectors.prescriptions_for_user(user=request.user)
        if "status" in params.validated_data:
            qs = qs.filter(status=params.validated_data["status"])
        offset = params.validated_data.get("offset", 0)
        limit = params.validated_data.get("limit", 50)
        page = list(qs[offset : offset + limit])
        return Response({"count": qs.count(), "results": [_prescription_data(p) for p in page]})


class PrescriptionDetailApi(StaffApi):
    @extend_schema(responses={200: PrescriptionOutput, **_errors(401, 403, 404)})
    def get(self, request: Request, prescription_id: int) -> Response:
        prescription = selectors.prescription_get_for_user(
            user=request.user, prescription_id=prescription_id
        )
        return Response(_prescription_data(prescription))


def _reload(request: Request, prescription: Prescription) -> dict:
    return _prescription_data(
        selectors.prescription_get_for_user(user=request.user, prescription_id=prescription.pk)
    )


class PrescriptionApproveApi(StaffApi):
    class InputSerializer(StrictSerializer):
        counselling = Counselling()
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
        acknowledge_warnings = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        request=InputSerializer,
        responses={200: PrescriptionOutput, **_errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, prescription_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prescription = services.prescription_approve(
            user=request.user, prescription_id=prescription_id, **data.validated_data
        )
        return Response(_reload(request, prescription))


class _PrescriptionWithReasonApi(StaffApi):
    """Reject (pharmacist) or cancel (pharmacist or the requesting site): a reason, one service."""

    service: Callable[..., Prescription]

    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=InputSerializer,
        responses={200: PrescriptionOutput, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, prescription_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prescription = type(self).service(
            user=request.user, prescription_id=prescription_id, reason=data.validated_data["reason"]
        )
        return Response(_reload(request, prescription))


class PrescriptionRejectApi(_PrescriptionWithReasonApi):
    service = staticmethod(services.prescription_reject)


class PrescriptionCancelApi(_PrescriptionWithReasonApi):
    service = staticmethod(services.prescription_cancel)


class PrescriptionRequestApi(StaffApi):
    """A health worker requests a formulary item for a patient of their site."""

    class InputSerializer(StrictSerializer):
        screening = serializers.IntegerField(min_value=1)
        medication = serializers.IntegerField(min_value=1)
        quantity = serializers.IntegerField(min_value=1, max_value=100)
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer,
        responses={201: PrescriptionOutput, **_errors(400, 401, 403, 404, 422)},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        prescription = services.prescription_request(
            user=request.user,
            screening_id=v["screening"],
            medication_id=v["medication"],
            quantity=v["quantity"],
            note=v["note"],
        )
        return Response(_reload(request, prescription), status=status.HTTP_201_CREATED)


class PrescriptionFhirApi(StaffApi):
    renderer_classes = FHIR_RENDERERS

    @extend_schema(responses=fhir_schema_responses(OpenApiTypes.OBJECT, _errors(401, 403, 404)))
    def get(self, request: Request, prescription_id: int) -> Response:
        from pharmacy.fhir import prescription_bundle

        prescription = selectors.prescription_get_for_user(
            user=request.user, prescription_id=prescription_id
        )
        # Rendered by the negotiated renderer, so the media type follows the client's Accept.
        bundle = prescription_bundle(prescription=prescription)
        return Response(bundle.model_dump(mode="json", exclude_none=True))


class MedicationListApi(StaffApi):
    @extend_schema(responses={200: MedicationOutput(many=True), **_errors(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(MedicationOutput(selectors.medications_for_request(), many=True).data)


# --- kiosk endpoints ---------------------------------------------------------------------------


class _KioskKeys:
    """Idempotency-Key answers are kept per kiosk (``IdempotencyRecord``): two kiosks may send the
    same key."""

    def begin(
        self, request: Request, *, key: str, method_path: str, fingerprint: str
    ) -> tuple[Any, Replay | None]:
        return services.idempotency_begin(
            kiosk=request.auth, key=key, method_path=method_path, fingerprint=fingerprint
        )

    def finish(self, record: Any, *, status: int, body: Any) -> None:
        services.idempotency_finish(record=record, status=status, body=body)

    def abort(self, record: Any) -> None:
        services.idempotency_abort(record=record)


class KioskHeartbeatApi(KioskApi):
    class InputSerializer(StrictSerializer):
        status = serializers.ChoiceField(
            choices=["ok", "degraded", "error"], required=False, default="ok"
        )
        firmware = serializers.CharField(
            max_length=40, required=False, allow_blank=True, default=""
        )
        temperature_c = serializers.FloatField(
            min_value=-40, max_value=80, required=False, allow_null=True
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "HeartbeatOutput",
                {"kiosk_id": serializers.CharField(), "server_time": serializers.DateTimeField()},
            ),
            **_errors(400, 401, 403),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kiosk = services.kiosk_heartbeat(kiosk=request.auth, info=data.validated_data)
        return Response({"kiosk_id": kiosk.kiosk_id, "server_time": kiosk.last_heartbeat_at})


class KioskDispenseCreateApi(KioskApi):
    """Present a dispense code. 201: the items and slots to release, and the guidance to show.

    Flow: 201 (stock reserved) -> the patient reads and confirms the guidance ->
    POST confirm-counselling/ -> the kiosk releases the items -> POST complete/ (or fail/ on a jam)."""

    class InputSerializer(StrictSerializer):
        code = serializers.CharField(max_length=32)

    @extend_schema(
        request=InputSerializer,
        responses={201: DispenseOutput, **_errors(400, 401, 403, 404, 409, 422, 429)},
    )
    @idempotent(_KioskKeys(), per="release attempt")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispense = services.dispense_reserve(
            kiosk=request.auth,
            code=data.validated_data["code"],
            idempotency_key=idempotency_key(request),
        )
        return Response(_kiosk_answer(dispense), status=status.HTTP_201_CREATED)


class _KioskDispenseActionApi(KioskApi):
    action = ""

    class InputSerializer(StrictSerializer):
        pass

    def run(self, request: Request, dispense_id: int, data: dict) -> services.KioskDispense:
        raise NotImplementedError

    def post(self, request: Request, dispense_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispense = self.run(request, dispense_id, data.validated_data)
        return Response(_kiosk_answer(dispense))


class KioskDispenseConfirmCounsellingApi(_KioskDispenseActionApi):
    @extend_schema(
        request=None, responses={200: DispenseOutput, **_errors(400, 401, 403, 404, 409)}
    )
    def post(self, request: Request, dispense_id: int) -> Response:
        return super().post(request, dispense_id)

    def run(self, request: Request, dispense_id: int, data: dict) -> services.KioskDispense:
        return services.dispense_confirm_counselling(kiosk=request.auth, dispense_id=dispense_id)


class KioskDispenseCompleteApi(_KioskDispenseActionApi):
    @extend_schema(
        request=None, responses={200: DispenseOutput, **_errors(400, 401, 403, 404, 409)}
    )
    def post(self, request: Request, dispense_id: int) -> Response:
        return super().post(request, dispense_id)

    def run(self, request: Request, dispense_id: int, data: dict) -> services.KioskDispense:
        return services.dispense_complete(kiosk=request.auth, dispense_id=dispense_id)


class KioskDispenseFailApi(_KioskDispenseActionApi):
    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=200, required=False, default="jam")

    @extend_schema(
        request=InputSerializer, responses={200: DispenseOutput, **_errors(400, 401, 403, 404, 409)}
    )
    def post(self, request: Request, dispense_id: int) -> Response:
        return super().post(request, dispense_id)

    def run(self, request: Request, dispense_id: int, data: dict) -> services.KioskDispense:
        return services.dispense_fail(
            kiosk=request.auth, dispense_id=dispense_id, reason=data["reason"]
        )


class KioskCallRequestApi(KioskApi):
    class InputSerializer(StrictSerializer):
        dispense = serializers.IntegerField(min_value=1, required=False, allow_null=True)
        message = serializers.CharField(
            max_length=300, required=False, allow_blank=True, default=""
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "CallRequestOutput",
                {"id": serializers.IntegerField(), "status": serializers.CharField()},
            ),
            **_errors(400, 401, 403, 404),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        call = services.kiosk_call_request_create(
            kiosk=request.auth,
            dispense_id=data.validated_data.get("dispense"),
            message=data.validated_data["message"],
        )
        return Response({"id": call.pk, "status": call.status}, status=status.HTTP_201_CREATED)
