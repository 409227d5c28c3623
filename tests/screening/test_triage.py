from types import SimpleNamespace

import pytest
from django.utils import translation

from ml.decision import Decision
from screening.triage import EyeInput, decide, reason_text, resolve_rules

LOW = dict.fromkeys("NDGCAHMO", 0.05) | {"N": 0.9}


def probs(**overrides: float) -> dict[str, float]:
    return LOW | overrides


def rules(**kw):
    return resolve_rules(
        model_thresholds=Decision.from_json(dict.fromkeys("DGCAHMO", 0.5)),
        rule_rows=kw.get("rows", []),
        risk_factors=kw.get("risks", set()),
    )


def test_no_finding_and_no_symptom_is_normal_with_a_reason():
    out = decide(
        eyes=[EyeInput("left", True, probs()), EyeInput("right", True, probs())],
        symptoms=[],
        rules=rules(),
    )
    assert out.triage == "normal"
    assert out.findings == []
    assert [r["code"] for r in out.reasons] == ["no_finding"]


def test_dryness_with_normal_fundus_is_medication():
    out = decide(eyes=[EyeInput("left", True, probs())], symptoms=["dryness"], rules=rules())
    assert out.triage == "medication"


def test_finding_above_threshold_is_referable_and_named_per_eye():
    out = decide(
        eyes=[EyeInput("left", True, probs(D=0.6)), EyeInput("right", True, probs())],
        symptoms=["dryness"],
        rules=rules(),
    )
    assert out.triage == "referable"
    assert out.findings == ["D"]
    assert out.eye_findings == {"left": ["D"], "right": []}


def test_very_high_probability_of_sight_threatening_class_is_urgent():
    out = decide(eyes=[EyeInput("left", True, probs(G=0.95))], symptoms=[], rules=rules())
    assert out.triage == "urgent"


def test_eye_pain_is_urgent_whatever_the_model_says():
    out = decide(eyes=[EyeInput("left", True, probs())], symptoms=["pain"], rules=rules())
    assert out.triage == "urgent"


def test_no_gradable_eye_is_ungradable():
    out = decide(eyes=[EyeInput("left", False, None)], symptoms=[], rules=rules())
    assert out.triage == "ungradable"
    assert {"code": "no_gradable_eye"} in out.reasons


def test_one_ungradable_eye_and_one_clear_eye_is_not_cleared():
    out = decide(
        eyes=[EyeInput("left", False, None), EyeInput("right", True, probs())],
        symptoms=[],
        rules=rules(),
    )
    assert out.triage == "ungradable"


def test_diabetes_lowers_the_d_threshold():
    rows = [
        SimpleNamespace(
            class_code="D",
            risk_factor="has_diabetes",
            threshold=0.3,
            urgent_threshold=None,
            referable=True,
        )
    ]
    eye = [EyeInput("left", True, probs(D=0.35))]
    assert decide(eyes=eye, symptoms=[], rules=rules(rows=rows)).triage == "normal"
    assert (
        decide(eyes=eye, symptoms=[], rules=rules(rows=rows, risks={"has_diabetes"})).triage
        == "referable"
    )


def test_admin_rule_overrides_model_card_threshold():
    rows = [
        SimpleNamespace(
            class_code="C", risk_factor="", threshold=0.8, urgent_threshold=None, referable=True
        )
    ]
    out = decide(eyes=[EyeInput("left", True, probs(C=0.7))], symptoms=[], rules=rules(rows=rows))
    assert out.triage == "normal"


def test_reasons_read_as_sentences():
    out = decide(eyes=[EyeInput("left", True, probs(D=0.6))], symptoms=[], rules=rules())
    text = reason_text(out.reasons[0])
    assert "60%" in text and "50%" in text


def score_rules(**kw):
    """The shipped kind of decision: one threshold on the finding score (w = 0.5), findings
    named from a probability of 0.3."""
    decision = Decision(
        thresholds=dict.fromkeys("DGCAHMO", 0.4),
        name_thresholds=dict.fromkeys("DGCAHMO", 0.3),
        disease_weight=0.5,
    )
    return resolve_rules(
        model_thresholds=decision,
        rule_rows=kw.get("rows", []),
        risk_factors=kw.get("risks", set()),
    )


def test_an_eye_the_model_calls_abnormal_is_referred_and_names_what_it_saw():
    # P(N) 0.1: every class's score reaches 0.4, but only D is probable enough to be named.
    out = decide(
        eyes=[EyeInput("left", True, probs(N=0.1, D=0.35))], symptoms=[], rules=score_rules()
    )
    assert out.triage == "referable"
    assert out.eye_findings == {"left": ["D"]}
    (finding,) = [r for r in out.reasons if r["code"] == "finding"]
    assert finding["score"] == round((0.35 + 0.9) / 2, 3) and finding["threshold"] == 0.4
    with translation.override("en"):
        assert "finding score 62%" in reason_text(finding)
    # Nothing probable enough to name: the relatively strongest is named, never nothing.
    vague = decide(
        eyes=[EyeInput("left", True, probs(N=0.1, G=0.2))], symptoms=[], rules=score_rules()
    )
    assert vague.triage == "referable" and vague.findings == ["G"]


def test_a_confident_normal_output_holds_back_a_moderate_disease_output():
    # D 0.6 alone would pass a 0.4 probability threshold; with P(N) 0.9 its score is 0.35.
    out = decide(
        eyes=[EyeInput("left", True, probs(N=0.9, D=0.6))], symptoms=[], rules=score_rules()
    )
    assert out.triage == "normal" and out.findings == []
    # A diabetic patient's lowered D threshold (a rule on the same scale) refers it, names it,
    # and says why.
    rows = [
        SimpleNamespace(
            class_code="D",
            risk_factor="has_diabetes",
            threshold=0.3,
            urgent_threshold=None,
            referable=True,
        )
    ]
    rules = score_rules(rows=rows, risks={"has_diabetes"})
    assert rules["D"].name_threshold == pytest.approx(0.3 * 0.3 / 0.4)
    out = decide(eyes=[EyeInput("left", True, probs(N=0.9, D=0.6))], symptoms=[], rules=rules)
    assert out.triage == "referable" and out.findings == ["D"]
    assert {r["code"] for r in out.reasons} >= {"finding", "risk_factor"}


def test_the_triage_refuses_plain_thresholds():
    with pytest.raises(TypeError):
        resolve_rules(model_thresholds={"D": 0.5}, rule_rows=[], risk_factors=set())
