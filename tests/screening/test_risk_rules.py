"""Risk factors that act out of the box (issue 16.2): the default TriageRules shipped as data,
and the result's reason when a risk factor changed the outcome."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import translation

from screening.inference import model_thresholds
from screening.models import TriageRule
from screening.triage import EyeInput, decide, reason_plain, reason_text, resolve_rules
from tests.factories import HealthWorkerFactory, PatientFactory, ScreeningFactory

pytestmark = pytest.mark.django_db

LOW = dict.fromkeys("NDGCAHMO", 0.02) | {"N": 0.9}
MIGRATION = importlib.import_module("screening.migrations.0006_default_risk_rules")


def rules_for(*risk_factors: str):
    return resolve_rules(
        model_thresholds=model_thresholds(),
        rule_rows=TriageRule.objects.all(),
        risk_factors=set(risk_factors),
    )


def triage(probabilities: dict, *risk_factors: str):
    return decide(
        eyes=[EyeInput("left", True, LOW | probabilities), EyeInput("right", True, LOW)],
        symptoms=[],
        rules=rules_for(*risk_factors),
    )


@pytest.fixture(autouse=True)
def shipped_rules():
    """The shipped rows, as the migration writes them. A test database kept between runs
    (--reuse-db) has lost them to the flush after the last transaction=True test; the migration's
    own function (idempotent) puts them back."""
    MIGRATION.add_default_rules(django_apps, None)


@pytest.mark.django_db(transaction=True)
def test_the_default_rules_exist_after_migrate():
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("screening", "0005_recall")])
        TriageRule.objects.all().delete()  # a database that never had them
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        rows = {
            (r.class_code, r.risk_factor): r.threshold
            for r in TriageRule.objects.exclude(risk_factor="")
        }
        assert rows == {("D", "has_diabetes"): 0.20, ("G", "family_history_glaucoma"): 0.18}
        # Both lower the bundle's shared threshold (the model card's 0.283).
        shared = model_thresholds()
        assert rows[("D", "has_diabetes")] < shared["D"]
        assert rows[("G", "family_history_glaucoma")] < shared["G"]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_data_migration_is_idempotent_and_keeps_an_admins_value():
    TriageRule.objects.filter(class_code="G", risk_factor="family_history_glaucoma").update(
        threshold=0.1
    )
    MIGRATION.add_default_rules(django_apps, None)
    MIGRATION.add_default_rules(django_apps, None)
    assert TriageRule.objects.exclude(risk_factor="").count() == 2
    assert (
        TriageRule.objects.get(class_code="G", risk_factor="family_history_glaucoma").threshold
        == 0.1
    )
    # Reversing removes only what still holds the shipped value.
    MIGRATION.remove_default_rules(django_apps, None)
    assert list(
        TriageRule.objects.exclude(risk_factor="").values_list("class_code", flat=True)
    ) == ["G"]
    TriageRule.objects.all().delete()
    MIGRATION.add_default_rules(django_apps, None)
    assert TriageRule.objects.count() == 2


def test_diabetes_lowers_the_d_threshold_out_of_the_box():
    assert rules_for("has_diabetes")["D"].threshold == pytest.approx(0.20)
    assert rules_for()["D"].threshold == pytest.approx(model_thresholds()["D"])
    assert rules_for("has_diabetes")["G"].threshold == pytest.approx(model_thresholds()["G"])
    assert rules_for("family_history_glaucoma")["G"].threshold == pytest.approx(0.18)
    # An eye with D at 24 %: a finding for a diabetic patient, not for anyone else.
    assert triage({"D": 0.24}, "has_diabetes").triage == "referable"
    assert triage({"D": 0.24}).triage == "normal"
    assert triage({"G": 0.2}, "family_history_glaucoma").findings == ["G"]
    assert triage({"G": 0.2}, "has_diabetes").findings == []


def test_the_risk_factor_reason_appears_only_when_it_changed_the_outcome():
    changed = triage({"D": 0.24}, "has_diabetes")
    risk = [r for r in changed.reasons if r["code"] == "risk_factor"]
    assert risk == [
        {
            "code": "risk_factor",
            "risk_factor": "has_diabetes",
            "class": "D",
            "from": round(model_thresholds()["D"], 3),
            "to": 0.2,
        }
    ]
    with translation.override("en"):
        # The shared threshold is the shipped bundle's, whatever it is.
        shared = f"{100 * model_thresholds()['D']:.0f}%"
        assert reason_text(risk[0]) == (
            f"Diabetes lowered the diabetic retinopathy threshold from {shared} to 20%: without "
            "it, this would not be a finding"
        )
        assert "diabetes" in reason_plain(risk[0]) and "%" not in reason_plain(risk[0])
    with translation.override("ko"):
        assert "당뇨" in reason_text(risk[0])

    # Found at the shared threshold anyway: the risk factor changed nothing, nothing is said.
    anyway = triage({"D": 0.5}, "has_diabetes")
    assert anyway.findings == ["D"]
    assert not [r for r in anyway.reasons if r["code"] == "risk_factor"]
    # Below even the lowered threshold, or a patient without the factor: nothing either.
    for outcome in (triage({"D": 0.15}, "has_diabetes"), triage({"D": 0.24})):
        assert not [r for r in outcome.reasons if r["code"] == "risk_factor"]
    # Both eyes found only because of diabetes: said once.
    both = decide(
        eyes=[
            EyeInput("left", True, LOW | {"D": 0.24}),
            EyeInput("right", True, LOW | {"D": 0.22}),
        ],
        symptoms=[],
        rules=rules_for("has_diabetes"),
    )
    assert [r["code"] for r in both.reasons].count("risk_factor") == 1


def test_the_result_page_says_a_risk_factor_changed_the_outcome(client):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site, has_diabetes=True)
    outcome = triage({"D": 0.24}, "has_diabetes")
    screening = ScreeningFactory(
        patient=patient,
        health_worker=hw,
        triage=outcome.triage,
        reasons=outcome.reasons,
        findings=outcome.findings,
    )
    client.force_login(hw)
    body = client.get(
        f"/screening/screenings/{screening.pk}/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    shared = f"{100 * model_thresholds()['D']:.0f}%"
    assert f"Diabetes lowered the diabetic retinopathy threshold from {shared} to 20%" in body
    assert "Because of diabetes, weaker signs of diabetic retinopathy count" in body
