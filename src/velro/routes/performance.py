"""``GET /api/v1/performance/metrics`` (JSON) and ``GET /metrics`` (Prometheus text).

Both read the app's ``Tracker``; they are ``async`` so they run on the event loop, the thread
that records, and read consistent figures without a lock.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from velro.services import Services, services

__all__ = ["root_router", "router"]

router = APIRouter()
root_router = APIRouter()


@router.get("/performance/metrics")
async def performance_metrics(svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    return JSONResponse(svc.tracker.snapshot())


@root_router.get("/metrics")
async def prometheus_metrics(svc: Annotated[Services, Depends(services)]) -> Response:
    return Response(svc.tracker.prometheus_text(), media_type=CONTENT_TYPE_LATEST)
