from django.urls import path

from pharmacy import apis

urlpatterns = [
    path("prescriptions/", apis.PrescriptionListApi.as_view(), name="pharmacy-prescription-list"),
    path(
        "prescriptions/request/",
        apis.PrescriptionRequestApi.as_view(),
        name="pharmacy-prescription-request",
    ),
    path(
        "prescriptions/<int:prescription_id>/",
        apis.PrescriptionDetailApi.as_view(),
        name="pharmacy-prescription-detail",
    ),
    path(
        "prescriptions/<int:prescription_id>/approve/",
        apis.PrescriptionApproveApi.as_view(),
        name="pharmacy-prescription-approve",
    ),
    path(
        "prescriptions/<int:prescription_id>/reject/",
        apis.PrescriptionRejectApi.as_view(),
        name="pharmacy-prescription-reject",
    ),
    path(
        "prescriptions/<int:prescription_id>/cancel/",
        apis.PrescriptionCancelApi.as_view(),
        name="pharmacy-prescription-cancel",
    ),
    path(
        "prescriptions/<int:prescription_id>/fhir/",
        apis.PrescriptionFhirApi.as_view(),
        name="pharmacy-prescription-fhir",
    ),
    path("medications/", apis.MedicationListApi.as_view(), name="pharmacy-medication-list"),
    path("kiosk/heartbeat/", apis.KioskHeartbeatApi.as_view(), name="pharmacy-kiosk-heartbeat"),
    path("kiosk/dispenses/", apis.KioskDispenseCreateApi.as_view(), name="pharmacy-kiosk-dispense"),
    path(
        "kiosk/dispenses/<int:dispense_id>/confirm-counselling/",
        apis.KioskDispenseConfirmCounsellingApi.as_view(),
        name="pharmacy-kiosk-dispense-confirm",
    ),
    path(
        "kiosk/dispenses/<int:dispense_id>/complete/",
        apis.KioskDispenseCompleteApi.as_view(),
        name="pharmacy-kiosk-dispense-complete",
    ),
    path(
        "kiosk/dispenses/<int:dispense_id>/fail/",
        apis.KioskDispenseFailApi.as_view(),
        name="pharmacy-kiosk-dispense-fail",
    ),
    path(
        "kiosk/call-requests/",
        apis.KioskCallRequestApi.as_view(),
        name="pharmacy-kiosk-call-request",
    ),
]
