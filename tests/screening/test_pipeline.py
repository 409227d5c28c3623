"""Inference, idempotency and the sweeper, calling the services directly (the worker's behaviour
under delivery is tested in tests/e2e and tests/reliability)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AdminAlert
from screening import services
from screening.models import EyeResult, Screening
from tests.factories import HealthWorkerFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(fundus_jpeg, django_capture_on_commit_callbacks):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site, has_diabetes=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        screening = services.screening_submit(
            user=hw,
            patient_id=patient.id,
            left_image=SimpleUploadedFile("l.jpg", fundus_jpeg),
            right_image=SimpleUploadedFile("r.jpg", fundus_jpeg),
            symptoms=["dryness"],
        )
    assert len(callbacks) == 1  # the inference task, sent only after commit
    return screening


def test_inference_stores_results_triage_and_reasons(queued):
    assert services.screening_run_inference(screening_id=queued.id) == "completed"
    queued.refresh_from_db()
    assert queued.status == "completed" and queued.attempts == 1
    assert queued.triage and queued.reasons and queued.model_version
    results = list(EyeResult.objects.filter(screening=queued))
    assert {r.eye for r in results} == {"left", "right"}
    for r in results:
        assert set(r.probabilities) == set("NDGCAHMO")
        assert all(0.0 <= p <= 1.0 for p in r.probabilities.values())
        # A heatmap for each eye with a finding, and it says which finding it explains.
        if r.findings:
            assert r.heatmap_path.endswith(".png") and r.heatmap_class in r.findings
        else:
            assert r.heatmap_path == "" and r.heatmap_class == ""


def test_a_redelivered_task_changes_nothing(queued, django_capture_on_commit_callbacks):
    services.screening_run_inference(screening_id=queued.id)
    before = list(EyeResult.objects.filter(screening=queued).values_list("id", flat=True))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.screening_run_inference(screening_id=queued.id) == "already_finished"
    assert callbacks == []  # no second downstream step
    assert list(EyeResult.objects.filter(screening=queued).values_list("id", flat=True)) == before


def test_delivery_after_a_crash_mid_inference_completes_once(queued):
    # A worker claimed it and died: status processing, one attempt spent.
    Screening.objects.filter(pk=queued.id).update(status="processing", attempts=1)
    assert services.screening_run_inference(screening_id=queued.id) == "completed"
    queued.refresh_from_db()
    assert queued.attempts == 2
    assert EyeResult.objects.filter(screening=queued).count() == 2


def test_out_of_attempts_fails_with_one_admin_alert(queued, settings):
    Screening.objects.filter(pk=queued.id).update(
        status="processing", attempts=settings.SCREENING_MAX_ATTEMPTS
    )
    assert services.screening_run_inference(screening_id=queued.id) == "failed"
    assert services.screening_run_inference(screening_id=queued.id) == "already_finished"
    queued.refresh_from_db()
    assert queued.status == "failed"
    assert (
        AdminAlert.objects.filter(
            kind="screening_failed", object_ref=f"screening:{queued.id}"
        ).count()
        == 1
    )


def test_sweeper_requeues_stuck_and_gives_up_on_exhausted(
    queued, settings, django_capture_on_commit_callbacks
):
    old = timezone.now() - dt.timedelta(seconds=settings.SCREENING_STUCK_AFTER_SECONDS + 5)
    Screening.objects.filter(pk=queued.id).update(queued_at=old)
    hw = queued.health_worker
    exhausted = Screening.objects.create(
        site=queued.site,
        patient=queued.patient,
        health_worker=hw,
        status="processing",
        attempts=settings.SCREENING_MAX_ATTEMPTS,
        started_at=old,
    )
    fresh = Screening.objects.create(
        site=queued.site,
        patient=queued.patient,
        health_worker=hw,
        status="queued",
        queued_at=timezone.now(),
    )
    result = services.screening_sweep_stuck()
    assert result == {"requeued": 1, "failed": 1}
    exhausted.refresh_from_db()
    fresh.refresh_from_db()
    assert exhausted.status == "failed" and fresh.status == "queued"
    # The requeued one is not re-sent by the next sweep while its copy waits.
    assert services.screening_sweep_stuck() == {"requeued": 0, "failed": 0}


def test_risk_factor_rule_changes_triage(queued):
    from screening.models import TriageRule

    # With diabetes the D threshold drops to almost zero: any D probability is a finding.
    TriageRule.objects.update_or_create(
        class_code="D", risk_factor="has_diabetes", defaults={"threshold": 0.0001}
    )
    services.screening_run_inference(screening_id=queued.id)
    queued.refresh_from_db()
    assert "D" in queued.findings
    assert queued.triage in {"referable", "urgent"}
    # The patient's own thresholds decide the heatmaps too: each eye explains its finding.
    for r in EyeResult.objects.filter(screening=queued):
        assert "D" in r.findings
        assert r.heatmap_path.endswith(".png") and r.heatmap_class in r.findings


def test_queued_screenings_go_through_the_network_together(
    queued, fundus_jpeg, django_capture_on_commit_callbacks, monkeypatch
):
    from ml.ensemble import Ensemble

    others = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=False):
            others.append(
                services.screening_submit(
                    user=queued.health_worker,
                    patient_id=queued.patient_id,
                    left_image=SimpleUploadedFile("l.jpg", fundus_jpeg),
                )
            )
    calls: list[int] = []
    real = Ensemble.predict

    def counting(self, images, **kw):
        calls.append(len(images))
        return real(self, images, **kw)

    monkeypatch.setattr(Ensemble, "predict", counting)
    assert services.screening_run_inference(screening_id=queued.id) == "completed"
    assert calls == [4]  # 2 + 1 + 1 eyes in one call
    for s in others:
        s.refresh_from_db()
        assert s.status == "completed" and s.attempts == 1
        assert EyeResult.objects.filter(screening=s).count() == 1
        # Their own deliveries arrive later and change nothing.
        assert services.screening_run_inference(screening_id=s.id) == "already_finished"
    assert calls == [4]


def test_batch_size_bounds_a_delivery(
    queued, fundus_jpeg, django_capture_on_commit_callbacks, settings
):
    settings.SCREENING_BATCH_SIZE = 2
    others = []
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=False):
            others.append(
                services.screening_submit(
                    user=queued.health_worker,
                    patient_id=queued.patient_id,
                    right_image=SimpleUploadedFile("r.jpg", fundus_jpeg),
                )
            )
    services.screening_run_inference(screening_id=queued.id)
    states = [Screening.objects.get(pk=s.id).status for s in others]
    assert states.count("completed") == 1 and states.count("queued") == 2  # oldest first
    assert states[0] == "completed"


def test_the_upload_quality_result_is_passed_on_not_recomputed(queued, monkeypatch):
    import ml.ensemble

    def boom(rgb):  # the worker must reuse what the upload measured
        raise AssertionError("quality gate ran again in the worker")

    monkeypatch.setattr(ml.ensemble, "assess_quality", boom)
    assert services.screening_run_inference(screening_id=queued.id) == "completed"
    for r in EyeResult.objects.filter(screening=queued):
        image = queued.images.get(eye=r.eye)
        assert r.quality == image.quality
