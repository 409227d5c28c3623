"""Field performance: the AI's refer decision against the final human read, per class, site,
camera, model version and month, with Wilson intervals; the agreement alert; the graded set's
export; the page in Korean and English.

The hand-computed world (site A, region 서울, graded screenings of Feb-Mar 2026; every result the
AI did not refer was read, sample_rate 1.0, so every weight is 1):

    name  AI triage   final       refer (AI/final)  outcome  left eye (AI / final)   month  notes
    tp1   referable   referable   yes / yes         TP       D / D                   02     model m2
    tp2   referable   referable   yes / yes         TP       D / D                   03
    tp3   referable   referable   yes / yes         TP       D / D                   03
    tp4   urgent      referable   yes / yes         TP       G / D                   03     next step differs
    fn    normal      referable   no  / yes         FN       - / D                   03     right eye ungradable
    tn1   normal      normal      no  / no          TN       - / -                   02
    tn2   normal      normal      no  / no          TN       - / -                   03
    tn3   medication  normal      no  / no          TN       - / -                   03     next step differs; no AI result right
    fp1   referable   normal      yes / no          FP       D / -                   03     photos 100x80
    fp2   referable   normal      yes / no          FP       D / -                   03     photos 100x80
    Right eyes: AI nothing, grader nothing, except fn (ungradable: left out) and tn3 (no AI
    result: left out).

Refer decision, z = 1.959964 (z^2 = 3.841459); Wilson: centre = (p + z^2/2n) / (1 + z^2/n),
half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2):
    sensitivity = TP/(TP+FN) = 4/5 = 0.800: centre (0.8 + 0.384146)/1.768292 = 0.669654,
        half 1.108393 * sqrt(0.032 + 0.038415) = 0.294122 -> [0.376, 0.964]
    specificity = TN/(TN+FP) = 3/5 = 0.600: centre 0.984146/1.768292 = 0.556552,
        half 1.108393 * sqrt(0.048 + 0.038415) = 0.325828 -> [0.231, 0.882]
    agreement (same next step): tp1-3, tn1, tn2 = 5/10 = 0.500: centre 0.5,
        half 1.959964/1.384146 * sqrt(0.025 + 0.009604) = 0.263414 -> [0.237, 0.763]
Per class D, per eye (18 eyes: 20 less fn's ungradable right and tn3's right without AI result):
    truth D on tp1-4 and fn left = 5 eyes, AI found D on tp1-3: sensitivity 3/5 -> [0.231, 0.882]
    no D: tn1-3 and fp1-2 left (AI found D on fp1-2: 3 right) + 8 right eyes (all right):
        specificity 11/13 = 0.846: centre (0.846154 + 0.147748)/1.295497 = 0.767196,
        half 1.512904 * sqrt(0.010014 + 0.005683) = 0.189544 -> [0.578, 0.957]
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.field_performance import Proportion, field_performance_data, wilson
from dashboard.field_performance_services import field_agreement_alerts_evaluate
from dashboard.models import DashboardAccess, SiteAgreementAlert
from dashboard.scope import DashboardFilters, DashboardScope
from grading.models import EyeRead, GraderRead, GradingCase
from screening.models import CLASS_CODES, EyeResult, Screening, ScreeningImage
from screening.result_of_record import is_referable
from tests.e2e.test_untranslated_source import _english
from tests.factories import (
    AdminFactory,
    HealthWorkerFactory,
    ScreeningFactory,
    SiteFactory,
    UserFactory,
)
from tests.grading.factories import GraderFactory

SEOUL = ZoneInfo("Asia/Seoul")
RANGE = {"date_from": "2026-02-01", "date_to": "2026-03-31"}
PAGE = reverse("dashboard:field_performance")
SUMMARY = reverse("dashboard:field_performance_summary")
CSV_URL = reverse("dashboard:field_performance_export_csv")
JSON_URL = reverse("dashboard:field_performance_export_json")


def at(month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=SEOUL)


def _probabilities(found) -> dict[str, float]:
    return {c: (0.9 if c in found else 0.05) for c in CLASS_CODES}


def _eye_read(read, eye: str, findings, gradable: bool = True) -> None:
    letters = list(findings) if gradable else []
    EyeRead.objects.create(
        read=read,
        eye=eye,
        gradable=gradable,
        findings=letters or (["N"] if gradable else []),
        dr_grade="moderate" if "D" in letters else "",
    )


def graded(
    site,
    *,
    grader,
    ai: str,
    final: str,
    when: dt.datetime,
    left=((), ()),
    right=((), ()),
    model: str = "m1",
    size=(64, 64),
    right_result: bool = True,
    right_gradable: bool = True,
    sample_rate: float = 1.0,
    closed: dt.datetime | None = None,
):
    """A finished screening at ``site`` whose grading case is final: AI triage ``ai`` (and the
    per-eye findings ``left[0]``/``right[0]``), final read ``final`` (``left[1]``/``right[1]``)."""
    ai_found = sorted(set(left[0]) | set(right[0]))
    final_found = sorted(set(left[1]) | (set(right[1]) if right_gradable else set()))
    closed = closed or when + dt.timedelta(hours=2)
    s = ScreeningFactory(
        site=site, patient__site=site, triage=ai, findings=ai_found, model_version=model
    )
    Screening.objects.filter(pk=s.pk).update(
        created_at=when,
        completed_at=when,
        final_triage=final,
        final_findings=[c for c in final_found if c != "N"],
        final_source="grader",
        final_by=grader,
        final_at=closed,
    )
    for eye, found, has_result in (("left", left[0], True), ("right", right[0], right_result)):
        ScreeningImage.objects.create(
            screening=s,
            eye=eye,
            path=f"test/{s.pk}-{eye}.jpg",
            sha256=f"{s.pk:032d}{len(eye):032d}",
            width=size[0],
            height=size[1],
            gradable=True,
        )
        if has_result:
            EyeResult.objects.create(
                screening=s,
                eye=eye,
                probabilities=_probabilities(found),
                top_class=(list(found) or ["N"])[0],
                findings=list(found),
                model_version=model,
            )
    ai_refer = is_referable(ai)
    case = GradingCase.objects.create(
        screening=s,
        reason=ai if ai_refer else "sample",
        sample_rate=None if ai_refer else sample_rate,
        ai_triage=ai,
        ai_refer=ai_refer,
        urgent=ai == "urgent",
        opened_at=when,
        due_at=when + dt.timedelta(hours=48),
    )
    read = GraderRead.objects.create(
        case=case,
        grader=grader,
        role="primary",
        next_step=final,
        refer=is_referable(final),
        findings=final_found,
    )
    _eye_read(read, "left", left[1])
    _eye_read(read, "right", right[1], gradable=right_gradable)
    GradingCase.objects.filter(pk=case.pk).update(
        stage="final", final_read=read, final_refer=is_referable(final), closed_at=closed
    )
    s.refresh_from_db()
    return s


@pytest.fixture
def world(db):
    a = SiteFactory(name="가 보건소", name_en="Site A", region="서울")
    far = SiteFactory(name="먼 보건소", name_en="Far site", region="부산")
    grader = GraderFactory()
    w = SimpleNamespace(site_a=a, far=far, grader=grader)
    g = {"grader": grader}
    D = ("D",)
    w.tp1 = graded(
        a, ai="referable", final="referable", when=at(2, 10), left=(D, D), model="m2", **g
    )
    w.tp2 = graded(a, ai="referable", final="referable", when=at(3, 2), left=(D, D), **g)
    w.tp3 = graded(a, ai="referable", final="referable", when=at(3, 3), left=(D, D), **g)
    w.tp4 = graded(a, ai="urgent", final="referable", when=at(3, 4), left=(("G",), D), **g)
    w.fn = graded(
        a, ai="normal", final="referable", when=at(3, 5), left=((), D), right_gradable=False, **g
    )
    w.tn1 = graded(a, ai="normal", final="normal", when=at(2, 11), **g)
    w.tn2 = graded(a, ai="normal", final="normal", when=at(3, 6), **g)
    w.tn3 = graded(a, ai="medication", final="normal", when=at(3, 7), right_result=False, **g)
    w.fp1 = graded(
        a, ai="referable", final="normal", when=at(3, 8), left=(D, ()), size=(100, 80), **g
    )
    w.fp2 = graded(
        a, ai="referable", final="normal", when=at(3, 9), left=(D, ()), size=(100, 80), **g
    )
    # Another organisation's graded screenings: all misses, so that counting them would show.
    w.far1 = graded(far, ai="normal", final="urgent", when=at(3, 3), left=((), D), **g)
    w.far2 = graded(far, ai="referable", final="normal", when=at(3, 4), left=(D, ()), **g)
    # Not graded yet (an open case) and outside the range: not counted.
    open_screening = ScreeningFactory(site=a, patient__site=a, triage="referable")
    GradingCase.objects.create(
        screening=open_screening,
        reason="referable",
        ai_triage="referable",
        ai_refer=True,
        opened_at=timezone.now(),
        due_at=timezone.now() + dt.timedelta(hours=48),
    )
    w.old = graded(a, ai="normal", final="urgent", when=at(1, 5), **g)
    return w


def _seoul_scope() -> DashboardScope:
    return DashboardScope(regions=("서울",))


def _filters() -> DashboardFilters:
    return DashboardFilters(date_from=dt.date(2026, 2, 1), date_to=dt.date(2026, 3, 31))


def _r3(p: Proportion) -> tuple[float, float, float]:
    assert p.value is not None and p.interval is not None
    return (round(p.value, 3), round(p.interval[0], 3), round(p.interval[1], 3))


def _public_health(client, regions, language="en"):
    user = UserFactory(preferred_language=language)
    DashboardAccess.objects.create(user=user, regions=regions)
    client.force_login(user)
    return user


# --- the statistics ---------------------------------------------------------------------------


def test_wilson_interval_matches_the_textbook_values():
    assert [round(x, 3) for x in wilson(4 / 5, 5)] == [0.376, 0.964]
    assert [round(x, 3) for x in wilson(0.0, 10)] == [0.0, 0.278]  # no collapse at 0%
    assert wilson(0.5, 0) == (0.0, 1.0)


def test_refer_decision_against_the_hand_computed_example(world):
    data = field_performance_data(scope=_seoul_scope(), filters=_filters(), site_names={})
    overall = data.overall
    assert overall.graded == 10
    assert (overall.sensitivity.k, overall.sensitivity.n) == (4, 5)
    assert _r3(overall.sensitivity) == (0.8, 0.376, 0.964)
    assert (overall.specificity.k, overall.specificity.n) == (3, 5)
    assert _r3(overall.specificity) == (0.6, 0.231, 0.882)
    assert _r3(overall.agreement) == (0.5, 0.237, 0.763)
    assert not overall.sensitivity.weighted and not overall.specificity.weighted
    assert data.sampled == 4  # fn, tn1-3: the AI did not refer them


def test_per_class_compares_each_eye_the_ai_and_the_grader_both_graded(world):
    data = field_performance_data(scope=_seoul_scope(), filters=_filters(), site_names={})
    d = next(c for c in data.per_class if c.key == "D")
    assert d.eyes == 18
    assert (d.sensitivity.k, d.sensitivity.n) == (3, 5)
    assert _r3(d.sensitivity) == (0.6, 0.231, 0.882)
    assert (d.specificity.k, d.specificity.n) == (11, 13)
    assert _r3(d.specificity) == (0.846, 0.578, 0.957)
    g = next(c for c in data.per_class if c.key == "G")
    assert g.sensitivity.value is None  # no grader found glaucoma
    assert (g.specificity.k, g.specificity.n) == (17, 18)  # the AI's G on tp4


def test_per_site_camera_model_and_month(world):
    data = field_performance_data(
        scope=_seoul_scope(), filters=_filters(), site_names={world.site_a.pk: "A"}
    )
    assert [(s.label, s.graded) for s in data.per_site] == [("A", 10)]
    cameras = {s.key: s for s in data.per_camera}
    assert {k: s.graded for k, s in cameras.items()} == {"64x64": 8, "100x80": 2}
    assert (cameras["100x80"].specificity.k, cameras["100x80"].specificity.n) == (0, 2)
    assert cameras["100x80"].sensitivity.value is None
    assert _r3(cameras["64x64"].specificity) == (1.0, 0.439, 1.0)  # 3/3
    assert {s.key: s.graded for s in data.per_model} == {"m1": 9, "m2": 1}
    months = [(s.key, s.graded, s.sensitivity.k, s.sensitivity.n) for s in data.per_month]
    assert months == [("2026-02", 2, 1, 1), ("2026-03", 8, 3, 4)]


def test_sampled_results_are_weighted_by_the_rate_they_were_drawn_at(db):
    # Half of the non-referred results were read: each graded one stands for two screenings.
    site = SiteFactory(region="서울")
    g = {"grader": GraderFactory(), "sample_rate": 0.5}
    graded(site, ai="referable", final="referable", when=at(3, 2), **g)  # TP, weight 1
    graded(site, ai="normal", final="referable", when=at(3, 3), **g)  # FN, weight 2
    graded(site, ai="normal", final="normal", when=at(3, 4), **g)  # TN, weight 2
    graded(site, ai="normal", final="normal", when=at(3, 5), **g)  # TN, weight 2
    graded(site, ai="referable", final="normal", when=at(3, 6), **g)  # FP, weight 1
    data = field_performance_data(scope=_seoul_scope(), filters=_filters(), site_names={})
    sens, spec = data.overall.sensitivity, data.overall.specificity
    # Sensitivity 1 / (1 + 2) = 0.333 at n_eff = 3^2 / (1 + 4) = 1.8: Wilson [0.042, 0.852].
    assert (sens.k, sens.n, sens.weighted) == (1, 2, True)
    assert round(sens.n_effective, 3) == 1.8
    assert _r3(sens) == (0.333, 0.042, 0.852)
    # Specificity (2 + 2) / (2 + 2 + 1) = 0.8 at n_eff = 5^2 / (4 + 4 + 1) = 2.778:
    # z^2/n = 1.382925, centre (0.8 + 0.691463)/2.382925 = 0.625896, half 0.822508 *
    # sqrt(0.0576 + 0.124463) = 0.350955 -> [0.275, 0.977]. Unweighted it would read 2/3.
    assert (spec.k, spec.n) == (2, 3)
    assert _r3(spec) == (0.8, 0.275, 0.977)
    # Agreement describes the graded cases as they are: 3 of 5.
    assert (data.overall.agreement.k, data.overall.agreement.n) == (3, 5)


def test_another_organisations_graded_screenings_are_never_counted(world):
    seoul = field_performance_data(scope=_seoul_scope(), filters=_filters(), site_names={})
    assert seoul.overall.graded == 10
    assert {s.key for s in seoul.per_site} == {str(world.site_a.pk)}
    everyone = field_performance_data(
        scope=DashboardScope(regions=None), filters=_filters(), site_names={}
    )
    assert everyone.overall.graded == 12
    assert (everyone.overall.sensitivity.k, everyone.overall.sensitivity.n) == (4, 6)


# --- the agreement alert ---------------------------------------------------------------------


@pytest.fixture
def alert_settings(settings, db):
    settings.FIELD_AGREEMENT_MIN_GRADED = 4
    settings.FIELD_AGREEMENT_ALERT_BELOW = 0.8
    return settings


def _agreeing(site, grader, when, n, *, agree=True):
    for k in range(n):
        graded(
            site,
            grader=grader,
            ai="referable",
            final="referable" if agree else "normal",
            when=when,
            closed=when + dt.timedelta(hours=k + 1),
        )


def test_alert_fires_for_a_site_whose_last_graded_screenings_disagree(client, alert_settings):
    grader = GraderFactory()
    low = SiteFactory(name="낮은 보건소", name_en="Low site", region="서울")
    fine = SiteFactory(name="좋은 보건소", name_en="Fine site", region="서울")
    few = SiteFactory(name="적은 보건소", name_en="Few site", region="서울")
    _agreeing(low, grader, at(3, 1), 4)  # older: agree, no longer among the last 4
    _agreeing(low, grader, at(3, 10), 2)
    _agreeing(low, grader, at(3, 11), 2, agree=False)  # last 4: 2 of 4 agree = 50%
    _agreeing(fine, grader, at(3, 10), 4)  # 100%
    _agreeing(few, grader, at(3, 10), 3, agree=False)  # 0%, but only 3 graded: too few to judge

    assert field_agreement_alerts_evaluate() == {"raised": 1, "resolved": 0}
    alert = SiteAgreementAlert.objects.get()
    assert (alert.site_id, alert.graded, alert.agreed, alert.resolved_at) == (low.pk, 4, 2, None)
    # Raised once: the next run finds it open.
    assert field_agreement_alerts_evaluate() == {"raised": 0, "resolved": 0}
    assert SiteAgreementAlert.objects.count() == 1

    _public_health(client, ["서울"])
    html = client.get(PAGE, RANGE).content.decode()
    assert 'role="alert"' in html
    assert "Low site: the graders confirmed the AI's next step in only 50.0%" in html
    assert "Fine site:" not in html and "Few site:" not in html
    summary = client.get(SUMMARY, RANGE).content.decode()
    assert "1 site agrees with the graders less often than 80.0%" in summary


def test_alert_resolves_when_agreement_is_back(client, alert_settings):
    grader = GraderFactory()
    site = SiteFactory(name_en="Recovering site", region="서울")
    _agreeing(site, grader, at(3, 1), 4, agree=False)
    assert field_agreement_alerts_evaluate()["raised"] == 1
    _agreeing(site, grader, at(3, 20), 4)  # the last 4 agree again
    assert field_agreement_alerts_evaluate() == {"raised": 0, "resolved": 1}
    assert SiteAgreementAlert.objects.get().resolved_at is not None
    _public_health(client, [])
    assert 'role="alert"' not in client.get(PAGE, RANGE).content.decode()


def test_alert_does_not_fire_when_agreement_is_at_the_threshold(alert_settings):
    grader = GraderFactory()
    site = SiteFactory(region="서울")
    alert_settings.FIELD_AGREEMENT_ALERT_BELOW = 0.75
    _agreeing(site, grader, at(3, 1), 3)
    _agreeing(site, grader, at(3, 2), 1, agree=False)  # 3 of 4 = 75%: not below 75%
    assert field_agreement_alerts_evaluate() == {"raised": 0, "resolved": 0}


def test_the_beat_task_runs_the_evaluation(alert_settings):
    from dashboard.tasks import field_agreement_alerts_check

    site = SiteFactory(region="서울")
    _agreeing(site, GraderFactory(), at(3, 1), 4, agree=False)
    assert field_agreement_alerts_check.apply().get() == {"raised": 1, "resolved": 0}


def test_another_regions_alert_is_not_shown(client, alert_settings):
    far = SiteFactory(name="먼 보건소", name_en="Far site", region="부산")
    _agreeing(far, GraderFactory(), at(3, 1), 4, agree=False)
    _public_health(client, ["서울"])
    assert "Far site" not in client.get(PAGE, RANGE).content.decode()


# --- the export ------------------------------------------------------------------------------


def _csv(response) -> list[dict[str, str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_csv_export_holds_images_by_reference_labels_and_model_outputs(client, world):
    _public_health(client, ["서울"])
    response = client.get(CSV_URL, RANGE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "no-store"
    assert "eyebridge-graded-set-20260201-20260331.csv" in response["Content-Disposition"]
    rows = _csv(response)
    assert len(rows) == 10  # the other region's, the open case and the January one left out
    ids = {int(r["screening_id"]) for r in rows}
    assert world.far1.pk not in ids and world.far2.pk not in ids and world.old.pk not in ids
    row = next(r for r in rows if int(r["screening_id"]) == world.tp4.pk)
    image = ScreeningImage.objects.get(screening=world.tp4, eye="left")
    assert row["left_image_id"] == str(image.pk)
    assert row["left_image_url"] == f"http://testserver/screening/images/{image.pk}/"
    assert row["left_image_sha256"] == image.sha256
    assert (row["left_image_width"], row["left_image_height"]) == ("64", "64")
    assert row["left_ai_findings"] == "G" and row["left_ai_p_G"] == "0.9"
    assert row["left_ai_p_D"] == "0.05"
    assert (row["left_label_findings"], row["left_label_dr_grade"]) == ("D", "moderate")
    assert (row["ai_triage"], row["ai_refer"], row["final_triage"], row["final_refer"]) == (
        "urgent",
        "1",
        "referable",
        "1",
    )
    assert (row["model_version"], row["camera"], row["weight"]) == ("m1", "64x64", "1.0")
    assert row["patient"] == world.tp4.patient.pseudonym
    assert world.tp4.patient.name not in response.content.decode()
    fn = next(r for r in rows if int(r["screening_id"]) == world.fn.pk)
    assert (fn["right_label_gradable"], fn["right_label_findings"]) == ("0", "")
    assert (fn["reason"], fn["sample_rate"]) == ("sample", "1.0")


def test_json_export_nests_the_eyes(client, world):
    _public_health(client, ["서울"])
    response = client.get(JSON_URL, RANGE)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["format"] == "eyebridge-graded-set/1"
    assert body["count"] == 10
    assert body["filters"] == RANGE
    record = next(r for r in body["screenings"] if r["screening_id"] == world.tn3.pk)
    assert record["ai_triage"] == "medication" and record["final_triage"] == "normal"
    assert record["final_read_role"] == "primary"
    left, right = record["eyes"]
    assert left["eye"] == "left" and right["eye"] == "right"
    assert left["ai"]["probabilities"] == _probabilities(())
    assert left["ai"]["model_version"] == "m1"
    assert left["label"] == {"gradable": True, "findings": ["N"], "dr_grade": None}
    assert right["ai"] is None  # the AI had no result for that eye
    assert right["image"]["url"].endswith(f"/images/{right['image']['id']}/")
    assert "bytes" not in json.dumps(body) and "path" not in left["image"]
    assert {r["screening_id"] for r in body["screenings"]}.isdisjoint(
        {world.far1.pk, world.far2.pk}
    )


def test_exports_are_audited_as_exports(client, world):
    from accounts.models import AuditEvent

    _public_health(client, ["서울"])
    client.get(CSV_URL, RANGE)
    client.get(JSON_URL, RANGE)
    for name in (
        "dashboard:field_performance_export_csv",
        "dashboard:field_performance_export_json",
    ):
        event = AuditEvent.objects.filter(url_name=name).latest("id")
        assert (event.action, event.object_type, event.status_code) == ("export", "dashboard", 200)
        assert event.object_ids == ["date_from=2026-02-01", "date_to=2026-03-31", "screenings=10"]


@pytest.mark.parametrize("url", [PAGE, SUMMARY, CSV_URL, JSON_URL])
def test_a_health_worker_gets_403_and_no_data(client, world, url):
    client.force_login(HealthWorkerFactory(site=world.site_a))
    response = client.get(url, RANGE)
    assert response.status_code == 403
    assert b"screening_id" not in response.content


def test_asking_for_another_regions_site_is_a_404(client, world):
    _public_health(client, ["서울"])
    assert client.get(CSV_URL, {**RANGE, "site": world.far.pk}).status_code == 404
    assert client.get(PAGE, {**RANGE, "site": world.far.pk}).status_code == 404
    assert client.get(PAGE, {"date_from": "soon"}).status_code == 400


def test_admin_export_covers_every_region(client, world):
    client.force_login(AdminFactory())
    body = json.loads(client.get(JSON_URL, RANGE).content)
    assert body["count"] == 12


# --- the page --------------------------------------------------------------------------------


def _main_text(html: str) -> str:
    main = html.split("<main", 1)[1].split(">", 1)[1].split("</main>", 1)[0]
    main = re.sub(r"<(script|style)\b.*?</\1>", " ", main, flags=re.S)
    return re.sub(r"<[^>]+>", "\n", main)


def test_page_renders_in_english(client, world):
    _public_health(client, ["서울"], language="en")
    response = client.get(PAGE, RANGE, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "Field performance: the AI against the graders" in html
    assert "80.0%" in html and "37.6%–96.4%" in html and "4 of 5" in html  # sensitivity
    assert "60.0%" in html and "23.1%–88.2%" in html  # specificity
    assert "Site A" in html and "Far site" not in html
    assert "100 × 80" in html
    assert f'href="{CSV_URL}?date_from=2026-02-01&amp;date_to=2026-03-31"' in html
    # The dashboard links here and loads the agreement figures.
    index = client.get(reverse("dashboard:index"), RANGE).content.decode()
    assert f'hx-get="{SUMMARY}?' in index and f'href="{PAGE}?' in index
    assert f'href="{PAGE}"' in index  # the nav link
    summary = client.get(SUMMARY, RANGE).content.decode()
    assert "Of 10 screenings graded by a person, the AI's next step was confirmed in 50.0%" in (
        summary
    )


def test_page_renders_in_korean_without_untranslated_text(client, world):
    _public_health(client, ["서울"], language="ko")
    response = client.get(PAGE, RANGE, HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ko">' in html
    assert "가 보건소" in html
    english = [line.strip() for line in _main_text(html).splitlines() if _english(line)]
    assert english == []
    summary = client.get(SUMMARY, RANGE, HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert [
        line for line in _main_text(f"<main>{summary}</main>").splitlines() if _english(line)
    ] == []


def test_page_query_count_does_not_grow_with_the_data(client, world, django_assert_max_num_queries):
    _public_health(client, ["서울"])
    # Session and user, the sites, 2 grouped figure queries, the alert window query and the
    # open alerts, plus the audit middleware's insert: a fixed count, whatever the cases.
    with django_assert_max_num_queries(20):
        assert client.get(PAGE, RANGE).status_code == 200
    for k in range(5):
        graded(world.site_a, grader=world.grader, ai="normal", final="normal", when=at(3, 20 + k))
    with django_assert_max_num_queries(20):
        assert client.get(PAGE, RANGE).status_code == 200
