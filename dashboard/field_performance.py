"""Field performance of the AI: its refer decision against the final human read, live.

Definitions (docs/grading.md, "Field performance"):

* **The graded set** is the screenings whose grading case is final (``GradingCase.stage ==
  "final"``), at a site the user may see, created in the chosen range (like the rest of the
  dashboard, screenings count by the day they were created).
* **The refer decision** answers one question: must the patient see an eye doctor? Referable,
  urgent and ungradable say yes; normal and medication say no (screening.result_of_record.
  is_referable). The AI's answer is ``GradingCase.ai_refer`` (copied when the case opened), the
  truth is the final human read's answer, ``GradingCase.final_refer`` (the read that settled
  the case: the primary read that agreed with the AI, the second read that agreed with the
  primary, or the arbitration).
* **Sensitivity** = of the screenings the final read refers, the share the AI referred;
  **specificity** = of those it does not refer, the share the AI did not refer.
* **Per class**, per eye: the AI found class c when c is in that eye's ``EyeResult.findings``;
  the truth is c in the final read's ``EyeRead.findings`` for the same eye. Only eyes that both
  the AI and the final grader graded count (an eye the AI had no result for, or the grader
  called ungradable, has nothing to compare).
* **Weights.** Every screening the AI referred is read; of those it did not refer only a sample
  (``GradingCase.sample_rate``, e.g. 10%) is. Counted as they are, the graded set would
  undercount the AI's true negatives and its misses tenfold: specificity would look far worse
  and sensitivity better than they are. Each sampled case therefore stands for 1/sample_rate
  screenings (inverse-probability weights, the Begg-Greenes correction for verification bias).
  The Wilson interval is taken at the weights' effective sample size (Kish: (sum w)^2 / sum w^2),
  so with every weight 1 it is the plain Wilson interval of k out of n.
* **Agreement** is the share of graded screenings whose final next step equals the AI's (the
  exact triage, not only the refer question), unweighted: it describes the cases graders read,
  and a site's agreement over its last ``FIELD_AGREEMENT_MIN_GRADED`` graded screenings falling
  below ``FIELD_AGREEMENT_ALERT_BELOW`` raises the alert (dashboard.field_performance_services).

No screening records its camera (the photos' EXIF is stripped on upload, screening/uploads.py),
so "per camera" groups by what the platform keeps: the photo's pixel size, which tells camera
models and phone adaptors apart well enough to spot a new one.

The figures come from two grouped queries (refer decision, per class), whatever the number of
screenings; Python adds up the grouped rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateField,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Concat, RowNumber, TruncMonth
from django.utils import timezone

from dashboard.scope import DashboardFilters, DashboardScope
from grading.models import CaseReason, CaseStage, EyeRead, GradingCase
from screening.models import EyeResult, ScreeningImage
from screening.result_of_record import FINDING_CODES

# z for a two-sided 95% interval.
Z95 = 1.959963984540054


# --- statistics ------------------------------------------------------------------------------
def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` (possibly effective, not
    whole) observations. Unlike p +- z*se it stays inside [0, 1] and does not collapse to a
    point at 0% or 100%, which small sites hit all the time."""
    if n <= 0:
        return 0.0, 1.0
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Proportion:
    """A share counted case by case: ``k`` of ``n`` cases (raw), and the same with weights."""

    k: int = 0
    n: int = 0
    wk: float = 0.0  # sum of the weights of the cases counted in k
    wn: float = 0.0  # sum of the weights of all n cases
    w2n: float = 0.0  # sum of the squared weights (for the effective sample size)

    def add(self, hit: bool, *, weight: float = 1.0, count: int = 1) -> None:
        self.n += count
        self.wn += weight * count
        self.w2n += weight * weight * count
        if hit:
            self.k += count
            self.wk += weight * count

    @property
    def weighted(self) -> bool:
        """Whether some case stands for more than itself (a sampled one)."""
        return self.w2n != self.n or self.wn != self.n

    @property
    def value(self) -> float | None:
        return self.wk / self.wn if self.wn else None

    @property
    def n_effective(self) -> float:
        return self.wn * self.wn / self.w2n if self.w2n else 0.0

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.value is None:
            return None
        return wilson(self.value, self.n_effective)


