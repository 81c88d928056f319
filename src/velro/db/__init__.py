"""The database: one engine and connection pool per process, and the schema."""

from velro.db.database import Database, DatabaseUnavailable
from velro.db.schema import metadata

__all__ = ["Database", "DatabaseUnavailable", "metadata"]
