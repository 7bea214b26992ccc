"""On PostgreSQL, the database refuses UPDATE, DELETE and TRUNCATE on the trail of link decisions.

The same guard as the status history's (casework 0005 and 0016, ``register_refuse_change``): only the
tables' owner with ``register.retention`` on (a test database being emptied) gets through. A decision
is changed by a later decision, never by rewriting this one.
"""

from django.db import migrations

TABLE = "linkage_linkdecision"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION register_refuse_change()"
    )
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION register_refuse_change()"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("linkage", "0001_initial"), ("casework", "0016_audit_privileges")]

    operations = [migrations.RunPython(forwards, backwards)]
