"""A prescription's history: the notes the platform writes itself are stored as stable keys and
shown in the reader's language; a person's note is shown as written."""

from __future__ import annotations

import pytest
from django.utils import translation

from pharmacy.models import PrescriptionEvent
from pharmacy.templatetags.pharmacy_tags import rx_note

Note = PrescriptionEvent.SystemNote


@pytest.mark.parametrize(
    ("note", "ko", "en"),
    [
        (Note.PROPOSED, "규칙에 따른 제안", "Proposed by protocol"),
        (Note.REQUESTED, "보건요원 요청", "Requested by health worker"),
        (Note.PICKUP_EXPIRED, "수령 기한 지남", "Pickup window passed"),
        # As stored by PrescriptionEvent.dispense_note, rows written before included.
        ("dispense 42", "키오스크에서 출고됨 (출고 42)", "Dispensed at the kiosk (dispense 42)"),
        (
            "환자가 이미 같은 약을 쓰고 있음",
            "환자가 이미 같은 약을 쓰고 있음",
            "환자가 이미 같은 약을 쓰고 있음",
        ),
        ("dispense me a coffee", "dispense me a coffee", "dispense me a coffee"),
        ("", "", ""),
    ],
)
def test_note_is_shown_in_the_readers_language(note, ko, en):
    with translation.override("ko"):
        assert rx_note(note) == ko
    with translation.override("en"):
        assert rx_note(note) == en
