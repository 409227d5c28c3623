"""Demo data of grading: a reading centre that reads for every demo site, and three graders, so
that a disagreement can go all the way to arbitration (a third grader, neither of the first two).

python manage.py seed_demo_grading   # run by `manage.py seed_demo` with the other apps' parts

Idempotent: running it twice changes nothing the second time. The cases to read come from the
demo screenings themselves: when the worker finishes one, the grading rules open its case.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role
from config.demo import ensure_user
from grading.models import GraderMembership, ReadingCentre
from screening.models import Site

CENTRE = ("아이브리지 판독센터", "EyeBridge Reading Centre", "010-2000-0900")


class Command(BaseCommand):
    help = "Load the grading demo: a reading centre for the demo sites, graders grader, grader2, grader3."

    def handle(self, *args: object, **options: object) -> None:
        name, name_en, phone = CENTRE
        with transaction.atomic():
            centre, _ = ReadingCentre.objects.get_or_create(
                name=name, defaults={"name_en": name_en, "phone": phone}
            )
            # The demo sites are those screening's seed created (it runs first).
            centre.sites.add(*Site.objects.all())
            graders = [
                ensure_user("grader", Role.GRADER, first_name="서연", last_name="한"),
                ensure_user("grader2", Role.GRADER, first_name="도윤", last_name="오"),
                ensure_user("grader3", Role.GRADER, first_name="하준", last_name="윤"),
            ]
            for user in graders:
                GraderMembership.objects.get_or_create(user=user, defaults={"centre": centre})
        self.stdout.write(
            f"Reading centre '{name_en}' reads for {centre.sites.count()} sites; graders "
            f"{', '.join(u.username for u in graders)}."
        )
