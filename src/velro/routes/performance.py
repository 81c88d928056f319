"""``/api/v1/performance/metrics`` and ``/metrics`` (being written)."""

from fastapi import APIRouter

__all__ = ["root_router", "router"]

router = APIRouter()
root_router = APIRouter()
