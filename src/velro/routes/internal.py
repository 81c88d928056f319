"""Routes of the contract's internal section (being written)."""

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
