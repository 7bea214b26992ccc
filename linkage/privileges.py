"""The decision trail is append-only for the application's database role (PostgreSQL, two roles).

casework.privileges grants the application its rights on every table after each migrate; this takes
back UPDATE and DELETE on the trail of link decisions, as casework does for its history. The trigger
of migration 0002 refuses them to anyone but the owner during retention (which never touches it).
"""

from __future__ import annotations

from typing import Any

from django.db import connections
from psycopg import sql

from casework.privileges import app_role

APPEND_ONLY = ("linkage_linkdecision",)


def apply(using: str = "default") -> bool:
    connection = connections[using]
    role = app_role()
    if connection.vendor != "postgresql" or role is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        if role == cursor.fetchone()[0]:
            return False
        for table in APPEND_ONLY:
            cursor.execute(
                sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(
                    sql.Identifier(table), sql.Identifier(role)
                )
            )
    return True


def after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    apply(using)
