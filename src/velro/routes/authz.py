"""Routes of the contract's authz section (being written)."""

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
