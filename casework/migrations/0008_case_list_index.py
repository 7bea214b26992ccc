"""The case list filtered by status and oblast, newest change first, at a million cases (PostgreSQL only)."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS case_org_status_oblast_changed ON casework_case "
        "(organisation_id, status, oblast, last_change_at DESC NULLS LAST, id DESC)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS case_org_status_oblast_changed")


class Migration(migrations.Migration):
    dependencies = [("casework", "0007_indexes_for_reads_and_writes")]

    operations = [migrations.RunPython(forwards, backwards)]
