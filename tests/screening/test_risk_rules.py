"""Risk factors that act out of the box (issue 16.2): the default TriageRules shipped as data,
and the result's reason when a risk factor changed the outcome."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import translation

from ml.decision import finding_score
from screening.inference import model_decision, model_thresholds
from screening.models import TriageRule
from screening.triage import EyeInput, decide, reason_plain, reason_text, resolve_rules
from tests.factories import HealthWorkerFactory, PatientFactory, ScreeningFactory

pytestmark = pytest.mark.django_db

LOW = dict.fromkeys("NDGCAHMO", 0.02) | {"N": 0.9}
MIGRATION = importlib.import_module("screening.migrations.0006_default_risk_rules")
RESCALE = importlib.import_module("screening.migrations.0007_risk_rules_finding_score")
# The shipped rows' values on the finding-score scale (0007 moved them there).
SHIPPED = {(c, r): new for c, r, _old, new in RESCALE.MOVES}
LOWERED_D = SHIPPED[("D", "has_diabetes")]
LOWERED_G = SHIPPED[("G", "family_history_glaucoma")]


def at_score(code: str, score: float, q_n: float = 0.5) -> dict[str, float]:
    """Probabilities that give class ``code`` the finding score ``score`` under the shipped
    decision (ml.decision), with P(N) at ``q_n``."""
    w = model_decision().disease_weight
    q = (score - (1 - w) * (1 - q_n)) / w
    assert 0 < q < 1, (code, score, q)
    probs = {"N": q_n, code: q}
    assert finding_score(LOW | probs, code, w) == pytest.approx(score)
    return probs


def between(code: str, low: float) -> dict[str, float]:
    """A score halfway between the lowered and the shared threshold of ``code``."""
    return at_score(code, (low + model_thresholds()[code]) / 2)


def rules_for(*risk_factors: str):
    return resolve_rules(
        model_thresholds=model_decision(),
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
    RESCALE.forwards(django_apps, None)


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
        assert rows == SHIPPED
        # Both lower the bundle's shared threshold (ml/MODEL_CARD.md, "The refer decision").
        shared = model_thresholds()
        assert rows[("D", "has_diabetes")] < shared["D"]
        assert rows[("G", "family_history_glaucoma")] < shared["G"]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_data_migration_is_idempotent_and_keeps_an_admins_value():
    RESCALE.backwards(django_apps, None)  # the rows as 0006 wrote them
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


def test_the_rescaling_migration_moves_only_the_shipped_values():
    TriageRule.objects.filter(class_code="D", risk_factor="has_diabetes").update(threshold=0.20)
    TriageRule.objects.filter(class_code="G", risk_factor="family_history_glaucoma").update(
        threshold=0.1  # an admin's own value
    )
    RESCALE.forwards(django_apps, None)
    RESCALE.forwards(django_apps, None)
    rows = {(r.class_code, r.risk_factor): r.threshold for r in TriageRule.objects.all()}
    assert rows == {("D", "has_diabetes"): LOWERED_D, ("G", "family_history_glaucoma"): 0.1}
    RESCALE.backwards(django_apps, None)
    assert TriageRule.objects.get(class_code="D").threshold == 0.20


def test_diabetes_lowers_the_d_threshold_out_of_the_box():
    assert rules_for("has_diabetes")["D"].threshold == pytest.approx(LOWERED_D)
    assert rules_for()["D"].threshold == pytest.approx(model_thresholds()["D"])
    assert rules_for("has_diabetes")["G"].threshold == pytest.approx(model_thresholds()["G"])
    assert rules_for("family_history_glaucoma")["G"].threshold == pytest.approx(LOWERED_G)
    # An eye between the lowered and the shared D threshold: a finding for a diabetic
    # patient, not for anyone else.
    assert triage(between("D", LOWERED_D), "has_diabetes").triage == "referable"
    assert triage(between("D", LOWERED_D)).triage == "normal"
    assert triage(between("G", LOWERED_G), "family_history_glaucoma").findings == ["G"]
    assert triage(between("G", LOWERED_G), "has_diabetes").findings == []


def test_the_risk_factor_reason_appears_only_when_it_changed_the_outcome():
    changed = triage(between("D", LOWERED_D), "has_diabetes")
    risk = [r for r in changed.reasons if r["code"] == "risk_factor"]
    assert risk == [
        {
            "code": "risk_factor",
            "risk_factor": "has_diabetes",
            "class": "D",
            "from": round(model_thresholds()["D"], 3),
            "to": LOWERED_D,
        }
    ]
    with translation.override("en"):
        # The shared threshold is the shipped bundle's, whatever it is.
        shared = f"{100 * model_thresholds()['D']:.0f}%"
        assert reason_text(risk[0]) == (
            f"Diabetes lowered the diabetic retinopathy threshold from {shared} to "
            f"{100 * LOWERED_D:.0f}%: without it, this would not be a finding"
        )
        assert "diabetes" in reason_plain(risk[0]) and "%" not in reason_plain(risk[0])
    with translation.override("ko"):
        assert "당뇨" in reason_text(risk[0])

    # Found at the shared threshold anyway: the risk factor changed nothing, nothing is said.
    anyway = triage(at_score("D", model_thresholds()["D"] + 0.05), "has_diabetes")
    assert anyway.findings == ["D"]
    assert not [r for r in anyway.reasons if r["code"] == "risk_factor"]
    # Below even the lowered threshold, or a patient without the factor: nothing either.
    for outcome in (
        triage(at_score("D", LOWERED_D - 0.03), "has_diabetes"),
        triage(between("D", LOWERED_D)),
    ):
        assert not [r for r in outcome.reasons if r["code"] == "risk_factor"]
    # Both eyes found only because of diabetes: said once.
    both = decide(
        eyes=[
            EyeInput("left", True, LOW | between("D", LOWERED_D)),
            EyeInput("right", True, LOW | at_score("D", LOWERED_D + 0.005)),
        ],
        symptoms=[],
        rules=rules_for("has_diabetes"),
    )
    assert [r["code"] for r in both.reasons].count("risk_factor") == 1


def test_the_result_page_says_a_risk_factor_changed_the_outcome(client):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site, has_diabetes=True)
    outcome = triage(between("D", LOWERED_D), "has_diabetes")
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
    lowered = f"{100 * LOWERED_D:.0f}%"
    assert f"Diabetes lowered the diabetic retinopathy threshold from {shared} to {lowered}" in body
    assert "Because of diabetes, weaker signs of diabetic retinopathy count" in body
