"""Each decision names its two cases, now always (a migration of its own: PostgreSQL cannot alter a table
whose rows were just updated in the same transaction while their foreign-key checks are pending)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("linkage", "0003_decision_names_its_cases")]

    operations = [
        migrations.AlterField(
            model_name="linkdecision",
            name="case_a",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="casework.case",
                verbose_name="case",
            ),
        ),
        migrations.AlterField(
            model_name="linkdecision",
            name="case_b",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="casework.case",
                verbose_name="other case",
            ),
        ),
    ]
