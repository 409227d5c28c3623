"""Every pharmacy model has a working admin (list, search, filters, change page)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from pharmacy import models
from tests.factories import AdminFactory
from tests.pharmacy.conftest import present
from tests.pharmacy.factories import approved_prescription, stock

pytestmark = pytest.mark.django_db


def test_every_pharmacy_model_is_registered():
    from django.apps import apps

    for model in apps.get_app_config("pharmacy").get_models():
        assert admin.site.is_registered(model), model


def test_admin_pages_render(client, pharmacist, kiosk, kiosk_api, medication):
    stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)
    present(kiosk_api, code)
    kiosk_api.post("/api/v1/kiosk/call-requests/", {}, format="json")
    client.force_login(AdminFactory())
    for model in admin.site._registry:
        if model._meta.app_label != "pharmacy":
            continue
        name = f"admin:pharmacy_{model._meta.model_name}"
        assert client.get(reverse(f"{name}_changelist") + "?q=a").status_code == 200, model
        obj = model.objects.first()
        if obj is not None:
            assert client.get(reverse(f"{name}_change", args=[obj.pk])).status_code == 200, model


def test_ledger_is_read_only_in_admin(client):
    client.force_login(AdminFactory())
    assert client.get(reverse("admin:pharmacy_stockmovement_add")).status_code == 403
    assert models.StockMovement.objects.count() == 0
