"""/v1/settings/persistence: a tenant's default persistence mode and expiry rules (API key only)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from chatkeep.api.deps import PrincipalDep, ServicesDep
from chatkeep.api.route import StrictRoute
from chatkeep.api.routes.common import answer, problems
from chatkeep.api.schemas import PersistenceSettings, PersistenceSettingsUpdate
from chatkeep.models import Tenant
from chatkeep.service import Services

router = APIRouter(route_class=StrictRoute, prefix="/v1/settings", tags=["settings"])


def _view(services: Services, tenant: Tenant) -> dict[str, object]:
    lifetimes = services.chat.lifetimes
    return {
        "default_mode": tenant.settings.default_mode.value,
        "ephemeral_ttl_seconds": lifetimes.ephemeral_ttl(tenant),
        "pinned_never_expire": lifetimes.pinned_exempt(tenant),
    }


@router.get("/persistence", response_model=PersistenceSettings, responses=problems(403))
async def get_persistence(principal: PrincipalDep, services: ServicesDep) -> JSONResponse:
    """The tenant's persistence settings, with the server's defaults filled in."""
    principal.require_tenant_key("reading tenant settings")
    return answer(_view(services, principal.tenant))


@router.put("/persistence", response_model=PersistenceSettings, responses=problems(403))
async def put_persistence(
    body: PersistenceSettingsUpdate, principal: PrincipalDep, services: ServicesDep
) -> JSONResponse:
    """Change the tenant's default mode and expiry rules: the fields sent change, the others keep
    their value (null restores the server's default; an empty body answers 422 empty_patch). They
    apply to conversations created from now on; existing conversations keep the mode and expiry
    window they were created with."""
    principal.require_tenant_key("changing tenant settings")
    updated = await services.tenants.merge_settings(principal.tenant, body.model_dump(exclude_unset=True))
    return answer(_view(services, updated))