@dataclass
class ReferStats:
    """Sensitivity, specificity and agreement of one group of graded screenings."""

    key: str
    label: str = ""
    graded: int = 0
    sensitivity: Proportion = field(default_factory=Proportion)
    specificity: Proportion = field(default_factory=Proportion)
    agreement: Proportion = field(default_factory=Proportion)

    def add(self, *, ai_refer: bool, final_refer: bool, agree: bool, weight: float, n: int) -> None:
        self.graded += n
        if final_refer:
            self.sensitivity.add(ai_refer, weight=weight, count=n)
        else:
            self.specificity.add(not ai_refer, weight=weight, count=n)
        # Agreement describes the cases graders read: unweighted.
        self.agreement.add(agree, count=n)


@dataclass
class ClassStats:
    key: str
    label: str = ""
    eyes: int = 0
    sensitivity: Proportion = field(default_factory=Proportion)
    specificity: Proportion = field(default_factory=Proportion)


def case_weight(reason: str, sample_rate: float | None) -> float:
    """How many screenings a graded case stands for: 1/rate for a sampled one, else 1."""
    if reason == CaseReason.SAMPLE and sample_rate:
        return 1.0 / sample_rate
    return 1.0


# --- the graded set ----------------------------------------------------------------------------
def graded_cases(*, scope: DashboardScope, filters: DashboardFilters | None) -> QuerySet:
    """The final grading cases of screenings the scope may see (and the filters select)."""
    qs = GradingCase.objects.filter(stage=CaseStage.FINAL)
    if scope.regions is not None:
        qs = qs.filter(screening__site__region__in=scope.regions)
    if filters is not None:
        start, end = filters.bounds()
        qs = qs.filter(screening__created_at__gte=start, screening__created_at__lt=end)
        if filters.region:
            qs = qs.filter(screening__site__region=filters.region)
        if filters.site is not None:
            qs = qs.filter(screening__site_id=filters.site.pk)
    return qs


