"""Case, history and access-log references now name accounts' models (same tables: nothing changes in the database)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_names_in_ukrainian_and_event_kinds'),
        ('casework', '0011_institution_name_uk'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables and their foreign keys stay as they are: only Django's state moves.
            state_operations=[
            migrations.AlterField(
                model_name='accesslog',
                name='organisation',
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organisation', verbose_name='organisation'),
            ),
            migrations.AlterField(
                model_name='accesslog',
                name='token',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apitoken', verbose_name='API token'),
            ),
            migrations.AlterField(
                model_name='accesslog',
                name='user',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='user'),
            ),
            migrations.AlterField(
                model_name='case',
                name='assigned_to',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='assigned_cases', to=settings.AUTH_USER_MODEL, verbose_name='assigned caseworker'),
            ),
            migrations.AlterField(
                model_name='case',
                name='organisation',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='cases', to='accounts.organisation', verbose_name='organisation'),
            ),
            migrations.AlterField(
                model_name='caseedit',
                name='edited_by',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='edited by'),
            ),
            migrations.AlterField(
                model_name='statuschange',
                name='recorded_by',
                field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='recorded by'),
            ),
            migrations.AlterField(
                model_name='statuschange',
                name='recorded_by_token',
                field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apitoken', verbose_name='recorded by API token'),
            ),
            migrations.AlterField(
                model_name='statuschange',
                name='via',
                field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organisation', verbose_name='via intermediary'),
            ),
                ],
            database_operations=[],
        )
    ]
