"""Each decision names its two cases itself: the trail alone says which pairs are one child."""

import django.db.models.deletion
from django.db import migrations, models


def name_the_cases(apps, schema_editor):
    LinkDecision = apps.get_model("linkage", "LinkDecision")
    Candidate = apps.get_model("linkage", "Candidate")
    pairs = dict((pk, (a, b)) for pk, a, b in Candidate.objects.values_list("pk", "case_a_id", "case_b_id"))
    # Rows written before this migration, on a branch that had the trail without the cases: the owner fills
    # them in (the trigger lets the owner through only during retention, which this is not: set it for this).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SELECT set_config('register.retention', 'on', true)")
    for decision in LinkDecision.objects.all().only("pk", "candidate_id"):
        a, b = pairs[decision.candidate_id]
        LinkDecision.objects.filter(pk=decision.pk).update(case_a_id=a, case_b_id=b)


class Migration(migrations.Migration):
    dependencies = [("linkage", "0002_append_only_decisions"), ("casework", "0017_accesslog_webhook_door")]

    operations = [
        migrations.AddField(
            model_name="linkdecision",
            name="case_a",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="casework.case",
                verbose_name="case",
            ),
        ),
        migrations.AddField(
            model_name="linkdecision",
            name="case_b",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="casework.case",
                verbose_name="other case",
            ),
        ),
        migrations.RunPython(name_the_cases, migrations.RunPython.noop),
    ]
