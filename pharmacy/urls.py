from django.urls import path

from pharmacy import views

app_name = "pharmacy"
urlpatterns = [
    path("", views.queue, name="queue"),
    path(
        "prescriptions/<int:prescription_id>/",
        views.prescription_detail,
        name="prescription_detail",
    ),
    path(
        "prescriptions/<int:prescription_id>/qr.svg", views.prescription_qr, name="prescription_qr"
    ),
    path("stock/", views.stock, name="stock"),
    path("dispenses/", views.dispenses, name="dispenses"),
    path("calls/", views.calls, name="calls"),
    path("request/", views.request_medication, name="request"),
    path("kiosk-simulator/", views.kiosk_simulator, name="kiosk_simulator"),
]
