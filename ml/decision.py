"""The refer decision for one eye, shared by the workers (``ml.ensemble``), the triage
(``screening.triage``) and the threshold search (``ml.calibration``). Pure Python, no numpy:
the web process imports it.

Each disease class ``c`` gets a *finding score* from the calibrated probabilities,

    e_c = w * q_c + (1 - w) * (1 - q_N)

the class's own probability averaged with the probability that the eye is not normal. The two
read the same picture differently: the N output sees "something is off" in eyes where no one
disease output is sure (on the calibration split the mean of the two ranks normal against
diseased eyes better than either: refer AUC 0.837 against 0.829 for the largest disease
probability and 0.824 for ``1 - q_N``; ml/MODEL_CARD.md, "The refer decision"). ``w = 1`` is
the previous rule (a class's probability against its threshold).

An eye is *flagged* (the patient referred) when some class's score reaches its threshold
(``hits``). The bundle gives every class the same threshold, so this is one decision with one
operating point; ``TriageRule`` rows and risk factors lower or raise one class's threshold on the
same scale. Because ``1 - q_N`` is shared, a clearly abnormal eye reaches the threshold on many
classes at once, so the *named* findings are the hits whose own probability is as high as only
5% of normal eyes score (``name_thresholds``); when none is, the hit that is relatively strongest
is named, so a referred eye always says what was seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml import CLASSES

DISEASES: tuple[str, ...] = tuple(c for c in CLASSES if c != "N")
DEFAULT_THRESHOLD = 0.5


def finding_score(probabilities: Mapping[str, float], code: str, disease_weight: float) -> float:
    """``e_c`` for one class of one eye (calibrated probabilities by class letter)."""
    q_c = float(probabilities[code])
    if disease_weight >= 1.0:
        return q_c
    return disease_weight * q_c + (1.0 - disease_weight) * (1.0 - float(probabilities["N"]))


def eye_findings(
    probabilities: Mapping[str, float],
    thresholds: Mapping[str, float],
    *,
    disease_weight: float = 1.0,
    name_thresholds: Mapping[str, float] | None = None,
    classes: tuple[str, ...] = DISEASES,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(hits, named)``: the classes whose finding score reaches its threshold (the eye is
    flagged when there is one), and the ones of them the result names, in class order."""
    hits = tuple(
        c
        for c in classes
        if finding_score(probabilities, c, disease_weight)
        >= float(thresholds.get(c, DEFAULT_THRESHOLD))
    )
    if not hits:
        return (), ()
    names = name_thresholds or thresholds

    def strength(c: str) -> float:
        return float(probabilities[c]) / max(1e-9, float(names.get(c, DEFAULT_THRESHOLD)))

    named = tuple(c for c in hits if strength(c) >= 1.0)
    return hits, named or (max(hits, key=strength),)


def strongest(
    probabilities: Mapping[str, float],
    named: tuple[str, ...],
    name_thresholds: Mapping[str, float],
) -> str | None:
    """The named finding furthest above its naming threshold (the one the heatmap explains)."""
    if not named:
        return None
    return max(
        named,
        key=lambda c: (
            float(probabilities[c]) / max(1e-9, float(name_thresholds.get(c, DEFAULT_THRESHOLD)))
        ),
    )


@dataclass(frozen=True)
class Decision:
    """A bundle's ``thresholds.json``: the refer thresholds (finding-score scale), the naming
    thresholds (probability scale) and the disease weight ``w``."""

    thresholds: dict[str, float]
    name_thresholds: dict[str, float]
    disease_weight: float = 1.0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        """Both layouts: ``{"thresholds": {...}, "name_thresholds": {...}, "disease_weight": w}``
        and the flat ``{class: threshold}`` of bundles before the finding score (``w = 1``,
        the thresholds name the findings too)."""
        flat = data.get("thresholds", data)
        if not isinstance(flat, Mapping):
            raise ValueError("thresholds.json: 'thresholds' is not a mapping")
        thresholds = {str(c): float(v) for c, v in flat.items() if isinstance(v, int | float)}
        names = data.get("name_thresholds") or thresholds
        weight = float(data.get("disease_weight", 1.0))
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"thresholds.json: disease_weight {weight} is not in (0, 1]")
        return cls(
            thresholds=thresholds,
            name_thresholds={str(c): float(v) for c, v in names.items()},
            disease_weight=weight,
        )

    def moved(self, thresholds: Mapping[str, float] | None) -> Decision:
        """This decision with some classes' refer thresholds moved (a patient's rules: risk
        factors, an admin's row). A moved class's naming threshold moves in proportion, so a
        risk factor that lowers D's bar by a fifth also names D on a fifth less."""
        if not thresholds:
            return self
        moved = {**self.thresholds, **{c: float(v) for c, v in thresholds.items()}}
        names = dict(self.name_thresholds)
        for c, t in thresholds.items():
            base = self.thresholds.get(c)
            if c in names and base:
                names[c] = min(0.99, names[c] * float(t) / base)
        return Decision(thresholds=moved, name_thresholds=names, disease_weight=self.disease_weight)

    def to_json(self, **extra: Any) -> dict[str, Any]:
        return {
            **extra,
            "disease_weight": self.disease_weight,
            "thresholds": self.thresholds,
            "name_thresholds": self.name_thresholds,
        }
