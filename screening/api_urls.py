from django.urls import path

from screening import apis, consent_apis

urlpatterns = [
    path("patients/", apis.PatientListCreateApi.as_view(), name="api-patients"),
    path("patients/<int:patient_id>/", apis.PatientDetailApi.as_view(), name="api-patient"),
    path(
        "patients/<int:patient_id>/consent/withdraw/",
        consent_apis.PatientConsentWithdrawApi.as_view(),
        name="api-patient-consent-withdraw",
    ),
    path(
        "patients/<int:patient_id>/erase/",
        consent_apis.PatientEraseApi.as_view(),
        name="api-patient-erase",
    ),
    path("screenings/", apis.ScreeningListCreateApi.as_view(), name="api-screenings"),
    path("screenings/<int:screening_id>/", apis.ScreeningDetailApi.as_view(), name="api-screening"),
    path(
        "screenings/<int:screening_id>/fhir/",
        apis.ScreeningFhirApi.as_view(),
        name="api-screening-fhir",
    ),
]
