"""`chatkeep serve` with another of uvicorn's WebSocket implementations, to compare them.

    python bench/serve.py websockets-sansio     # uvicorn's own, without chatkeep's direct writes
    python bench/serve.py websockets | wsproto  # the other two
    python bench/serve.py chatkeep              # what `chatkeep serve` runs

Settings come from the environment as for `chatkeep serve`.
"""

from __future__ import annotations

import sys

import uvicorn

from chatkeep.api.app import create_app
from chatkeep.api.server import uvicorn_config
from chatkeep.config import Settings

IMPLEMENTATIONS = ("chatkeep", "websockets-sansio", "websockets", "wsproto")


def main() -> None:
    implementation = sys.argv[1] if len(sys.argv) > 1 else "chatkeep"
    if implementation not in IMPLEMENTATIONS:
        raise SystemExit(f"unknown implementation {implementation!r}; one of {', '.join(IMPLEMENTATIONS)}")
    settings = Settings()
    overrides = {} if implementation == "chatkeep" else {"ws": implementation}
    uvicorn.Server(uvicorn_config(create_app(settings), settings, **overrides)).run()


if __name__ == "__main__":
    main()
