"""``velro db init``: create the schema in the configured database."""

from __future__ import annotations

import argparse

from velro.db import Database
from velro.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("db", help="manage the database")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    init = dbsub.add_parser("init", help="create the tables (idempotent)")
    init.set_defaults(handler=init_db)


def init_db(_: argparse.Namespace) -> int:
    settings = Settings.from_env()
    db = Database(settings.database_url)
    try:
        db.create_all()
    finally:
        db.close()
    print(f"velro: schema ready in {db.engine.url.render_as_string(hide_password=True)}")
    return 0
