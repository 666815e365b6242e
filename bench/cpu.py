"""CPU time spent per request, read from /proc: what a request costs the server (and the database
server behind it) whatever else the machine runs, which a rate on a shared machine does not show.

Linux only; elsewhere the figures are left out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
# The processes of the database servers the stores use, by command name.
DATABASES = ("postgres", "redis-server")


def _seconds(stat: str) -> float:
    # utime and stime: the 14th and 15th fields, counted after the parenthesised command name
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process(pid: int) -> float | None:
    """CPU seconds the process has used, or None where /proc cannot tell."""
    try:
        return _seconds((PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def databases(names: Iterable[str] = DATABASES) -> float | None:
    """CPU seconds the database servers' processes now running have used, all together."""
    if not PROC.is_dir():
        return None
    wanted = set(names)
    total = 0.0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() in wanted:
                total += _seconds((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return total


class Meter:
    """CPU used by the server and the database servers between `start()` and `per()`."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._server: float | None = None
        self._databases: float | None = None

    def start(self) -> None:
        self._server = process(self.pid) if self.pid else None
        self._databases = databases()

    def per(self, count: int, unit: str) -> dict[str, str]:
        """Microseconds of CPU a `unit` (request, message) since start(), as report cells."""
        cells: dict[str, str] = {}
        server = process(self.pid) if self.pid else None
        if server is not None and self._server is not None:
            cells["server CPU"] = f"{(server - self._server) / count * 1e6:,.0f} µs/{unit}"
        db = databases()
        if db is not None and self._databases is not None and db > self._databases:
            cells["database CPU"] = f"{(db - self._databases) / count * 1e6:,.0f} µs/{unit}"
        return cells
