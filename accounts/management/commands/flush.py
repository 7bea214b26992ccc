"""``manage.py flush`` as the tables' owner, past the append-only guard (test databases: TransactionTestCase).

Emptying every table TRUNCATEs the status history and the access log, which
the application's role may not do and the append-only trigger refuses. A
flush is only ever a test database's reset or a developer's deliberate act:
it runs as the owner (MIGRATION_DATABASE_URL), with ``register.retention`` on.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections

from accounts.management.commands.migrate import as_owner


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        database = options["database"]
        with as_owner(database):
            connection = connections[database]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET register.retention = 'on'")
            try:
                super().handle(**options)
            finally:
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("RESET register.retention")
