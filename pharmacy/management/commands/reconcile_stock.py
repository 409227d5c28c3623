"""Check the stock ledger: every lot's quantity equals the sum of its movements, every dispense's
movements match its lines, and every dispensed prescription has exactly one completed dispense."""

from __future__ import annotations

from collections import defaultdict

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q, Sum

from pharmacy.models import Dispense, DispenseLine, Prescription, StockLot, StockMovement


def find_mismatches() -> list[str]:
    problems: list[str] = []
    moved = dict(StockMovement.objects.values_list("lot_id").annotate(total=Sum("delta")))
    for lot_id, quantity in StockLot.objects.values_list("pk", "quantity"):
        if quantity < 0:
            problems.append(f"lot {lot_id}: negative quantity {quantity}")
        if moved.get(lot_id, 0) != quantity:
            problems.append(
                f"lot {lot_id}: quantity {quantity} but movements sum to {moved.get(lot_id, 0)}"
            )

    lines: dict[tuple[int, int], int] = defaultdict(int)
    for dispense_id, lot_id, quantity in DispenseLine.objects.values_list(
        "dispense_id", "lot_id", "quantity"
    ):
        lines[(dispense_id, lot_id)] += quantity
    movements: dict[tuple[int, int, str], int] = defaultdict(int)
    for dispense_id, lot_id, reason, delta in StockMovement.objects.filter(
        dispense__isnull=False
    ).values_list("dispense_id", "lot_id", "reason", "delta"):
        movements[(dispense_id, lot_id, reason)] += delta
    statuses = dict(Dispense.objects.values_list("pk", "status"))
    for (dispense_id, lot_id), quantity in lines.items():
        if movements.get((dispense_id, lot_id, "reserve"), 0) != -quantity:
            problems.append(
                f"dispense {dispense_id} lot {lot_id}: {quantity} released but reserve movements "
                f"{movements.get((dispense_id, lot_id, 'reserve'), 0)}"
            )
        restored = movements.get((dispense_id, lot_id, "restore"), 0)
        expected = quantity if statuses[dispense_id] == Dispense.Status.FAILED else 0
        if restored != expected:
            problems.append(
                f"dispense {dispense_id} lot {lot_id} ({statuses[dispense_id]}): restored {restored}, expected {expected}"
            )
    for dispense_id, lot_id, _reason in movements:
        if (dispense_id, lot_id) not in lines:
            problems.append(
                f"dispense {dispense_id} lot {lot_id}: movement without a dispense line"
            )

    wrong = (
        Prescription.objects.annotate(
            done=Count("dispenses", filter=Q(dispenses__status="completed"))
        )
        .filter(
            Q(status="dispensed", done__gt=1)
            | Q(status="dispensed", done=0)
            | (~Q(status="dispensed") & Q(done__gt=0))
        )
        .values_list("pk", "status", "done")
    )
    for pk, status, done in wrong:
        problems.append(f"prescription {pk} ({status}) has {done} completed dispense(s)")
    return problems


class Command(BaseCommand):
    help = "Check stock movements against lots and dispenses; exits non-zero if anything disagrees."

    def handle(self, *args, **options) -> None:
        problems = find_mismatches()
        for problem in problems:
            self.stdout.write(self.style.ERROR(problem))
        self.stdout.write(
            f"{StockLot.objects.count()} lots, {Dispense.objects.count()} dispenses checked: "
            f"{len(problems)} mismatches"
        )
        if problems:
            raise CommandError(f"{len(problems)} mismatches")
