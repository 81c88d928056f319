"""``GET /health``: the database must answer; Redis may be down without failing anything."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from velro.db import DatabaseUnavailable
from velro.errors import OperationTimeout
from velro.services import Services, services

__all__ = ["router"]

router = APIRouter()


@router.get("/health")
async def health(svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    checks: dict[str, Any] = {"redis": await svc.redis.status()}
    try:
        await svc.executor.run("db", svc.db.ping)
        checks["database"] = "ok"
    except (DatabaseUnavailable, OperationTimeout):
        checks["database"] = "down"
    except Exception:  # any driver error means the database does not answer
        checks["database"] = "down"
    ok = checks["database"] == "ok"
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )
