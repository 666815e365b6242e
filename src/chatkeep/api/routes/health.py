"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chatkeep.api.deps import MetricsDep, ServicesDep
from chatkeep.api.problems import problem
from chatkeep.api.schemas import Health, Problem
from chatkeep.errors import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> JSONResponse:
    """The process is up."""
    return JSONResponse({"status": "ok", "stores": {}})


@router.get(
    "/readyz", response_model=Health, responses={503: {"model": Problem, "description": "A store is down"}}
)
async def readyz(services: ServicesDep, metrics: MetricsDep) -> JSONResponse:
    """Every store answers: 200 when ready, 503 naming the store that does not."""
    states: dict[str, str] = {}
    for name, store in services.router.named_stores().items():
        try:
            await store.ping()
            states[name] = "up"
        except StoreUnavailable:
            states[name] = "down"
        metrics.store_up.labels(name).set(1 if states[name] == "up" else 0)
    down = sorted(name for name, state in states.items() if state != "up")
    if down:
        return problem(503, "not_ready", f"store unavailable: {', '.join(down)}", stores=states)
    return JSONResponse({"status": "ready", "stores": states})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        }
    },
)
async def prometheus(metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latencies, appends, store health."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
