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

Registration is keyed, so a second ``ready()`` (the test runner can call it twice) replaces an
entry instead of doubling it. Nothing here is per-request state: the registries are filled once at
start-up and only read afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.db.models import Prefetch

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import User
    from screening.models import Screening


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


def register_viewer(*, role: str, check: ViewerCheck, key: str | None = None) -> None:
    name = key or f"{getattr(check, '__module__', '')}.{getattr(check, '__qualname__', check)}"
    _viewers.setdefault(role, {})[name] = check


def register_panel(panel: Panel) -> None:
    _panels[panel.key] = panel


def register_worklist_badge(badge: WorklistBadge) -> None:
    _badges[badge.key] = badge


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
