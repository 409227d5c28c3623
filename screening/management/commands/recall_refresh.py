from django.core.management.base import BaseCommand

from screening.recall import recalls_refresh_all


class Command(BaseCommand):
    help = (
        "Recompute every screened patient's next due date (after deploying, or when the recall "
        "protocol changes). Idempotent."
    )

    def handle(self, *args, **options) -> None:
        count = recalls_refresh_all()
        self.stdout.write(f"Recall: {count} patients' due dates computed.")
