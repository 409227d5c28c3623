"""A grader lands on the reading queue after signing in, and finds it in the navigation."""

from __future__ import annotations

import pytest

from accounts.models import Role, User

pytestmark = pytest.mark.django_db


def test_a_grader_lands_on_the_reading_queue(client):
    grader = User.objects.create_user("g-home", role=Role.GRADER, password="x")
    client.force_login(grader)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/grading/"
