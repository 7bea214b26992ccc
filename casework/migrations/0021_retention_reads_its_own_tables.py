"""The retention function reads only the register's own tables, whatever a caller puts in its session.

``register_apply_retention()`` runs as the tables' owner (SECURITY DEFINER).
Its search path listed ``public`` but not ``pg_temp``, which PostgreSQL then
searches first for tables: a caller allowed temporary tables could shadow the
retention policy and the run log with its own and have the owner erase the
whole access log. Every table is now named with its schema, ``pg_temp`` comes
last in the path (as PostgreSQL's documentation asks of such functions), the
function makes no temporary table of its own, and ``casework.privileges``
takes temporary tables away from the application.
"""

from django.db import migrations

RETENTION = """
CREATE OR REPLACE FUNCTION register_apply_retention() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
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
    closed_ids bigint[];
BEGIN
    SELECT access_log_days, closed_case_years INTO policy FROM public.register_retention_policy WHERE id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No retention policy: run manage.py migrate as the owner role.';
    END IF;
    PERFORM set_config('register.retention', 'on', true);
    cutoff := now() - make_interval(days => policy.access_log_days);
    -- The oldest rows only, up to the first row not yet past the period: the chain stays whole.
    SELECT id, chain_hash INTO last_id, anchor FROM public.casework_accesslog
        WHERE at < cutoff
          AND id < coalesce((SELECT min(id) FROM public.casework_accesslog WHERE at >= cutoff), 9223372036854775807)
        ORDER BY id DESC LIMIT 1;
    IF last_id IS NOT NULL THEN
        DELETE FROM public.casework_accesslog WHERE id <= last_id;
        GET DIAGNOSTICS deleted = ROW_COUNT;
    END IF;
    closed_cutoff := (now() - make_interval(years => policy.closed_case_years))::date;
    SELECT coalesce(array_agg(closed.id), '{}') INTO closed_ids FROM (
        SELECT c.id FROM public.casework_case c JOIN public.casework_statuschange s ON s.case_id = c.id
        WHERE c.status IN ('withdrawn', 'duplicate')
        GROUP BY c.id HAVING max(s.occurred_on) < closed_cutoff
    ) AS closed;
    UPDATE public.casework_case SET notes = '' WHERE id = ANY(closed_ids) AND notes <> '';
    GET DIAGNOSTICS erased_cases = ROW_COUNT;
    UPDATE public.casework_statuschange SET note = '' WHERE case_id = ANY(closed_ids) AND note <> '';
    GET DIAGNOSTICS erased_notes = ROW_COUNT;
    INSERT INTO public.casework_retentionrun
        (ran_at, access_log_deleted, cases_erased, notes_erased, access_log_days, closed_case_years, access_log_anchor)
        VALUES (now(), deleted, erased_cases, erased_notes, policy.access_log_days, policy.closed_case_years,
                coalesce(anchor, ''))
        RETURNING id INTO run_id;
    RETURN run_id;
END;
$$;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RETENTION)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        schema_editor.execute(import_module("casework.migrations.0016_audit_privileges").RETENTION)


class Migration(migrations.Migration):
    dependencies = [("casework", "0020_saved_filters")]

    operations = [migrations.RunPython(forwards, backwards)]
