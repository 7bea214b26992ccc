"""A snapshot's requester is an accounts.User (same table: nothing changes in the database)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables and their foreign keys stay as they are: only Django's state moves.
            state_operations=[
            migrations.AlterField(
                model_name='snapshot',
                name='requested_by',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='requested by'),
            ),
                ],
            database_operations=[],
        )
    ]
