from django.urls import path

from grading import apis

urlpatterns = [
    path("grading/queue/", apis.GradingQueueApi.as_view(), name="grading-queue"),
    path(
        "grading/screenings/<int:screening_id>/",
        apis.GradingCaseApi.as_view(),
        name="grading-case",
    ),
    path(
        "grading/screenings/<int:screening_id>/reads/",
        apis.GradingReadCreateApi.as_view(),
        name="grading-reads",
    ),
    path(
        "grading/screenings/<int:screening_id>/fhir/",
        apis.GradingFhirApi.as_view(),
        name="grading-fhir",
    ),
]
