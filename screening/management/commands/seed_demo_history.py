"""A year of past screenings at the demo's health centres, so that the dashboard and the
worklists have a history to show.

python manage.py seed_demo_history   # run by `manage.py seed_demo`, after the demo screenings

About 200 screenings over the last 12 months at 정선 (by chw) and 신안 (by chw2), with a
realistic mix of outcomes, written directly with the ORM: no photo is analysed. Each eye gets
made-up probabilities and the outcome comes from the platform's own triage rules
(screening.triage.decide, with the model card's thresholds and the admin's rules), so reasons,
findings and triage agree as they would for a real result. ``model_version`` is
HISTORY_MODEL_VERSION, which marks these rows for the other apps' history (``seed_demo_referrals
--history``, ``seed_demo_pharmacy --history``) and tells a clinician that no model read them.

Deterministic and idempotent: every screening has a fixed Study Instance UID derived from its
number, and one that exists is not created again, so a second run adds nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from ml.quality import MESSAGES as QUALITY_MESSAGES
from screening import regions, uploads
from screening.inference import model_decision
from screening.inference_services import RISK_FIELDS
from screening.models import (
    CLASS_CODES,
    EyeResult,
    Patient,
    Screening,
    ScreeningImage,
    Site,
    Symptom,
    TriageRule,
)
from screening.triage import DISEASE_CLASSES, EyeInput, TriageResult, decide, resolve_rules

HISTORY_MODEL_VERSION = "demo-history"
# Fixed: the same number gives the same UIDs and pseudonyms on every run and every machine.
NAMESPACE = uuid.UUID("6f1c2a52-1e0b-4d55-9b8e-17d3e0a0e117")
DAYS = 365
SEED = 17


@dataclass(frozen=True)
class Centre:
    site: str
    health_worker: str
    district: str  # screening.regions code of the patients' homes
    screenings: int
    # Where the patients live: (읍/면, latitude, longitude), approximate.
    towns: tuple[tuple[str, float, float], ...] = field(default_factory=tuple)


CENTRES = (
    Centre(
        "정선군보건소",
        "chw",
        "51770",
        120,
        (
            ("정선읍", 37.3807, 128.6609),
            ("사북읍", 37.2206, 128.8204),
            ("고한읍", 37.2072, 128.8494),
            ("남면", 37.2950, 128.7350),
            ("북평면", 37.4306, 128.6756),
            ("여량면", 37.4606, 128.7289),
            ("임계면", 37.4859, 128.8523),
            ("화암면", 37.3357, 128.7839),
        ),
    ),
    Centre(
        "신안군보건소",
        "chw2",
        "46910",
        80,
        (
            ("압해읍", 34.8269, 126.3514),
            ("지도읍", 35.0496, 126.2136),
            ("증도면", 35.0000, 126.1600),
            ("안좌면", 34.7400, 126.1400),
            ("비금면", 34.7500, 125.9300),
            ("도초면", 34.7000, 125.9500),
        ),
    ),
)

SURNAMES = "김이박최정강조윤장임한오서신권황안송류홍"
WOMEN = (
    "순자",
    "영자",
    "정숙",
    "말순",
    "옥순",
    "춘자",
    "명자",
    "영숙",
    "정자",
    "금순",
    "복순",
    "순덕",
    "옥자",
    "순이",
    "점례",
    "분례",
)
MEN = (
    "영수",
    "영호",
    "철수",
    "상철",
    "정호",
    "광수",
    "만수",
    "병철",
    "종수",
    "용식",
    "재근",
    "동수",
    "기철",
    "성호",
    "봉수",
    "길남",
)

# Share of each outcome in the history (a screening programme in an older rural population).
MIX = (
    ("normal", 0.47),
    ("medication", 0.16),
    ("referable", 0.23),
    ("urgent", 0.06),
    ("ungradable", 0.08),
)
# The last days of each centre, the same on every day the demo is seeded: (outcome, hours ago).
# They give the hospital referrals still waiting for its answer and appointments to come, and
# the pharmacist a proposal still to decide.
RECENT = (
    ("referable", 3),
    ("referable", 6),
    ("medication", 1),
    ("referable", 50),
    ("referable", 100),
)
TREATABLE = (Symptom.DRYNESS, Symptom.DRYNESS, Symptom.DRYNESS, Symptom.ITCHING, Symptom.REDNESS)


@dataclass
class Plan:
    n: int
    centre: Centre
    patient_key: str
    created_at: dt.datetime
    symptoms: list[str]
    eyes: list[EyeInput]
    outcome: TriageResult


class Command(BaseCommand):
    help = "Load about 200 past screenings (12 months) at the demo's health centres (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        names = [c.health_worker for c in CENTRES]
        users = {u.username: u for u in User.objects.filter(username__in=names)}
        sites = {s.name: s for s in Site.objects.filter(name__in=[c.site for c in CENTRES])}
        missing = [c.site for c in CENTRES if c.site not in sites or c.health_worker not in users]
        if missing:
            raise CommandError(
                f"run seed_demo_screening first: no site or health worker for {', '.join(missing)}"
            )
        people, plans = plan_history(timezone.now())
        have = set(
            Screening.objects.filter(
                study_instance_uid__in=[study_uid(p.n) for p in plans]
            ).values_list("study_instance_uid", flat=True)
        )
        todo = [p for p in plans if study_uid(p.n) not in have]
        if todo:
            photo = uploads.store_rgb(_demo_photo())
            with transaction.atomic():
                patients = _patients(people, todo, sites, users)
                _screenings(todo, patients, sites, users, photo)
        self.stdout.write(f"History: {len(todo)} past screenings added ({len(plans)} in all).")


# --- the plan: what happened, drawn from a fixed seed ----------------------------------------


def plan_history(now: dt.datetime) -> tuple[dict[str, dict], list[Plan]]:
    """Every past screening (and its patient's details): the same ones on every run, at the
    same times on every run of a day."""
    rng = random.Random(SEED)
    today = timezone.localdate(now)
    thresholds = model_decision()
    rule_rows = list(TriageRule.objects.all())
    people: dict[str, dict] = {}
    plans: list[Plan] = []
    n = 0
    for centre in CENTRES:
        # About 7 screenings for every 5 people: some come back within the year.
        keys = [f"{centre.site}:{i}" for i in range(round(centre.screenings * 5 / 7))]
        for key in keys:
            people[key] = _person(rng, centre, key)
        visits = keys + [rng.choice(keys) for _ in range(centre.screenings - len(keys))]
        recent = [(rng.choice(keys), outcome, hours) for outcome, hours in RECENT]
        first_seen: dict[str, int] = {}
        for i, key in enumerate(visits + [key for key, _o, _h in recent]):
            n += 1
            forced = recent[i - len(visits)] if i >= len(visits) else None
            if forced is not None:
                at = now - dt.timedelta(hours=forced[2], minutes=rng.randrange(60))
            elif key in first_seen:  # a return visit, some months after the first
                days_ago = first_seen[key] - rng.randint(30, 200)
                if days_ago < 1:
                    days_ago = rng.randint(1, max(1, first_seen[key] // 2))
                at = _when(rng, today, days_ago)
            else:
                first_seen[key] = rng.randint(1, DAYS)
                at = _when(rng, today, first_seen[key])
            person = people[key]
            rules = resolve_rules(
                model_thresholds=thresholds,
                rule_rows=rule_rows,
                risk_factors={f for f in RISK_FIELDS if person[f]},
            )
            outcome = forced[1] if forced is not None else _outcome(rng)
            symptoms, eyes = _eyes(rng, outcome, person, rules)
            result = decide(eyes=eyes, symptoms=symptoms, rules=rules)
            plans.append(Plan(n, centre, key, at, symptoms, eyes, result))
    return people, plans


def _person(rng: random.Random, centre: Centre, key: str) -> dict:
    sex = rng.choice("FFM")  # women outnumber men among the older people screened
    town, lat, lon = rng.choice(centre.towns)
    district = regions.district(centre.district)
    if district is None:  # pragma: no cover - CENTRES names districts of the table
        raise CommandError(f"unknown district {centre.district}")
    return {
        "pseudonym": _pseudonym(key),
        "name": rng.choice(SURNAMES) + rng.choice(WOMEN if sex == "F" else MEN),
        "birth_date": dt.date(rng.randint(1936, 1972), rng.randint(1, 12), rng.randint(1, 28)),
        "sex": sex,
        "phone": f"010-0000-{rng.randrange(10000):04d}",
        "region": district.label,
        "address": f"{district.label} {town}",
        # A few hundred metres around the town centre: where they live, as a GPS reading.
        "home_latitude": round(lat + rng.uniform(-0.01, 0.01), 5),
        "home_longitude": round(lon + rng.uniform(-0.01, 0.01), 5),
        "has_diabetes": rng.random() < 0.3,
        "has_hypertension": rng.random() < 0.45,
        "family_history_glaucoma": rng.random() < 0.08,
        "high_myopia": rng.random() < 0.05,
    }


def _outcome(rng: random.Random) -> str:
    u = rng.random()
    for outcome, share in MIX:
        if u < share:
            return outcome
        u -= share
    return MIX[0][0]


def _eyes(
    rng: random.Random, outcome: str, person: dict, rules: dict
) -> tuple[list[str], list[EyeInput]]:
    """Symptoms and per-eye probabilities that lead to ``outcome`` under ``rules``."""

    def clear() -> dict[str, float]:
        # Well below every threshold on the finding-score scale too (ml.decision: the mean of a
        # class's probability and 1 - P(N)), a risk factor's lowered one included.
        p = {c: round(rng.uniform(0.01, rules[c].threshold * 0.5), 3) for c in DISEASE_CLASSES}
        p["N"] = round(rng.uniform(0.75, 0.95), 3)
        return p

    probs = {"left": clear(), "right": clear()}
    gradable = {"left": True, "right": True}
    symptoms: set[str] = set()
    if outcome == "medication":
        symptoms.add(rng.choice(TREATABLE))
    elif outcome == "ungradable":
        gradable["left"] = False
        gradable["right"] = rng.random() < 0.3  # one eye cleared is not enough
    elif outcome == "urgent" and rng.random() < 0.3:
        symptoms.add(rng.choice([Symptom.PAIN, Symptom.SUDDEN_VISION_LOSS]))
    elif outcome == "referable" and rng.random() < 0.2:
        symptoms.add(Symptom.BLURRED_VISION)  # examined for the symptom alone
    elif outcome in ("referable", "urgent"):
        weights = {"D": 5 if person["has_diabetes"] else 1, "G": 2, "A": 1, "H": 1}
        weights["G"] += 3 if person["family_history_glaucoma"] else 0
        if outcome == "referable":
            weights["C"] = 3  # cataract: referred, never urgent on the photo alone
        code = rng.choices(list(weights), list(weights.values()))[0]
        rule = rules[code]
        top = rule.urgent_threshold or 0.95
        for eye in rng.choice([["left"], ["right"], ["left", "right"]]):
            if outcome == "urgent" and rule.urgent_threshold is not None:
                probs[eye][code] = round(rng.uniform(top + 0.01, 0.98), 3)
            else:
                probs[eye][code] = round(rng.uniform(rule.threshold + 0.05, top - 0.03), 3)
            probs[eye]["N"] = round(rng.uniform(0.05, 0.3), 3)
        if rng.random() < 0.4:
            symptoms.add(Symptom.BLURRED_VISION)
    eyes = [EyeInput(eye, gradable[eye], probs[eye] if gradable[eye] else None) for eye in probs]
    return sorted(symptoms), eyes


def _when(rng: random.Random, today: dt.date, days_ago: int) -> dt.datetime:
    day = today - dt.timedelta(days=days_ago)
    while day.weekday() >= 5:  # 보건소 are open on weekdays
        day -= dt.timedelta(days=1)
    return timezone.make_aware(
        dt.datetime.combine(day, dt.time(9 + rng.randrange(8), rng.randrange(60)))
    )


def study_uid(n: int) -> str:
    return f"2.25.{uuid.uuid5(NAMESPACE, f'screening:{n}').int}"


def _pseudonym(key: str) -> str:
    return "P-" + uuid.uuid5(NAMESPACE, f"patient:{key}").hex[:10].upper()


def _sha(n: int, eye: str) -> str:
    # Each of these screenings stands for photos of its own; they only borrow the demo's one CC0
    # picture to show. Hashes of their own keep the duplicate-photo check from flagging every
    # one of them as a reused photo.
    return hashlib.sha256(f"demo-history:{n}:{eye}".encode()).hexdigest()


def _demo_photo():
    from skimage import data

    return data.retina()


# --- the rows ------------------------------------------------------------------------------


def _patients(
    people: dict[str, dict], plans: list[Plan], sites: dict[str, Site], users: dict[str, User]
) -> dict[str, Patient]:
    """The patients of ``plans``, created where missing (registered just before their first
    screening)."""
    first: dict[str, Plan] = {}
    for plan in sorted(plans, key=lambda p: p.created_at):
        first.setdefault(plan.patient_key, plan)
    by_pseudonym = {people[key]["pseudonym"]: key for key in first}
    found = {
        by_pseudonym[p.pseudonym]: p
        for p in Patient.objects.filter(pseudonym__in=list(by_pseudonym))
    }
    new = []
    registered: dict[str, dt.datetime] = {}
    for key, plan in first.items():
        if key in found:
            continue
        user = users[plan.centre.health_worker]
        registered[people[key]["pseudonym"]] = plan.created_at - dt.timedelta(minutes=10)
        new.append(
            Patient(
                site=sites[plan.centre.site],
                created_by=user,
                consent_given=True,
                consent_recorded_by=user,
                consent_recorded_at=registered[people[key]["pseudonym"]],
                **people[key],
            )
        )
    Patient.objects.bulk_create(new)
    for patient in new:
        patient.created_at = registered[patient.pseudonym]  # auto_now_add stamped them now
    Patient.objects.bulk_update(new, ["created_at"])
    found.update({by_pseudonym[p.pseudonym]: p for p in new})
    return found


def _screenings(
    plans: list[Plan],
    patients: dict[str, Patient],
    sites: dict[str, Site],
    users: dict[str, User],
    photo: uploads.StoredImage,
) -> None:
    screenings = []
    for plan in plans:
        started = plan.created_at + dt.timedelta(seconds=20)
        gradable = any(e.gradable for e in plan.eyes)
        screenings.append(
            Screening(
                site=sites[plan.centre.site],
                patient=patients[plan.patient_key],
                health_worker=users[plan.centre.health_worker],
                symptoms=plan.symptoms,
                status=Screening.Status.COMPLETED if gradable else Screening.Status.UNGRADABLE,
                attempts=1,
                queued_at=plan.created_at + dt.timedelta(seconds=5),
                started_at=started,
                completed_at=started + dt.timedelta(seconds=40),
                triage=plan.outcome.triage,
                reasons=plan.outcome.reasons,
                findings=plan.outcome.findings,
                model_version=HISTORY_MODEL_VERSION,
                study_instance_uid=study_uid(plan.n),
            )
        )
    Screening.objects.bulk_create(screenings)
    images, results = [], []
    for screening, plan in zip(screenings, plans, strict=True):
        screening.created_at = plan.created_at  # auto_now_add stamped them now
        for eye in plan.eyes:
            quality: dict = {"gradable": eye.gradable, "issues": [], "metrics": {}}
            if not eye.gradable:
                quality["issues"] = [{"code": "blurred", "message": QUALITY_MESSAGES["blurred"]}]
            images.append(
                ScreeningImage(
                    screening=screening,
                    eye=eye.eye,
                    path=photo.path,
                    sha256=_sha(plan.n, eye.eye),
                    width=photo.width,
                    height=photo.height,
                    gradable=eye.gradable,
                    quality=quality,
                )
            )
            if eye.probabilities is not None:
                p = eye.probabilities
                results.append(
                    EyeResult(
                        screening=screening,
                        eye=eye.eye,
                        probabilities=dict(p),
                        quality={"gradable": True, "issues": [], "metrics": {}},
                        top_class=max(CLASS_CODES, key=lambda c: p[c]),
                        findings=plan.outcome.eye_findings.get(eye.eye, []),
                        model_version=HISTORY_MODEL_VERSION,
                    )
                )
    Screening.objects.bulk_update(screenings, ["created_at"])
    ScreeningImage.objects.bulk_create(images)
    EyeResult.objects.bulk_create(results)
    for image in images:
        image.created_at = image.screening.completed_at or image.screening.created_at
    for result in results:
        result.created_at = result.screening.completed_at or result.screening.created_at
    ScreeningImage.objects.bulk_update(images, ["created_at"])
    EyeResult.objects.bulk_update(results, ["created_at"])
