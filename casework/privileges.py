"""What the application's database role may do, granted after every migration (PostgreSQL, two roles).

In production the application connects (``DATABASE_URL``) as a role that owns
no table, and migrations run (``MIGRATION_DATABASE_URL``) as the role that owns
them. After every ``migrate``, as the owner, this grants the application what
it needs and no more: reading and writing the register's tables, but only
INSERT and SELECT on the status history, the edits, the access log and the
answers to lists, no write to the retention policy or its runs, no deletion of
an audit chain's head, TRUNCATE on nothing, no temporary table, and EXECUTE on
the retention function. It also writes the retention policy from the
settings (the owner is the only one who can). With one role (the demo, a
development database) there is nothing to grant.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connections
from psycopg import sql

# The answer trail of lists to intermediaries (partners.ListAnswer) is named by its table: a grant, not an import.
APPEND_ONLY = ("casework_statuschange", "casework_caseedit", "casework_accesslog", "partners_listanswer")
OWNER_WRITES_ONLY = ("casework_retentionrun", "register_retention_policy")
# The head of each audit chain: the application moves it on (and makes it, the first time), never removes it.
NEVER_DELETED = ("casework_auditchainhead",)


def app_role() -> str | None:
    """The application's role, when migrations run as another one."""
    return settings.DATABASE_APP_ROLE or None


def apply(using: str = "default") -> bool:
    """Grant the application role its rights and set the retention policy. Returns whether it granted."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO register_retention_policy (id, access_log_days, closed_case_years) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET access_log_days = EXCLUDED.access_log_days, "
            "closed_case_years = EXCLUDED.closed_case_years",
            [settings.RETENTION_ACCESS_LOG_DAYS, settings.RETENTION_CLOSED_CASE_YEARS],
        )
        role = app_role()
        cursor.execute("SELECT current_user")
        if role is None or role == cursor.fetchone()[0]:
            return False
        app = sql.Identifier(role)
        statements = [
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(app),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(app),
            sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(app),
            sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {}").format(app),
            *(
                sql.SQL("REVOKE UPDATE, DELETE ON {} FROM {}").format(sql.Identifier(table), app)
                for table in APPEND_ONLY
            ),
            *(
                sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {}").format(sql.Identifier(table), app)
                for table in OWNER_WRITES_ONLY
            ),
            *(sql.SQL("REVOKE DELETE ON {} FROM {}").format(sql.Identifier(table), app) for table in NEVER_DELETED),
            sql.SQL("REVOKE ALL ON FUNCTION register_apply_retention() FROM PUBLIC"),
            sql.SQL("GRANT EXECUTE ON FUNCTION register_apply_retention() TO {}").format(app),
        ]
        for statement in statements:
            cursor.execute(statement)
        # No temporary tables for the application: it needs none, and a temporary table is how a session
        # could shadow a table's name. PUBLIC holds the right by default; only the database's owner takes it back.
        cursor.execute(
            "SELECT datname, pg_get_userbyid(datdba) = current_user FROM pg_database WHERE datname = current_database()"
        )
        name, owns_database = cursor.fetchone()
        if owns_database:
            database = sql.Identifier(name)
            cursor.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(database))
            cursor.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM {}").format(database, app))
    return True


def after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    apply(using)
