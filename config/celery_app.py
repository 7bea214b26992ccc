"""The Celery application (see DESIGN.md section 7)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("repatriation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
