"""What the benchmark scripts share: the local PostgreSQL superuser shell and locust's final
statistics. Imported as ``benchlib`` (each script puts bench/ on sys.path: locust imports the
locustfiles by path, not as a package)."""

from __future__ import annotations

import subprocess
from typing import Any


def psql(sql: str) -> str:
    """Run one statement as postgres on 127.0.0.1 (trust auth); its tuples, trimmed."""
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qtAc", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def locust_rows(environment: Any) -> list[dict[str, Any]]:
    """Per request name and the total: count, failures, rate and latency percentiles (ms), read
    at locust's quitting event, after every in-flight request has finished (the CSV can lag)."""
    return [
        {
            "name": entry.name,
            "count": entry.num_requests,
            "failures": entry.num_failures,
            "rps": entry.total_rps,
            "p50": entry.get_response_time_percentile(0.5),
            "p95": entry.get_response_time_percentile(0.95),
            "p99": entry.get_response_time_percentile(0.99),
            "max": entry.max_response_time,
        }
        for entry in [*environment.stats.entries.values(), environment.stats.total]
    ]