def agree_expression() -> Case:
    """True when the final next step is the AI's next step."""
    return Case(
        When(ai_triage=F("screening__final_triage"), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def camera_expression() -> Subquery:
    """The pixel size of the screening's first photo ("3000x2000"): the camera stand-in."""
    first = (
        ScreeningImage.objects.filter(screening_id=OuterRef("screening_id"))
        .order_by("eye")
        .annotate(
            size=Concat(
                Cast("width", CharField()),
                Value("x"),
                Cast("height", CharField()),
                output_field=CharField(),
            )
        )
        .values("size")[:1]
    )
    return Subquery(first, output_field=CharField())


# --- the figures -------------------------------------------------------------------------------
@dataclass
class FieldPerformance:
    overall: ReferStats
    per_class: list[ClassStats]
    per_site: list[ReferStats]
    per_camera: list[ReferStats]
    per_model: list[ReferStats]
    per_month: list[ReferStats]
    sampled: int = 0  # graded cases drawn in the random sample of non-referred results


def _month(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return ""
    return f"{value.year:04d}-{value.month:02d}"


def _refer_groups(cases: QuerySet) -> list[dict]:
    """One row per (site, model version, month, camera, AI answer, final answer, agreement,
    reason, sample rate) with its count: a few hundred rows for a busy year."""
    tz = timezone.get_current_timezone()
    return list(
        cases.order_by()
        .annotate(
            site=F("screening__site_id"),
            model=F("screening__model_version"),
            month=TruncMonth("screening__created_at", tzinfo=tz, output_field=DateField()),
            camera=camera_expression(),
            agree=agree_expression(),
        )
        .values(
            "site",
            "model",
            "month",
            "camera",
            "ai_refer",
            "final_refer",
            "agree",
            "reason",
            "sample_rate",
        )
        .annotate(n=Count("id"))
    )


def _class_groups(cases: QuerySet) -> list[dict]:
    """The final read's gradable eyes that the AI has a result for, grouped by (AI findings,
    final findings, reason, sample rate): at most a few dozen distinct lists in practice."""
    ai_findings = EyeResult.objects.filter(
        screening_id=OuterRef("read__case__screening_id"), eye=OuterRef("eye")
    ).values("findings")[:1]
    return list(
        EyeRead.objects.filter(
            read__case__in=cases.values("pk"),
            read_id=F("read__case__final_read_id"),
            gradable=True,
        )
        .order_by()
        .annotate(ai=Subquery(ai_findings))
        .filter(ai__isnull=False)
        .values("ai", "findings", "read__case__reason", "read__case__sample_rate")
        .annotate(n=Count("id"))
    )


def _letters(value: object) -> set[str]:
    return {c for c in value if isinstance(c, str)} if isinstance(value, list) else set()


def field_performance_data(
    *, scope: DashboardScope, filters: DashboardFilters, site_names: dict[int, str]
) -> FieldPerformance:
    """Every field-performance figure for the filters within the scope (2 queries).
    ``site_names``: the label of each site id (the caller has the scope's sites already)."""
    cases = graded_cases(scope=scope, filters=filters)
    overall = ReferStats(key="all")
    groups: dict[str, dict[str, ReferStats]] = {
        "site": {},
        "camera": {},
        "model": {},
        "month": {},
    }
    sampled = 0
    for row in _refer_groups(cases):
        weight = case_weight(row["reason"], row["sample_rate"])
        n = row["n"]
        if row["reason"] == CaseReason.SAMPLE:
            sampled += n
        values = {
            "ai_refer": row["ai_refer"],
            "final_refer": row["final_refer"],
            "agree": row["agree"],
            "weight": weight,
            "n": n,
        }
        overall.add(**values)
        keys = {
            "site": str(row["site"]),
            "camera": row["camera"] or "",
            "model": row["model"] or "",
            "month": _month(row["month"]),
        }
        for dimension, key in keys.items():
            bucket = groups[dimension]
            if key not in bucket:
                bucket[key] = ReferStats(key=key)
            bucket[key].add(**values)

    per_class = {code: ClassStats(key=code) for code in FINDING_CODES}
    for row in _class_groups(cases):
        weight = case_weight(row["read__case__reason"], row["read__case__sample_rate"])
        ai, truth, n = _letters(row["ai"]), _letters(row["findings"]), row["n"]
        for code, stats in per_class.items():
            stats.eyes += n
            if code in truth:
                stats.sensitivity.add(code in ai, weight=weight, count=n)
            else:
                stats.specificity.add(code not in ai, weight=weight, count=n)

    sites = groups["site"]
    for key, site_stats in sites.items():
        site_stats.label = site_names.get(int(key), key)
    return FieldPerformance(
        overall=overall,
        per_class=list(per_class.values()),
        per_site=sorted(sites.values(), key=lambda s: s.label),
        per_camera=sorted(groups["camera"].values(), key=lambda s: (-s.graded, s.key)),
        per_model=sorted(groups["model"].values(), key=lambda s: s.key, reverse=True),
        per_month=sorted(groups["month"].values(), key=lambda s: s.key),
        sampled=sampled,
    )


# --- agreement per site, over its latest graded screenings -------------------------------------
@dataclass
class SiteAgreement:
    site_id: int
    graded: int
    agreed: int

    @property
    def agreement(self) -> float:
        return self.agreed / self.graded if self.graded else 1.0


def recent_agreement(
    *, scope: DashboardScope | None = None, last: int | None = None
) -> list[SiteAgreement]:
    """Each site's agreement over its ``last`` (``FIELD_AGREEMENT_MIN_GRADED``) most recently
    closed graded cases, whatever their dates: one query with a window function, at most
    ``last`` rows per site. ``scope`` None: every site (the beat task)."""
    last = last or settings.FIELD_AGREEMENT_MIN_GRADED
    cases = GradingCase.objects.filter(stage=CaseStage.FINAL)
    if scope is not None and scope.regions is not None:
        cases = cases.filter(screening__site__region__in=scope.regions)
    rows = (
        cases.order_by()
        .annotate(
            site=F("screening__site_id"),
            agree=agree_expression(),
            rank=Window(
                RowNumber(),
                partition_by=[F("screening__site_id")],
                order_by=[F("closed_at").desc(), F("id").desc()],
            ),
        )
        .filter(rank__lte=last)
        .values_list("site", "agree")
    )
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for site_id, agree in rows:
        tally[site_id][0] += 1
        tally[site_id][1] += bool(agree)
    return [SiteAgreement(site_id=s, graded=g, agreed=a) for s, (g, a) in sorted(tally.items())]


def sites_below_threshold(agreements: list[SiteAgreement]) -> list[SiteAgreement]:
    """The sites whose last FIELD_AGREEMENT_MIN_GRADED graded screenings agree less often than
    FIELD_AGREEMENT_ALERT_BELOW. A site with fewer graded screenings has too few to judge."""
    return [
        a
        for a in agreements
        if a.graded >= settings.FIELD_AGREEMENT_MIN_GRADED
        and a.agreement < settings.FIELD_AGREEMENT_ALERT_BELOW
    ]
