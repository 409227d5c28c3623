"""The pharmacist sees both eyes' fundus photos on the prescription page, fetched through
screening's image view (organisation check + audit); another pharmacy's pharmacist does not."""

from __future__ import annotations

import re

import pytest

from accounts.models import AuditEvent
from screening.models import ScreeningImage
from tests.pharmacy.factories import PharmacistFactory, PharmacyFactory, pending_prescription

pytestmark = pytest.mark.django_db


def _photos(screening, settings) -> dict[str, bytes]:
    stored = {}
    for eye in ("left", "right"):
        rel = f"fundus/rx/{screening.pk}-{eye}.jpg"
        body = b"\xff\xd8\xff\xe0" + eye.encode() * 100
        target = settings.MEDIA_ROOT / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        ScreeningImage.objects.create(
            screening=screening,
            eye=eye,
            path=rel,
            sha256="0" * 64,
            width=10,
            height=10,
            gradable=eye == "right",
        )
        stored[eye] = body
    return stored


def test_pharmacist_sees_and_fetches_both_photos(client, pharmacist, pharmacy, settings):
    prescription = pending_prescription(pharmacy)
    stored = _photos(prescription.screening, settings)
    client.force_login(pharmacist)

    html = client.get(f"/pharmacy/prescriptions/{prescription.pk}/").content.decode()
    srcs = re.findall(r'<img src="(/screening/images/(\d+)/)"', html)
    assert len(srcs) == 2, html
    by_id = {i.pk: i.eye for i in prescription.screening.images.all()}
    assert {by_id[int(pk)] for _url, pk in srcs} == {"left", "right"}
    assert "Not gradable" in html  # the left photo is flagged

    for url, pk in srcs:
        response = client.get(url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == stored[by_id[int(pk)]]
    # Each fetch is audited as a read of that image by the pharmacist.
    reads = AuditEvent.objects.filter(
        url_name="screening:image_file", actor_username=pharmacist.username, status_code=200
    )
    assert reads.count() == 2


def test_pharmacist_of_another_pharmacy_gets_404(client, pharmacy, settings):
    prescription = pending_prescription(pharmacy)
    _photos(prescription.screening, settings)
    stranger = PharmacistFactory(pharmacy=PharmacyFactory())
    client.force_login(stranger)

    assert client.get(f"/pharmacy/prescriptions/{prescription.pk}/").status_code == 404
    for image in prescription.screening.images.all():
        assert client.get(f"/screening/images/{image.pk}/").status_code == 404


def test_prescription_without_photos_shows_a_dash(client, pharmacist, pharmacy):
    prescription = pending_prescription(pharmacy)
    client.force_login(pharmacist)
    html = client.get(f"/pharmacy/prescriptions/{prescription.pk}/").content.decode()
    assert "/screening/images/" not in html
    assert re.search(r"Fundus photos</dt><dd><span class=\"muted\">—</span>", html)
