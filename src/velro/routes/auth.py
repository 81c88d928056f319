"""Routes of the contract's auth section (being written)."""

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
