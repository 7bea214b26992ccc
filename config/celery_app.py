"""The Celery application (see DESIGN.md section 7)."""

import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

if os.path.basename(sys.argv[0]) == "celery":
    # The worker and beat: a bad setting is one line, not a traceback (config.startup).
    from config.startup import load_settings_or_exit

    load_settings_or_exit()

app = Celery("repatriation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
