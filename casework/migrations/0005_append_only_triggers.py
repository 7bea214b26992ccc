"""On PostgreSQL, the database itself refuses UPDATE and DELETE on the history and the access log.

The only way through is the retention task, which sets the transaction-local
setting ``register.retention`` to ``on`` (see casework/retention.py).
"""

from django.db import migrations

TABLES = ["casework_statuschange", "casework_accesslog", "casework_caseedit"]

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION register_refuse_change() RETURNS trigger AS $$
BEGIN
    IF current_setting('register.retention', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '%% rows are append-only: %% refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION)
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION register_refuse_change()"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS register_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("casework", "0004_statuschange_recorded_by_token_accesslog_case_and_more")]

    operations = [migrations.RunPython(forwards, backwards)]
