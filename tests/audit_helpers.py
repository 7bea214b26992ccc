"""Acting on the audit tables around the application, as only the tables' owner can (tests of tamper evidence)."""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, transaction


def owner_execute(statement: str, params: list[Any] | None = None) -> None:
    """Run SQL as the owner of the tables, past the append-only trigger (in its own transaction on PostgreSQL
    with two roles: only a transactional test's committed rows are seen)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(statement, params or [])
        return
    if not settings.MIGRATION_DATABASE:
        # One role: the application is the owner. The setting lasts for the transaction, so both in one.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('register.retention', 'on', true)")
            cursor.execute(statement, params or [])
        return
    owner = settings.MIGRATION_DATABASE
    with psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        user=owner.get("USER") or None,
        password=owner.get("PASSWORD") or None,
        host=owner.get("HOST") or None,
        port=owner.get("PORT") or None,
    ) as owner_connection:
        owner_connection.execute("SELECT set_config('register.retention', 'on', true)")
        owner_connection.execute(statement.replace("%s", "%s"), params or [])
