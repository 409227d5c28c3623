"""Writes of the pharmacy app: proposing, approving and dispensing medicine, and the stock ledger.

One module per use case; import from here (``from pharmacy.services import prescription_approve``),
not from the modules, whose layout may change.

Locking rule, the same everywhere, so that two transactions never wait on each other in a cycle:
prescription row -> dispense row -> stock lots (in primary-key order).
"""

from config.idempotency import request_fingerprint
from pharmacy.services.dispensing import (
    KioskDispense,
    KioskDispenseItem,
    dispense_complete,
    dispense_confirm_counselling,
    dispense_fail,
    dispense_reserve,
    dispenses_release_stale,
    pharmacy_alert_resolve,
)
from pharmacy.services.idempotency import (
    idempotency_abort,
    idempotency_begin,
    idempotency_finish,
    idempotency_records_purge,
)
from pharmacy.services.kiosks import (
    KIOSK_ID_RE,
    kiosk_call_request_answer,
    kiosk_call_request_create,
    kiosk_create,
    kiosk_heartbeat,
    kiosk_new_id,
    kiosk_register,
    kiosk_retire,
    kiosk_rotate_secret,
)
from pharmacy.services.prescriptions import (
    COUNSELLING_FIELDS,
    COUNSELLING_LANGUAGES,
    LIVE_DISPENSE,
    PROPOSABLE_TRIAGE,
    counselling_clean,
    prescription_approve,
    prescription_cancel,
    prescription_propose_for_screening,
    prescription_reject,
    prescription_request,
    prescription_send_code,
    prescriptions_expire,
)
from pharmacy.services.stock import stock_adjust, stock_lot_receive

__all__ = [
    "COUNSELLING_FIELDS",
    "COUNSELLING_LANGUAGES",
    "KIOSK_ID_RE",
    "LIVE_DISPENSE",
    "PROPOSABLE_TRIAGE",
    "KioskDispense",
    "KioskDispenseItem",
    "counselling_clean",
    "dispense_complete",
    "dispense_confirm_counselling",
    "dispense_fail",
    "dispense_reserve",
    "dispenses_release_stale",
    "idempotency_abort",
    "idempotency_begin",
    "idempotency_finish",
    "idempotency_records_purge",
    "kiosk_call_request_answer",
    "kiosk_call_request_create",
    "kiosk_create",
    "kiosk_heartbeat",
    "kiosk_new_id",
    "kiosk_register",
    "kiosk_retire",
    "kiosk_rotate_secret",
    "pharmacy_alert_resolve",
    "prescription_approve",
    "prescription_cancel",
    "prescription_propose_for_screening",
    "prescription_reject",
    "prescription_request",
    "prescription_send_code",
    "prescriptions_expire",
    "request_fingerprint",
    "stock_adjust",
    "stock_lot_receive",
]
