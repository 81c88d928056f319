"""The HTTP routes: ``root_router`` (no prefix) and ``api_router`` (under ``/api/v1``)."""

from fastapi import APIRouter

from velro.routes import auth, authz, internal, monitoring, performance

__all__ = ["api_router", "root_router"]

root_router = APIRouter()
root_router.include_router(monitoring.router)
root_router.include_router(performance.root_router)

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(authz.router)
api_router.include_router(internal.router)
api_router.include_router(performance.router)
