"""velro: the reference authentication service that the suite measures."""

from velro.app import create_app
from velro.settings import Settings

__all__ = ["Settings", "create_app"]
__version__ = "0.1.0"
