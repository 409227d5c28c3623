from django.urls import path

from screening import apis

urlpatterns = [
    path("patients/", apis.PatientListCreateApi.as_view(), name="api-patients"),
    path("patients/<int:patient_id>/", apis.PatientDetailApi.as_view(), name="api-patient"),
    path("screenings/", apis.ScreeningListCreateApi.as_view(), name="api-screenings"),
    path("screenings/<int:screening_id>/", apis.ScreeningDetailApi.as_view(), name="api-screening"),
    path(
        "screenings/<int:screening_id>/fhir/",
        apis.ScreeningFhirApi.as_view(),
        name="api-screening-fhir",
    ),
]
