"""Pharmacies, their vending kiosks, the formulary, prescriptions and the stock ledger.

One module per use case; everything is re-exported here, so ``from pharmacy.models import X``
and the app label stay as they were.
"""

from __future__ import annotations

from pharmacy.models.catalogue import Medication, MedicationCategory, MedicationProtocol
from pharmacy.models.dispensing import Dispense, DispenseCode, DispenseLine
from pharmacy.models.operations import IdempotencyRecord, KioskCallRequest, PharmacyAlert
from pharmacy.models.organisation import Kiosk, PharmacistMembership, Pharmacy, PharmacySiteLink
from pharmacy.models.prescriptions import Prescription, PrescriptionEvent, PrescriptionItem
from pharmacy.models.stock import StockLot, StockMovement

__all__ = [
    "MedicationCategory",
    "Medication",
    "MedicationProtocol",
    "Pharmacy",
    "PharmacySiteLink",
    "PharmacistMembership",
    "Kiosk",
    "StockLot",
    "StockMovement",
    "Prescription",
    "PrescriptionItem",
    "PrescriptionEvent",
    "DispenseCode",
    "Dispense",
    "DispenseLine",
    "IdempotencyRecord",
    "KioskCallRequest",
    "PharmacyAlert",
]
