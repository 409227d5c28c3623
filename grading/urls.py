from django.urls import path

from grading import views

app_name = "grading"
urlpatterns = [
    path("", views.queue, name="queue"),
    # Keyed by the screening: a case is one-to-one with it, and the audit trail records the id.
    path("screenings/<int:screening_id>/", views.read, name="read"),
]
