"""``manage.py migrate``, able to upgrade a database from before the accounts app took over its tables.

Organisations, users, API tokens and sign-in events used to be models of
``partners``; they are now ``accounts``' (the same tables). Django refuses to
migrate a database whose applied migrations depend on one it has not applied,
and every migration that names the user model now depends on
``accounts.0001_initial``. That migration changes nothing in the database, so
on a database from before the move it is recorded as applied first: then the
rest of the history migrates as usual. On a new database nothing differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.recorder import MigrationRecorder

ADOPTED = ("accounts", "0001_initial")
# The layout of partners' migrations that accounts.0001 takes over, as it was when they moved.
BEFORE_THE_MOVE = ("partners", "0005_share_covering_index")


def adopt_partners_tables(database: str = DEFAULT_DB_ALIAS) -> bool:
    """Record accounts.0001 as applied on a database migrated before the move. Returns whether it did."""
    recorder = MigrationRecorder(connections[database])
    if not recorder.has_table():
        return False
    applied = recorder.applied_migrations()
    if ADOPTED in applied or ("partners", "0001_initial") not in applied:
        return False  # a new database, or one already past the move
    if BEFORE_THE_MOVE not in applied:
        raise CommandError(
            "This database is older than partners.0005_share_covering_index: migrate it with an earlier "
            "release of the register first, then with this one."
        )
    recorder.record_applied(*ADOPTED)
    return True


OWNER_KEYS = ("USER", "PASSWORD", "HOST", "PORT", "OPTIONS")


@contextmanager
def as_owner(database: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Connect as the tables' owner (MIGRATION_DATABASE_URL) for a while, to the same database."""
    owner = settings.MIGRATION_DATABASE
    if not owner or database != DEFAULT_DB_ALIAS:
        yield
        return
    connection = connections[database]
    connection.close()
    saved = {key: connection.settings_dict.get(key) for key in OWNER_KEYS}
    connection.settings_dict.update({key: owner.get(key, saved[key]) for key in OWNER_KEYS})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


class Command(DjangoMigrate):
    help = (
        DjangoMigrate.help
        + " Runs as the tables' owner when MIGRATION_DATABASE_URL is set, then grants the application's role"
        " its rights (casework.privileges). Upgrades a database from before the accounts app."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with as_owner(options["database"]):
            if adopt_partners_tables(options["database"]) and options["verbosity"] >= 1:
                self.stdout.write(
                    "Recorded accounts.0001_initial: the partners_* tables of users now belong to accounts."
                )
            super().handle(*args, **options)
