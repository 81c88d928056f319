"""The contract's service-key section: ``GET /internal/users/{user_id}`` with ``X-Service-Key``.

The key is checked before the path is validated, so a caller without a valid key learns
nothing, not even that its id was malformed (FastAPI runs dependencies before it reports
parameter errors).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.requests import Request

from velro import users
from velro.errors import not_found
from velro.security import ServiceKeyId
from velro.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/internal", tags=["internal"])


@router.get("/users/{user_id}")
async def get_user(user_id: uuid.UUID, _key: ServiceKeyId, request: Request) -> JSONResponse:
    svc: Services = request.app.state.services
    record = await users.cached_user(svc, str(user_id))
    if record is None:
        raise not_found("user")
    return JSONResponse(users.public(record))
