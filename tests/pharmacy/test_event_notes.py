"""A prescription's history: the notes the platform writes itself are stored as stable keys and
shown in the reader's language; a person's note is shown as written."""

from __future__ import annotations

import pytest
from django.utils import translation

from pharmacy.models import PrescriptionEvent

Note = PrescriptionEvent.SystemNote


@pytest.mark.parametrize(
    ("note", "ko", "en"),
    [
        (Note.PROPOSED, "규칙에 따른 제안", "proposed by protocol"),
        (Note.REQUESTED, "보건요원 요청", "requested by health worker"),
        (Note.PICKUP_EXPIRED, "수령 기한 지남", "pickup window passed"),
        ("dispense 42", "키오스크에서 출고됨 (출고 42)", "dispensed at the kiosk (dispense 42)"),
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
    event = PrescriptionEvent(note=note)
    with translation.override("ko"):
        assert event.note_display == ko
    with translation.override("en"):
        assert event.note_display == en


def test_the_stored_keys_do_not_depend_on_the_language():
    with translation.override("ko"):
        assert str(Note.PROPOSED.value) == "proposed by protocol"
