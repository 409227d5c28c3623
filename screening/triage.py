"""From per-eye probabilities to the patient's next step.

The rules, in order (the first that applies wins; each adds its reasons):
1. No gradable eye -> ``ungradable``: referral for an in-person examination (a retake has already
   been refused by the quality gate, the health worker submitted anyway).
2. A finding (probability >= its threshold) whose probability also reaches the class's urgent
   threshold, or an alarm symptom (sudden loss of vision, eye pain: retinal detachment and acute
   angle-closure glaucoma cannot wait) -> ``urgent``.
3. Any referable finding in either eye, or a symptom that needs an examination (floaters, blurred
   vision, discharge) -> ``referable``.
4. One eye ungradable and the other without findings -> ``ungradable`` (that eye is not cleared).
5. Symptoms a pharmacist can treat with an OTC eye product (dryness, itching, redness without
   pain) -> ``medication``.
6. Otherwise ``normal``: rescreen in 12 months.

Thresholds: the bundle's ``thresholds.json`` is one refer decision, not seven (``ml.decision``).
Each class gets a finding score, its probability averaged with the probability that the eye is
not normal, and every class shares one threshold chosen on held-out calibration data for the
patient-level trade-off (``ml.calibration``; the model card's refer ROC), so "any finding in either
eye" is that decision. Of the classes that reach it, the result names those probable enough on
their own (the bundle's naming thresholds), or else the strongest, which also picks the specialty.
Admins override a class's threshold with ``TriageRule`` rows; a rule with a risk factor lowers it
for patients who have it (diabetes -> D, family history of glaucoma -> G): a missed case costs
them more, so we accept more false positives there. Two such rows ship as data (migrations 0006
and 0007, values read off the calibration split). A finding that only the lowered threshold
made gets a ``risk_factor`` reason beside it ("diabetes lowered the D threshold from 37% to
32%"), so the result says when a risk factor changed the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from ml.decision import Decision, eye_findings, finding_score
from screening.models import CLASS_CODES, CLASS_NAMES, RiskFactor, Symptom, Triage

DISEASE_CLASSES = tuple(c for c in CLASS_CODES if c != "N")
ALARM_SYMPTOMS = {Symptom.SUDDEN_VISION_LOSS, Symptom.PAIN}
EXAM_SYMPTOMS = {Symptom.FLOATERS, Symptom.BLURRED_VISION, Symptom.DISCHARGE}
TREATABLE_SYMPTOMS = {Symptom.DRYNESS, Symptom.ITCHING, Symptom.REDNESS}
DEFAULT_THRESHOLD = 0.5
# Above these the model is confident of sight-threatening disease; below them a routine referral
# within weeks is safe. Cataract, myopia and "other" are never urgent on the image alone.
DEFAULT_URGENT = {"D": 0.85, "G": 0.85, "A": 0.85, "H": 0.9}


@dataclass(frozen=True)
class Rule:
    threshold: float
    urgent_threshold: float | None
    referable: bool = True
    # Where a risk-factor rule lowered the threshold: the one it would otherwise have, and the
    # factor that lowered it (a Patient field name), so the result can say when that mattered.
    base_threshold: float | None = None
    risk_factor: str = ""
    # The bundle's refer decision (ml.decision): the probability a finding needs to be named
    # (moved with the threshold when a rule moves it) and the disease weight of the score.
    name_threshold: float | None = None
    disease_weight: float = 1.0


@dataclass(frozen=True)
class EyeInput:
    eye: str
    gradable: bool
    probabilities: Mapping[str, float] | None  # None when the eye was not photographed/analysed


@dataclass
class TriageResult:
    triage: str
    reasons: list[dict] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    eye_findings: dict[str, list[str]] = field(default_factory=dict)


def resolve_rules(
    *,
    model_thresholds: Decision,
    rule_rows: Iterable,  # TriageRule-like objects: class_code, risk_factor, threshold, urgent_threshold, referable
    risk_factors: set[str],
) -> dict[str, Rule]:
    """Each class's rule for one patient. ``model_thresholds``: the bundle's decision
    (``screening.inference.model_decision()``; a plain mapping would lose its disease weight)."""
    if not isinstance(model_thresholds, Decision):
        raise TypeError("resolve_rules needs the bundle's Decision, not a mapping of thresholds")
    decision = model_thresholds
    rows = list(rule_rows)
    rules: dict[str, Rule] = {}
    for code in DISEASE_CLASSES:
        model_t = float(decision.thresholds.get(code, DEFAULT_THRESHOLD))
        threshold = model_t
        urgent = DEFAULT_URGENT.get(code)
        referable = True
        for row in rows:
            if row.class_code != code or row.risk_factor:
                continue
            if row.threshold is not None:
                threshold = row.threshold
            if row.urgent_threshold is not None:
                urgent = row.urgent_threshold
            referable = row.referable
        base = threshold
        lowered_by = ""
        for row in sorted(rows, key=lambda r: r.risk_factor or ""):
            if (
                row.class_code == code
                and row.risk_factor in risk_factors
                and row.threshold is not None
                and row.threshold < threshold
            ):
                threshold, lowered_by = row.threshold, row.risk_factor
        name = decision.moved({code: threshold}).name_thresholds.get(code, threshold)
        rules[code] = Rule(
            threshold=threshold,
            urgent_threshold=urgent,
            referable=referable,
            base_threshold=base if lowered_by else None,
            risk_factor=lowered_by,
            name_threshold=name,
            disease_weight=decision.disease_weight,
        )
    return rules


def decide(
    *, eyes: list[EyeInput], symptoms: Iterable[str], rules: Mapping[str, Rule]
) -> TriageResult:
    symptoms = set(symptoms)
    result = TriageResult(triage=Triage.NORMAL)
    graded = [e for e in eyes if e.gradable and e.probabilities is not None]
    ungraded = [e for e in eyes if not e.gradable]
    urgent = False
    referable = False

    for eye in graded:
        probabilities = cast(Mapping[str, float], eye.probabilities)  # graded: never None
        weight = next(iter(rules.values())).disease_weight if rules else 1.0
        _hits, named = eye_findings(
            probabilities,
            {c: r.threshold for c, r in rules.items()},
            disease_weight=weight,
            name_thresholds={
                c: (r.name_threshold if r.name_threshold is not None else r.threshold)
                for c, r in rules.items()
            },
            classes=tuple(c for c in DISEASE_CLASSES if c in rules),
        )
        found = list(named)
        for code in found:
            p = float(probabilities[code])
            score = finding_score(probabilities, code, weight)
            rule = rules[code]
            reason = {
                "code": "finding",
                "eye": eye.eye,
                "class": code,
                "probability": round(p, 3),
                "threshold": round(rule.threshold, 3),
            }
            if weight < 1.0:
                reason["score"] = round(score, 3)
            if rule.urgent_threshold is not None and p >= rule.urgent_threshold:
                urgent = True
                reason["urgent"] = True
            if rule.referable:
                referable = True
            result.reasons.append(reason)
            if rule.base_threshold is not None and score < rule.base_threshold:
                # A finding only because of the patient's risk factor: say so, once per class.
                risk_reason = {
                    "code": "risk_factor",
                    "risk_factor": rule.risk_factor,
                    "class": code,
                    "from": round(rule.base_threshold, 3),
                    "to": round(rule.threshold, 3),
                }
                if risk_reason not in result.reasons:
                    result.reasons.append(risk_reason)
        result.eye_findings[eye.eye] = found
        for code in found:
            if code not in result.findings:
                result.findings.append(code)

    for symptom in sorted(symptoms & ALARM_SYMPTOMS):
        urgent = True
        result.reasons.append({"code": "alarm_symptom", "symptom": symptom})
    exam = sorted(symptoms & EXAM_SYMPTOMS)
    for symptom in exam:
        referable = True
        result.reasons.append({"code": "exam_symptom", "symptom": symptom})
    for eye in ungraded:
        result.reasons.append({"code": "ungradable_eye", "eye": eye.eye})

    if not graded:
        result.triage = Triage.URGENT if urgent else Triage.UNGRADABLE
        if not urgent:
            result.reasons.append({"code": "no_gradable_eye"})
    elif urgent:
        result.triage = Triage.URGENT
    elif referable:
        result.triage = Triage.REFERABLE
    elif ungraded:
        result.triage = Triage.UNGRADABLE
    elif symptoms & TREATABLE_SYMPTOMS:
        result.triage = Triage.MEDICATION
        for symptom in sorted(symptoms & TREATABLE_SYMPTOMS):
            result.reasons.append({"code": "treatable_symptom", "symptom": symptom})
    else:
        result.reasons.append({"code": "no_finding"})
    return result


def reason_text(reason: Mapping | str) -> str:
    """A reason as a sentence in the active language.

    Reasons stored as plain sentences (older screenings, manual entries) are shown as they are.
    """
    if isinstance(reason, str):
        return reason
    code = reason.get("code")
    eye = {"left": _("left eye"), "right": _("right eye")}.get(reason.get("eye", ""), "")
    symptom = dict(Symptom.choices).get(reason.get("symptom", ""), reason.get("symptom", ""))
    if code == "finding":
        values = {
            "eye": eye,
            "name": CLASS_NAMES.get(reason.get("class", ""), reason.get("class", "")),
            "p": 100 * float(reason.get("probability", 0)),
            "s": 100 * float(reason.get("score", 0)),
            "t": 100 * float(reason.get("threshold", 0)),
        }
        if "score" in reason:
            text = (
                _(
                    "%(eye)s: %(name)s (probability %(p).0f%%, finding score %(s).0f%%, "
                    "threshold %(t).0f%%)"
                )
                % values
            )
        else:  # results stored before the finding score: probability against threshold
            text = _("%(eye)s: %(name)s (probability %(p).0f%%, threshold %(t).0f%%)") % values
        if reason.get("urgent"):
            text += " — " + _("high probability: urgent")
        return text
    if code == "risk_factor":
        return _(
            "%(factor)s lowered the %(name)s threshold from %(from).0f%% to %(to).0f%%: "
            "without it, this would not be a finding"
        ) % {
            "factor": _risk_factor_label(reason.get("risk_factor", "")),
            "name": _in_sentence(CLASS_NAMES.get(reason.get("class", ""), reason.get("class", ""))),
            "from": 100 * float(reason.get("from", 0)),
            "to": 100 * float(reason.get("to", 0)),
        }
    if code == "alarm_symptom":
        return _("Alarm symptom: %(symptom)s needs urgent examination") % {"symptom": symptom}
    if code == "exam_symptom":
        return _("Symptom needs an examination: %(symptom)s") % {"symptom": symptom}
    if code == "ungradable_eye":
        return _("%(eye)s: photo not gradable, examine in person") % {"eye": eye}
    if code == "no_gradable_eye":
        return _("No gradable photo after a retake: refer for an in-person examination")
    if code == "treatable_symptom":
        return _("Symptom a pharmacist can treat: %(symptom)s") % {"symptom": symptom}
    if code == "no_finding":
        return _("No finding above threshold in either eye: rescreen in 12 months")
    # An unknown code: its own text if it carries one, never the dict's repr.
    return str(reason.get("text") or code or "")


def _risk_factor_label(factor: str) -> str:
    return str(dict(RiskFactor.choices).get(factor, factor))


def _in_sentence(name: object) -> str:
    """The class names are capitalised labels ("Diabetic retinopathy"); mid-sentence they read in
    lower case. Korean has no case, so only the languages that do are touched."""
    return str(name).lower() if (get_language() or "").startswith("en") else str(name)


def reason_plain(reason: Mapping | str) -> str:
    """A reason in the words a health worker tells the patient: what was seen and where, without
    the probabilities and thresholds (those are for clinicians, behind the result page's details)."""
    if not isinstance(reason, str) and reason.get("code") == "risk_factor":
        return _("Because of %(factor)s, weaker signs of %(name)s count for this patient") % {
            "factor": _in_sentence(_risk_factor_label(reason.get("risk_factor", ""))),
            "name": _in_sentence(CLASS_NAMES.get(reason.get("class", ""), reason.get("class", ""))),
        }
    if isinstance(reason, str) or reason.get("code") != "finding":
        return reason_text(reason)
    eye = reason.get("eye", "")
    name = CLASS_NAMES.get(reason.get("class", ""), reason.get("class", ""))
    if reason.get("urgent"):
        texts = {
            "left": _("Strong signs of %(name)s in the left eye"),
            "right": _("Strong signs of %(name)s in the right eye"),
        }
    else:
        texts = {
            "left": _("Signs of %(name)s in the left eye"),
            "right": _("Signs of %(name)s in the right eye"),
        }
    text = texts.get(eye, _("Signs of %(name)s"))
    return text % {"name": _in_sentence(name)}


def next_step_text(triage: str) -> str:
    texts: dict[str, str] = {
        Triage.NORMAL: _("Rescreen in 12 months."),
        Triage.MEDICATION: _("A pharmacist will review the proposed medication."),
        Triage.REFERABLE: _("Refer to an eye clinic (routine)."),
        Triage.URGENT: _("Urgent referral: the patient should see an eye doctor within 24 hours."),
        Triage.UNGRADABLE: _("Refer for an in-person eye examination."),
    }
    return texts.get(triage, "")
