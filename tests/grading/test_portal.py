"""The grader's portal pages, and what the health worker sees of a grader's read (a panel on the
result page and a badge on the worklist, through screening's extension points)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from grading import services
from grading.models import GraderRead
from tests.extension_helpers import render_registered
from tests.factories import HealthWorkerFactory, ScreeningFactory
from tests.grading.factories import case_for, with_photos

pytestmark = pytest.mark.django_db

FORM = {
    "stage": "primary",
    "left_gradable": "yes",
    "left_findings": ["D"],
    "left_dr_grade": "moderate",
    "right_gradable": "no",
    "next_step": "referable",
    "note": "looks like DR",
}


def test_the_queue_page_lists_urgent_first_and_marks_overdue(client, site, graders):
    late = case_for(site, triage="urgent", opened_at=timezone.now() - dt.timedelta(hours=5))
    routine = case_for(site)
    client.force_login(graders[0])
    html = client.get("/grading/").content.decode()
    assert html.index(late.screening.patient.pseudonym) < html.index(
        routine.screening.patient.pseudonym
    )
    assert "grading-overdue" in html
    assert late.screening.patient.name not in html  # graders see the pseudonym only


def test_the_read_page_shows_photos_heatmaps_probabilities_risks_and_history(client, site, graders):
    case = case_for(site, triage="referable")
    screening = case.screening
    screening.patient.has_diabetes = True
    screening.patient.save()
    screening.symptoms = ["blurred_vision"]
    screening.save()
    screening.results.filter(eye="left").update(heatmap_path="test/heat.png", heatmap_class="D")
    earlier = with_photos(
        ScreeningFactory(
            site=site,
            patient=screening.patient,
            health_worker=screening.health_worker,
            triage="normal",
        )
    )
    earlier.created_at = screening.created_at - dt.timedelta(days=365)
    earlier.save()
    client.force_login(graders[0])
    r = client.get(f"/grading/screenings/{screening.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    left, right = (screening.images.get(eye=e) for e in ("left", "right"))
    for image in (left, right, *earlier.images.all()):
        assert f"/screening/images/{image.pk}/" in html
    assert f"/screening/heatmaps/{screening.results.get(eye='left').pk}/" in html
    assert "data-zoom" in html and "grading/zoom.js" in html
    assert "Diabetes" in html and "Blurred vision" in html
    assert "<meter" in html
    assert 'name="left_dr_grade"' in html and 'name="next_step"' in html


def test_posting_the_form_records_the_read_and_returns_to_the_queue(client, site, graders):
    case = case_for(site, triage="referable", findings=["D"])
    client.force_login(graders[0])
    r = client.post(f"/grading/screenings/{case.screening_id}/", FORM)
    assert r.status_code == 302 and r["Location"] == "/grading/"
    read = GraderRead.objects.get()
    assert (read.role, read.next_step, read.findings) == ("primary", "referable", ["D"])
    assert {e.eye: e.gradable for e in read.eyes.all()} == {"left": True, "right": False}


def test_a_bad_form_shows_the_error_next_to_the_field(client, site, graders):
    case = case_for(site)
    client.force_login(graders[0])
    r = client.post(f"/grading/screenings/{case.screening_id}/", {**FORM, "left_dr_grade": ""})
    assert r.status_code == 400
    assert "Give the diabetic retinopathy grade" in r.content.decode()
    assert not GraderRead.objects.exists()


def test_a_second_read_by_the_same_grader_is_refused_on_the_page(client, site, graders):
    case = case_for(site, triage="normal", findings=[])
    client.force_login(graders[0])
    client.post(f"/grading/screenings/{case.screening_id}/", FORM)  # disagrees: second read
    page = client.get(f"/grading/screenings/{case.screening_id}/").content.decode()
    assert 'name="next_step"' not in page  # no form: another grader reads next
    r = client.post(f"/grading/screenings/{case.screening_id}/", {**FORM, "stage": "secondary"})
    assert r.status_code == 403
    assert GraderRead.objects.count() == 1


def test_other_roles_are_told_the_page_is_for_graders(client, site):
    case = case_for(site)
    client.force_login(HealthWorkerFactory(site=site))
    assert client.get("/grading/").status_code == 403
    assert client.get(f"/grading/screenings/{case.screening_id}/").status_code == 403


def _hw_page(client, screening):
    client.force_login(screening.health_worker)
    return client.get(f"/screening/screenings/{screening.pk}/").content.decode()


def test_the_result_page_says_awaiting_then_confirmed_by_the_grader(client, site, graders):
    case = case_for(site, triage="referable", findings=["D"])
    screening = case.screening
    assert "Awaiting a grader" in _hw_page(client, screening)
    graders[0].first_name, graders[0].last_name = "Ann", "Lee"
    graders[0].save()
    services.grader_read_submit(
        user=graders[0],
        screening_id=screening.pk,
        data=services.ReadInput(
            eyes=[
                services.EyeReadInput(eye="left", gradable=True, findings=["D"], dr_grade="mild"),
                services.EyeReadInput(eye="right", gradable=True),
            ],
            next_step="referable",
        ),
    )
    assert "AI result, confirmed by grader Ann Lee" in _hw_page(client, screening)


def test_the_result_page_and_worklist_say_changed_by_the_grader(client, site, graders):
    case = case_for(site, triage="referable", findings=["D"])
    screening = case.screening
    normal = services.ReadInput(
        eyes=[services.EyeReadInput(eye=e, gradable=True) for e in ("left", "right")],
        next_step="normal",
    )
    for grader in graders[:2]:
        services.grader_read_submit(user=grader, screening_id=screening.pk, data=normal)
    page = _hw_page(client, screening)
    assert f"Changed by grader {graders[1].get_full_name() or graders[1].username}" in page
    assert "Rescreen in 12 months." in page
    worklist = client.get("/screening/").content.decode()
    assert "Changed by a grader" in worklist


def test_no_panel_for_a_screening_no_one_was_asked_to_read(site):
    from grading.screening_hooks import grading_panel_context
    from screening import extensions

    screening = ScreeningFactory(site=site, patient__site=site)
    assert grading_panel_context(request=None, screening=screening) == {"case": None}
    assert render_registered(extensions.panels(), "grading", screening).strip() == ""


def test_the_worklist_badge_costs_no_query(site, graders, django_assert_num_queries):
    from screening import extensions

    case = case_for(site)
    screening = case.screening
    with django_assert_num_queries(0):
        render_registered(extensions.worklist_badges(), "grading", screening)


def test_the_admin_pages_of_grading_open(admin_client, site, graders):
    case = case_for(site)
    for url in (
        "/admin/grading/readingcentre/",
        f"/admin/grading/readingcentre/{graders[0].grader_membership.centre_id}/change/",
        "/admin/grading/gradingcase/",
        f"/admin/grading/gradingcase/{case.pk}/change/",
        "/admin/grading/graderread/",
    ):
        assert admin_client.get(url).status_code == 200, url
