from django.urls import path

from screening import consent_views, views

app_name = "screening"
urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("patients/", views.patient_list, name="patient_list"),
    path("patients/new/", views.patient_create, name="patient_create"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path(
        "patients/<int:patient_id>/consent/",
        consent_views.patient_consent,
        name="patient_consent",
    ),
    path("recall/", views.recall_list, name="recall_list"),
    path(
        "patients/<int:patient_id>/screenings/new/", views.screening_create, name="screening_create"
    ),
    path("screenings/<int:screening_id>/", views.screening_detail, name="screening_detail"),
    path("screenings/<int:screening_id>/status/", views.screening_status, name="screening_status"),
    path("images/<int:image_id>/", views.image_file, name="image_file"),
    path("heatmaps/<int:result_id>/", views.heatmap_file, name="heatmap_file"),
]
