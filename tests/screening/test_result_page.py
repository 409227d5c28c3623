"""The result page speaks to a health worker: the decision, why in plain words, what to do now;
the probabilities and thresholds wait behind a "details" toggle for clinicians."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from screening.models import EyeResult, ScreeningImage
from screening.triage import reason_plain
from tests.factories import ScreeningFactory

FINDING = {"code": "finding", "eye": "left", "class": "D", "probability": 0.26, "threshold": 0.06}


def test_a_finding_reads_as_what_was_seen_and_where():
    with translation.override("en"):
        assert reason_plain(FINDING) == "Signs of diabetic retinopathy in the left eye"
        urgent = reason_plain({**FINDING, "eye": "right", "urgent": True})
        assert urgent == "Strong signs of diabetic retinopathy in the right eye"
        # Reasons without numbers read as before.
        assert "rescreen" in reason_plain({"code": "no_finding"})
    with translation.override("ko"):
        text = reason_plain(FINDING)
        assert "당뇨망막병증" in text and "왼쪽" in text and "%" not in text


@pytest.mark.django_db
def test_the_page_keeps_probabilities_behind_details(client):
    screening = ScreeningFactory(triage="referable", reasons=[FINDING], findings=["D"])
    ScreeningImage.objects.create(
        screening=screening,
        eye="left",
        path="fundus/aa/x.jpg",
        sha256="1" * 64,
        width=9,
        height=9,
        gradable=True,
    )
    EyeResult.objects.create(
        screening=screening,
        eye="left",
        probabilities={"N": 0.87, "D": 0.26},
        top_class="N",
        findings=["D"],
        model_version="v1",
    )
    worker = screening.health_worker
    worker.preferred_language = "en"
    worker.save(update_fields=["preferred_language"])
    client.force_login(worker)
    html = client.get(f"/screening/screenings/{screening.pk}/").content.decode()
    outcome = re.search(r'<section class="card outcome.*?</section>', html, re.S).group(0)
    assert "Signs of diabetic retinopathy in the left eye" in outcome
    assert "What to do now" in outcome
    assert "%" not in outcome  # no probability or threshold in the health worker's verdict
    details = re.findall(r"<details class=\"clinical.*?</details>", html, re.S)
    assert any('<table class="probs"' in d for d in details)
    assert any("threshold 6%" in d for d in details)
    # Every probability on the page is inside a details block.
    outside = re.sub(r"<details.*?</details>", "", html, flags=re.S)
    assert "<meter" not in outside
