"""On PostgreSQL: the history and the access log can be erased only by the retention function, never truncated.

- The append-only trigger lets a row be changed or deleted only by the tables'
  owner (the role migrations run as) with ``register.retention`` on: that is,
  inside ``register_apply_retention()``, which runs as the owner (SECURITY
  DEFINER). The application's role, which owns nothing, is refused even if it
  sets ``register.retention`` itself (and it holds no UPDATE, DELETE or
  TRUNCATE right on these tables: see casework.privileges).
- TRUNCATE is refused on them like DELETE (a statement trigger: row triggers do not see it).
- ``register_apply_retention()`` erases only what the retention policy allows
  (``register_retention_policy``, which only the owner writes): the oldest
  access-log rows past the period, and the free text of cases closed long
  enough; it records the run with the chain's new anchor.
"""

from django.db import migrations

AUDITED = ["casework_statuschange", "casework_accesslog", "casework_caseedit"]

REFUSE = """
CREATE OR REPLACE FUNCTION register_refuse_change() RETURNS trigger AS $$
BEGIN
    -- Only the tables' owner, with register.retention on: the retention function (SECURITY DEFINER),
    -- a migration, or emptying a test database. The application's role owns nothing.
    IF current_setting('register.retention', true) = 'on' AND current_user = (
        SELECT tableowner FROM pg_tables WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME
    ) THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '%% rows are append-only: %% refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

POLICY = """
CREATE TABLE IF NOT EXISTS register_retention_policy (
    id integer PRIMARY KEY CHECK (id = 1),
    access_log_days integer NOT NULL CHECK (access_log_days >= 1),
    closed_case_years integer NOT NULL CHECK (closed_case_years >= 1)
);
"""

RETENTION = """
CREATE OR REPLACE FUNCTION register_apply_retention() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_catalog AS $$
DECLARE
    policy record;
    cutoff timestamptz;
    closed_cutoff date;
    last_id bigint;
    anchor text;
    deleted bigint := 0;
    erased_cases bigint := 0;
    erased_notes bigint := 0;
    run_id bigint;
BEGIN
    SELECT access_log_days, closed_case_years INTO policy FROM register_retention_policy WHERE id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No retention policy: run manage.py migrate as the owner role.';
    END IF;
    PERFORM set_config('register.retention', 'on', true);
    cutoff := now() - make_interval(days => policy.access_log_days);
    -- The oldest rows only, up to the first row not yet past the period: the chain stays whole.
    SELECT id, chain_hash INTO last_id, anchor FROM casework_accesslog
        WHERE at < cutoff
          AND id < coalesce((SELECT min(id) FROM casework_accesslog WHERE at >= cutoff), 9223372036854775807)
        ORDER BY id DESC LIMIT 1;
    IF last_id IS NOT NULL THEN
        DELETE FROM casework_accesslog WHERE id <= last_id;
        GET DIAGNOSTICS deleted = ROW_COUNT;
    END IF;
    closed_cutoff := (now() - make_interval(years => policy.closed_case_years))::date;
    CREATE TEMP TABLE register_closed ON COMMIT DROP AS
        SELECT c.id FROM casework_case c JOIN casework_statuschange s ON s.case_id = c.id
        WHERE c.status IN ('withdrawn', 'duplicate')
        GROUP BY c.id HAVING max(s.occurred_on) < closed_cutoff;
    UPDATE casework_case SET notes = '' WHERE id IN (SELECT id FROM register_closed) AND notes <> '';
    GET DIAGNOSTICS erased_cases = ROW_COUNT;
    UPDATE casework_statuschange SET note = '' WHERE case_id IN (SELECT id FROM register_closed) AND note <> '';
    GET DIAGNOSTICS erased_notes = ROW_COUNT;
    DROP TABLE register_closed;
    INSERT INTO casework_retentionrun
        (ran_at, access_log_deleted, cases_erased, notes_erased, access_log_days, closed_case_years, access_log_anchor)
        VALUES (now(), deleted, erased_cases, erased_notes, policy.access_log_days, policy.closed_case_years,
                coalesce(anchor, ''))
        RETURNING id INTO run_id;
    RETURN run_id;
END;
$$;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(REFUSE)
    for table in AUDITED:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION register_refuse_change()"
        )
    schema_editor.execute(POLICY)
    schema_editor.execute(RETENTION)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in AUDITED:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS register_apply_retention()")
    schema_editor.execute("DROP TABLE IF EXISTS register_retention_policy")


class Migration(migrations.Migration):
    dependencies = [("casework", "0015_audit_chain")]

    operations = [migrations.RunPython(forwards, backwards)]
