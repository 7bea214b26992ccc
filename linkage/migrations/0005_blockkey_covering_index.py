"""A case's neighbours read from the blocking keys' index alone: (key, case) in place of (key).

On PostgreSQL the new index is built CONCURRENTLY and the old one dropped CONCURRENTLY (hence a migration
outside a transaction), so that a register with millions of keys keeps taking new cases while it is built;
an index left invalid by an interrupted build is dropped and built again. Elsewhere (SQLite: tests, the
demo) the schema editor does it as usual.
"""

from django.db import migrations, models

OLD = models.Index(fields=["key"], name="blockkey_key")
NEW = models.Index(fields=["key", "case"], name="blockkey_key_case")


def _valid(cursor, name: str) -> bool | None:
    cursor.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
        [name],
    )
    found = cursor.fetchone()
    return None if found is None else bool(found[0])


def forwards(apps, schema_editor):
    model = apps.get_model("linkage", "BlockKey")
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.add_index(model, NEW)
        schema_editor.remove_index(model, OLD)
        return
    with schema_editor.connection.cursor() as cursor:
        state = _valid(cursor, NEW.name)
        if state is False:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NEW.name}")
        if not state:
            cursor.execute(f"CREATE INDEX CONCURRENTLY {NEW.name} ON linkage_blockkey (key, case_id)")
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD.name}")


def backwards(apps, schema_editor):
    model = apps.get_model("linkage", "BlockKey")
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.add_index(model, OLD)
        schema_editor.remove_index(model, NEW)
        return
    with schema_editor.connection.cursor() as cursor:
        if not _valid(cursor, OLD.name):
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD.name}")
            cursor.execute(f"CREATE INDEX CONCURRENTLY {OLD.name} ON linkage_blockkey (key)")
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NEW.name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("casework", "0023_web_import"),
        ("linkage", "0004_decision_cases_required"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="blockkey", name="blockkey_key"),
                migrations.AddIndex(model_name="blockkey", index=NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        )
    ]
