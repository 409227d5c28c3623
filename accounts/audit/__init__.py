"""The audit trail: who read or changed which patient data, when, from where, with what outcome.

* ``registry``: which URLs are audited and as what; each app declares its own URL names in
  ``<app>/audit_urls.py``, collected when Django starts.
* ``chain``: writing an event (``audit_record``) onto the tamper-evident hash chain, and
  verifying the chain.
* ``middleware``: ``AuditMiddleware`` (one row per audited request, after the response) and the
  sign-in signal receivers.

The names below are the public interface (``from accounts.audit import audit_record``, the
dotted paths in settings: ``accounts.audit.AuditMiddleware``, ``accounts.audit.client_ip``).
"""

from accounts.audit.chain import (
    GENESIS,
    HASHED_FIELDS,
    ChainBreak,
    audit_record,
    canonical,
    client_ip,
    compute_hash,
    verify_chain,
)
from accounts.audit.middleware import (
    ACTION_BY_METHOD,
    ID_KWARGS,
    MAX_PATIENT_IDS,
    AuditMiddleware,
    connect_signals,
    logger,
)
from accounts.audit.registry import (
    ADMIN_VIEWS,
    AUDITED_PREFIXES,
    AUDITED_URLS,
    EXEMPT_URLS,
    Target,
    classify,
    collect,
    full_url_name,
    is_classified,
    register,
)

__all__ = [
    "ACTION_BY_METHOD",
    "ADMIN_VIEWS",
    "AUDITED_PREFIXES",
    "AUDITED_URLS",
    "EXEMPT_URLS",
    "GENESIS",
    "HASHED_FIELDS",
    "ID_KWARGS",
    "MAX_PATIENT_IDS",
    "AuditMiddleware",
    "ChainBreak",
    "Target",
    "audit_record",
    "canonical",
    "classify",
    "client_ip",
    "collect",
    "compute_hash",
    "connect_signals",
    "full_url_name",
    "is_classified",
    "logger",
    "register",
    "verify_chain",
]
