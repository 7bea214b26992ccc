"""Snapshots stop publishing: their published variant (one-snapshot suppression, unsafe across a series) is dropped.

Snapshots stay exact and internal; what leaves the register is a release
(0004). The dropped column held nothing a release needs: releases compute
their own protected figures.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0005_release_guard'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='snapshot',
            name='snapshot_done_is_complete',
        ),
        migrations.RemoveField(
            model_name='snapshot',
            name='published',
        ),
        migrations.AddConstraint(
            model_name='snapshot',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('state', 'done'), _negated=True), models.Q(('by_organisation__isnull', False), ('exact__isnull', False), ('finished_at__isnull', False), ('source_cases__isnull', False)), _connector='OR'), name='snapshot_done_is_complete'),
        ),
    ]
