"""The grading loop in a real browser (Debian's Chromium through Playwright), in Korean: a grader
reads a referred screening and disagrees with the AI, a second grader disagrees with the first,
and an arbitrator settles it. The unsent referral the AI proposed is withdrawn, and the health
worker's result page says the grader changed the result.

The screening is stored as the pipeline stores one (the fundus photo through screening.uploads,
the AI's result as EyeResult rows, the case opened by grading's own rule): the model's reading is
not what this journey tests, and tests/e2e runs the model end to end. The read page's screenshot
is docs/screenshots/grading-read-ko.png.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import chromium, shots  # noqa: F401 - fixtures
from tests.e2e.test_browser_journeys import (  # noqa: F401 - `demo` is a fixture
    check_page,
    demo,
    new_page,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "grading-read-ko.png"


@pytest.fixture
def eager(inline_tasks):
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield inline_tasks
    app.conf.task_always_eager = previous


def _referred_screening(fundus_jpeg: bytes):
    """A finished screening of a demo patient that the AI referred for diabetic retinopathy,
    with an earlier normal screening of the same patient, its case open and its referral
    proposed (nothing sent yet)."""
    import datetime as dt

    import cv2
    import numpy as np

    from accounts.models import User
    from grading.services import grading_case_open
    from referrals.services import referral_propose_for_screening
    from screening import uploads
    from screening.models import EyeResult, ScreeningImage
    from tests.factories import PatientFactory, ScreeningFactory

    chw = User.objects.get(username="chw")
    site = chw.site_membership.site
    patient = PatientFactory(site=site, name="김영희", has_diabetes=True, has_hypertension=True)
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(fundus_jpeg, np.uint8), 1), cv2.COLOR_BGR2RGB)
    photo = uploads.store_bytes(fundus_jpeg, suffix=".jpg", subdir="fundus", rgb=rgb)
    heat = cv2.applyColorMap(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLORMAP_JET)
    ok, png = cv2.imencode(".png", cv2.resize(heat, (448, 448)))
    assert ok
    heatmap = uploads.store_bytes(png.tobytes(), suffix=".png", subdir="heatmaps")

    def screening(triage: str, findings: list[str], days_ago: int, p_d: float):
        s = ScreeningFactory(
            patient=patient,
            site=site,
            health_worker=chw,
            triage=triage,
            findings=findings,
            symptoms=["blurred_vision"] if findings else [],
            reasons=[
                {
                    "code": "finding",
                    "eye": "right",
                    "class": "D",
                    "probability": p_d,
                    "threshold": 0.5,
                }
            ]
            if findings
            else [{"code": "no_finding"}],
            model_version="demo",
        )
        s.created_at = s.completed_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
        s.save()
        for eye in ("right", "left"):
            ScreeningImage.objects.create(
                screening=s,
                eye=eye,
                path=photo.path,
                sha256=photo.sha256,
                width=photo.width,
                height=photo.height,
                gradable=True,
            )
            found = findings if eye == "right" else []
            EyeResult.objects.create(
                screening=s,
                eye=eye,
                probabilities={
                    "N": round(1 - p_d, 3),
                    "D": p_d,
                    "G": 0.04,
                    "C": 0.03,
                    "A": 0.02,
                    "H": 0.05,
                    "M": 0.01,
                    "O": 0.03,
                },
                top_class="D" if found else "N",
                findings=found,
                heatmap_path=heatmap.path if found else "",
                heatmap_class="D" if found else "",
                model_version="demo",
            )
        return s

    screening("normal", [], 400, 0.12)
    referred = screening("referable", ["D"], 0, 0.61)
    case = grading_case_open(screening_id=referred.pk)
    assert case is not None and case.reason == "referable"
    proposal = referral_propose_for_screening(screening_id=referred.pk)
    assert proposal is not None and proposal.status == "proposed"
    return referred, proposal


def _save_doc_screenshot(page) -> None:
    """The whole read page for docs/grading.md, in 128 colours: a quarter of the bytes of the
    raw capture (two full-size photos), and still sharp where it matters, the text."""
    import io

    from PIL import Image

    raw = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    raw.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        SCREENSHOT, optimize=True
    )


def _read(
    page, screening_id: int, *, next_step: str, findings=(), dr_grade: str = "", note: str = ""
) -> None:
    page.click(f"a[href='/grading/screenings/{screening_id}/']")
    page.wait_for_url(f"**/grading/screenings/{screening_id}/")
    for code in findings:
        page.check(f"input[name=right_findings][value={code}]")
    if dr_grade:
        page.select_option("#id_right_dr_grade", dr_grade)
    page.check(f"input[name=next_step][value={next_step}]")
    if note:
        page.fill("#id_note", note)


def _submit(page) -> None:
    page.click("form.grading-form button[type=submit]")
    page.wait_for_url(re.compile(r"/grading/$"))


def test_a_disagreement_goes_to_arbitration_in_the_browser(
    chromium,  # noqa: F811 - the fixture imported above
    live_server,
    demo,  # noqa: F811 - the fixture imported above
    eager,
    fundus_jpeg,
    shots,  # noqa: F811 - the fixture imported above
):
    from grading.models import GradingCase
    from referrals.models import Referral
    from screening.models import Screening

    shot = shots("ko", "grading")
    screening, proposal = _referred_screening(fundus_jpeg)

    # 1. The first grader opens the queue, reads the photos (zooming in) and disagrees with the
    #    AI: nothing to refer.
    page = new_page(chromium, live_server, "desktop")
    sign_in(page, "grader", "ko", next_url="/grading/")
    check_page(page, "ko", shot, "queue")
    assert page.locator(f"a[href='/grading/screenings/{screening.pk}/']").count() == 1
    _read(page, screening.pk, next_step="normal", note="출혈 없음, 정상 소견")
    frame = page.locator(".zoom-frame").first
    before = frame.locator("img").evaluate("img => img.clientWidth")
    page.locator("[data-zoom-step='1']").first.click()
    page.locator("[data-zoom-step='1']").first.click()
    assert frame.locator("img").evaluate("img => img.clientWidth") > 1.5 * before
    page.locator("[data-zoom-fit]").first.click()
    page.locator("img[src*='/screening/heatmaps/']").first.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.images].every(img => img.complete && img.naturalWidth > 0)"
    )
    page.evaluate("window.scrollTo(0, 0)")
    check_page(page, "ko", shot, "read-primary")
    _save_doc_screenshot(page)
    _submit(page)
    assert GradingCase.objects.get(screening=screening).stage == "secondary"
    page.context.close()

    # 2. The second grader (who does not see the first read) finds moderate diabetic retinopathy:
    #    refer. The two graders disagree on the refer question: arbitration.
    page = new_page(chromium, live_server, "desktop")
    sign_in(page, "grader2", "ko", next_url="/grading/")
    _read(page, screening.pk, next_step="referable", findings=["D"], dr_grade="moderate")
    assert page.locator("#reads-h").count() == 0
    _submit(page)
    assert GradingCase.objects.get(screening=screening).stage == "arbitration"
    page.context.close()

    # 3. The arbitrator sees both reads and settles it: no referable disease.
    page = new_page(chromium, live_server, "desktop")
    sign_in(page, "grader3", "ko", next_url="/grading/")
    _read(page, screening.pk, next_step="normal", note="중재: 정상")
    assert page.locator("#reads-h + table tbody tr").count() == 2
    check_page(page, "ko", shot, "read-arbitration")
    _submit(page)
    case = GradingCase.objects.get(screening=screening)
    assert (case.stage, case.final_read.grader.username, case.final_read.role) == (
        "final",
        "grader3",
        "arbitration",
    )
    stored = Screening.objects.get(pk=screening.pk)
    assert (stored.triage, stored.final_triage, stored.final_source) == (
        "referable",
        "normal",
        "grader",
    )
    # The AI's unsent proposal is withdrawn.
    assert Referral.objects.get(pk=proposal.pk).status == "cancelled"
    page.context.close()

    # 4. The health worker's result page says the grader changed the result.
    page = new_page(chromium, live_server, "desktop")
    sign_in(page, "chw", "ko")
    page.goto(f"/screening/screenings/{screening.pk}/")
    panel = page.locator(".grading-panel").inner_text()
    assert "grader3" in panel or "하준" in panel, panel
    check_page(page, "ko", shot, "result-changed")
    page.context.close()
