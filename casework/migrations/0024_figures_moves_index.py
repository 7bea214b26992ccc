"""The figures read one organisation's moves through an index (PostgreSQL only; issue 16).

The figures count only the changes that move a case into or out of a side
status (duplicate, withdrawn) or the returned statuses (repatriated,
reunified): about a quarter of the history. The partial index
``change_figures_moves`` holds those, by case, with every column the figures
read from them; ``change_figures_exits`` holds the few exits from the
returned statuses (a return event is an entry that no exit follows). So:

* one organisation's figures read its own cases (``case_org_...``) and, case
  by case, their moves from the index, without a visit to the table: their
  cost follows the organisation, not the register;
* the register's figures and a release's series read the moves from the
  indexes instead of the whole table.

Their predicates are the ones ``reports.figures`` writes in its statements,
word for word: PostgreSQL uses a partial index only for a statement whose
conditions imply its predicate. Writes pay only for the changes they hold.

Built CONCURRENTLY (hence a migration outside a transaction), so that a large
history keeps taking writes while it is built; an index left invalid by an
interrupted build is dropped and built again. SQLite (tests, the demo) does
without: its results are the same, only slower at scale.
"""

from django.db import migrations

SIDE = "('duplicate', 'withdrawn')"
RETURNED = "('repatriated', 'reunified')"
MOVES = f"(from_status IN {SIDE}) <> (to_status IN {SIDE}) OR (from_status IN {RETURNED}) <> (to_status IN {RETURNED})"
EXITS = f"from_status IN {RETURNED} AND to_status NOT IN {RETURNED}"
INDEXES = {
    "change_figures_moves": f"(case_id, occurred_on, id) INCLUDE (from_status, to_status, via_id) WHERE ({MOVES})",
    "change_figures_exits": f"(case_id, occurred_on, id) WHERE ({EXITS})",
}


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name, definition in INDEXES.items():
            cursor.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
                [name],
            )
            found = cursor.fetchone()
            if found is not None and found[0]:
                continue
            if found is not None:
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            cursor.execute(f"CREATE INDEX CONCURRENTLY {name} ON casework_statuschange {definition}")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("casework", "0023_web_import")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
