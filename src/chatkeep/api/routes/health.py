"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chatkeep.api.deps import MetricsDep, ServicesDep
from chatkeep.api.metrics import Metrics
from chatkeep.api.problems import problem
from chatkeep.api.route import StrictRoute
from chatkeep.api.schemas import Health, Problem
from chatkeep.service import Services

router = APIRouter(route_class=StrictRoute, tags=["health"])
PROMETHEUS = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}
}


@router.get("/healthz", response_model=Health)
async def healthz() -> JSONResponse:
    """The process is up."""
    return JSONResponse({"status": "ok", "stores": {}})


@router.get(
    "/readyz", response_model=Health, responses={503: {"model": Problem, "description": "A store is down"}}
)
async def readyz(services: ServicesDep, metrics: MetricsDep) -> JSONResponse:
    """Whether this instance can serve: 200 with each store `up` or `degraded` (its server is
    unreachable and writes are kept in memory, or refused), 503 naming a store that is `down`."""
    states = await store_states(services, metrics)
    down = sorted(name for name, state in states.items() if state == "down")
    if down:
        return problem(503, "not_ready", f"store unavailable: {', '.join(down)}", stores=states)
    degraded = any(state == "degraded" for state in states.values())
    return JSONResponse({"status": "degraded" if degraded else "ready", "stores": states})


@router.get("/metrics", response_class=Response, responses=PROMETHEUS)  # type: ignore[arg-type]
async def prometheus(services: ServicesDep, metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latencies, appends, store health and degraded mode."""
    await store_states(services, metrics)
    metrics.memory_held.set(services.memory.held)
    metrics.memory_budget.set(services.memory.max_bytes or 0)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def store_states(services: Services, metrics: Metrics) -> dict[str, str]:
    """Check every store, and record what was found in the metrics."""
    states: dict[str, str] = {}
    for name, health in (await services.store_health()).items():
        states[name] = health.state
        metrics.record_store(name, health)
    return states
