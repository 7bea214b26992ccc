"""On PostgreSQL: an approved release, and every approval, cannot be changed or deleted, by any role.

The trigger lets the application create drafts, approve them (only the state
and the approval time may change, and only with an approval recorded),
discard drafts with their approvals, and add approvals to drafts. It refuses
everything else: an UPDATE or DELETE of an approved release, an UPDATE of an
approval, a DELETE of an approval of an approved release, an approval added
to an approved release, a release created other than as a draft or out of
order (its number and date after every other release's), and TRUNCATE.
Only the tables' owner with ``register.retention`` on passes (emptying a test
database: accounts' ``flush``), as for the audit tables (casework 0016); the
application's role owns nothing, holds no TRIGGER right, and cannot disable
the trigger.
"""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION reports_release_guard() RETURNS trigger AS $$
DECLARE
    release_state text;
BEGIN
    IF current_setting('register.retention', true) = 'on' AND current_user = (
        SELECT tableowner FROM pg_tables WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME
    ) THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION '%% cannot be truncated: releases are immutable', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_TABLE_NAME = 'reports_release' THEN
        IF TG_OP = 'INSERT' THEN
            IF NEW.state <> 'draft' THEN
                RAISE EXCEPTION 'A release is created as a draft' USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF EXISTS (SELECT 1 FROM reports_release WHERE number >= NEW.number OR as_of >= NEW.as_of) THEN
                RAISE EXCEPTION 'A release comes after every other release, in number and in date'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END IF;
        IF OLD.state = 'approved' THEN
            RAISE EXCEPTION 'Release %% is approved and immutable: %% refused', OLD.number, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        IF (to_jsonb(NEW) - 'state' - 'approved_at') IS DISTINCT FROM (to_jsonb(OLD) - 'state' - 'approved_at') THEN
            RAISE EXCEPTION 'A draft release is approved or discarded, never edited'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.state = 'approved' AND NOT EXISTS (
            SELECT 1 FROM reports_releaseapproval WHERE release_id = NEW.id
        ) THEN
            RAISE EXCEPTION 'Release %% has no approval', NEW.number USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    -- reports_releaseapproval
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'An approval is never changed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT state INTO release_state FROM reports_release
        WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.release_id ELSE NEW.release_id END;
    IF release_state = 'approved' THEN
        RAISE EXCEPTION 'The release is approved: its approvals are final (%% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

TABLES = ["reports_release", "reports_releaseapproval"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(GUARD)
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {table}_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION reports_release_guard()"
        )
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION reports_release_guard()"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS reports_release_guard()")


class Migration(migrations.Migration):
    dependencies = [("reports", "0004_release")]

    operations = [migrations.RunPython(forwards, backwards)]
