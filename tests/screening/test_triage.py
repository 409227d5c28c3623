from types import SimpleNamespace

from screening.triage import EyeInput, decide, reason_text, resolve_rules

LOW = dict.fromkeys("NDGCAHMO", 0.05) | {"N": 0.9}


def probs(**overrides: float) -> dict[str, float]:
    return LOW | overrides


def rules(**kw):
    return resolve_rules(
        model_thresholds=dict.fromkeys("DGCAHMO", 0.5),
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
