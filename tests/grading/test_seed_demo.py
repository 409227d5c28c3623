"""Grading's demo data: a reading centre for the demo sites and three graders."""

from __future__ import annotations

import io

from django.core.management import call_command

from accounts.models import Role, User
from grading.models import GraderMembership, ReadingCentre
from grading.selectors import grader_can_view_screening
from tests.factories import ScreeningFactory


def test_seed_demo_grading_creates_a_centre_and_three_graders_once(db):
    call_command("seed_demo_screening", "--no-screenings", stdout=io.StringIO())
    call_command("seed_demo_grading", stdout=io.StringIO())
    call_command("seed_demo_grading", stdout=io.StringIO())
    centre = ReadingCentre.objects.get()
    assert centre.sites.count() == 3 and centre.phone
    graders = User.objects.filter(username__in=["grader", "grader2", "grader3"])
    assert {u.role for u in graders} == {Role.GRADER}
    assert all(u.check_password("eyebridge-demo") for u in graders)
    assert GraderMembership.objects.filter(centre=centre).count() == 3
    site = centre.sites.first()
    screening = ScreeningFactory(site=site, patient__site=site)
    assert grader_can_view_screening(user=graders.get(username="grader"), screening_id=screening.pk)


def test_seed_demo_includes_grading_after_the_dashboard():
    from config.management.commands.seed_demo import PARTS

    assert PARTS.index("seed_demo_grading") == PARTS.index("seed_demo_dashboard") + 1
