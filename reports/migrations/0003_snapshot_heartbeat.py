"""A snapshot's heartbeat, the claim of the computation under way, and when the sweep last restarted it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0002_accounts_moved'),
    ]

    operations = [
        migrations.AddField(
            model_name='snapshot',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='last sign of life'),
        ),
        migrations.AddField(
            model_name='snapshot',
            name='claim',
            field=models.CharField(blank=True, default='', max_length=32, verbose_name='computation claim'),
        ),
        migrations.AddField(
            model_name='snapshot',
            name='restarted_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='restarted at'),
        ),
    ]
