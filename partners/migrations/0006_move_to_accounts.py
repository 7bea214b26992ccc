"""Organisations, users, API tokens and sign-in events now belong to accounts (same tables)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MOVED = ("organisation", "user", "apitoken", "authevent")


def _move(apps, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=target, model=model).exists():
            ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def move_content_types(apps, schema_editor):
    # Permissions and admin log entries name models through their content types: moved too,
    # so that nothing granted on users or organisations is lost.
    _move(apps, "partners", "accounts")


def move_content_types_back(apps, schema_editor):
    _move(apps, "accounts", "partners")


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('accounts', '0002_names_in_ukrainian_and_event_kinds'),
        ('casework', '0012_accounts_moved'),
        ('partners', '0005_share_covering_index'),
        ('reports', '0002_accounts_moved'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables and their foreign keys stay as they are: only Django's state moves.
            state_operations=[
            migrations.RemoveField(
                model_name='authevent',
                name='organisation',
            ),
            migrations.RemoveField(
                model_name='authevent',
                name='user',
            ),
            migrations.AlterField(
                model_name='share',
                name='owner',
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='shares_given', to='accounts.organisation', verbose_name='owner'),
            ),
            migrations.RemoveField(
                model_name='user',
                name='organisation',
            ),
            migrations.AlterField(
                model_name='idempotencyrecord',
                name='organisation',
                field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organisation'),
            ),
            migrations.AlterField(
                model_name='webhookendpoint',
                name='organisation',
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='webhooks', to='accounts.organisation', verbose_name='organisation'),
            ),
            migrations.AlterField(
                model_name='share',
                name='partner',
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='shares_received', to='accounts.organisation', verbose_name='partner'),
            ),
            migrations.RemoveField(
                model_name='user',
                name='groups',
            ),
            migrations.RemoveField(
                model_name='user',
                name='user_permissions',
            ),
            migrations.AlterField(
                model_name='share',
                name='created_by',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='shared by'),
            ),
            migrations.AlterField(
                model_name='share',
                name='revoked_by',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='revoked by'),
            ),
            migrations.AlterField(
                model_name='webhookendpoint',
                name='created_by',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='created by'),
            ),
            migrations.DeleteModel(
                name='ApiToken',
            ),
            migrations.DeleteModel(
                name='AuthEvent',
            ),
            migrations.DeleteModel(
                name='Organisation',
            ),
            migrations.DeleteModel(
                name='User',
            ),
                ],
            database_operations=[migrations.RunPython(move_content_types, move_content_types_back)],
        )
    ]
