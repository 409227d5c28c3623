"""Extension points: how the apps downstream of screening take part in its access rules and its
pages while screening knows none of them by name.

Data flows one way (screening -> pharmacy | referrals -> dashboard), so screening may not import
the apps that act on its results. Yet a pharmacist must see the photos of a screening whose
prescription reached their pharmacy, and the health worker's result page shows the prescription
and the referral. Those apps therefore register here, from their ``AppConfig.ready``:

* ``register_viewer(role=..., check=...)``: who, besides the screening site's own staff and the
  platform admins, may see a screening. ``check(user=..., screening_id=...)`` answers for one role.
* ``register_panel(Panel(...))``: a block on the screening result page, once it is finished.
* ``register_worklist_badge(WorklistBadge(...))``: a badge on each worklist row, with the
  prefetches that keep the worklist at a fixed number of queries.
* ``register_recall_check(key=..., check=...)``: what an app knows that decides a patient's
  recall (an open referral holds it, a missed appointment brings the patient back now, a finished
  hospital visit restarts the clock). ``check(patient_id=...)`` answers a ``RecallState``.

Registration is keyed, so a second ``ready()`` (the test runner can call it twice) replaces an
entry instead of doubling it. Nothing here is per-request state: the registries are filled once at
start-up and only read afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.db.models import Prefetch

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import User
    from screening.models import Screening


@dataclass(frozen=True)
class RecallState:
    """What one downstream app knows about a patient, for ``screening.recall``.

    ``hold``: something is open for the patient (a referral): no rescreen date while it is.
    ``missed_at``: the patient missed an appointment there: due for follow-up from that moment.
    ``done_at``: the patient was seen there (a referral completed): rescreen counts from then."""

    hold: bool = False
    missed_at: dt.datetime | None = None
    done_at: dt.datetime | None = None


class RecallCheck(Protocol):
    def __call__(self, *, patient_id: int) -> RecallState: ...


class ViewerCheck(Protocol):
    def __call__(self, *, user: User, screening_id: int) -> bool: ...


class ContextBuilder(Protocol):
    def __call__(self, *, request: HttpRequest, screening: Screening) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Panel:
    """A block rendered on the result page from ``template_name`` with ``context(...)``, in
    ``order`` (smaller first)."""

    key: str
    template_name: str
    context: ContextBuilder
    order: int = 100


@dataclass(frozen=True)
class WorklistBadge:
    """A badge rendered on every worklist row. ``prefetch`` names what the badge reads from each
    screening (reverse relations, ``Prefetch`` objects), fetched once for the whole list."""

    key: str
    template_name: str
    context: ContextBuilder
    prefetch: Sequence[str | Prefetch] = field(default_factory=tuple)
    order: int = 100


_viewers: dict[str, dict[str, ViewerCheck]] = {}
_panels: dict[str, Panel] = {}
_badges: dict[str, WorklistBadge] = {}
_recall_checks: dict[str, RecallCheck] = {}


def register_viewer(*, role: str, check: ViewerCheck, key: str | None = None) -> None:
    name = key or f"{getattr(check, '__module__', '')}.{getattr(check, '__qualname__', check)}"
    _viewers.setdefault(role, {})[name] = check


def register_panel(panel: Panel) -> None:
    _panels[panel.key] = panel


def register_worklist_badge(badge: WorklistBadge) -> None:
    _badges[badge.key] = badge


def register_recall_check(*, key: str, check: RecallCheck) -> None:
    _recall_checks[key] = check


def recall_states(*, patient_id: int) -> list[RecallState]:
    """Every registered app's view of the patient (called under the patient's row lock)."""
    return [check(patient_id=patient_id) for _key, check in sorted(_recall_checks.items())]


def may_view(*, user: User, screening_id: int) -> bool:
    """True when a registered check for the user's role lets them see the screening."""
    return any(
        check(user=user, screening_id=screening_id)
        for check in _viewers.get(getattr(user, "role", ""), {}).values()
    )


def panels() -> list[Panel]:
    return sorted(_panels.values(), key=lambda p: (p.order, p.key))


def worklist_badges() -> list[WorklistBadge]:
    return sorted(_badges.values(), key=lambda b: (b.order, b.key))


def worklist_prefetches() -> list[str | Prefetch]:
    return [lookup for badge in worklist_badges() for lookup in badge.prefetch]
