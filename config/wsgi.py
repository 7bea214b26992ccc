import os

from django.core.wsgi import get_wsgi_application

from config.startup import load_settings_or_exit

# This process serves requests: its database waits are bounded (settings.WEB_LOCK_TIMEOUT_SECONDS).
os.environ.setdefault("DJANGO_SERVES_REQUESTS", "1")
load_settings_or_exit()
application = get_wsgi_application()
