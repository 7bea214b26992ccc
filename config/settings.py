"""Settings, read only from the environment (see config/env.py and README)."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import django_stubs_ext
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import (
    env_bool,
    env_database,
    env_email_address,
    env_email_url,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_redis_url,
    env_str,
)

# Lets generic admin and queryset classes be subscripted at run time (typing).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random value "
            "(or set DJANGO_DEBUG=1 for a local development key)."
        )
    SECRET_KEY = "insecure-development-key-only-for-DJANGO_DEBUG-1-never-in-production"  # noqa: S105
elif len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is too short: use at least 32 random characters.")

# The keys that keep the second factor's secrets at rest (accounts.sealing): authenticator-app keys
# encrypted, backup and enrolment codes hashed. Comma-separated; the first is used, the others still
# read (rotation: put a new key first, run `manage.py reseal_second_factors`, then drop the old one).
SECOND_FACTOR_KEYS = env_list("DJANGO_SECOND_FACTOR_KEYS", [], what="key")
if not SECOND_FACTOR_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECOND_FACTOR_KEYS is not set. Set it to a long random value, different from "
            "DJANGO_SECRET_KEY (or set DJANGO_DEBUG=1 for a local development key)."
        )
    SECOND_FACTOR_KEYS = ["insecure-development-second-factor-key-only-for-DJANGO_DEBUG-1"]
elif any(len(key) < 32 for key in SECOND_FACTOR_KEYS):
    raise ImproperlyConfigured("DJANGO_SECOND_FACTOR_KEYS: every key needs at least 32 random characters.")
elif SECRET_KEY in SECOND_FACTOR_KEYS:
    raise ImproperlyConfigured("DJANGO_SECOND_FACTOR_KEYS must differ from DJANGO_SECRET_KEY.")

# The key of everything that finds the same child without keeping identifying values: the keyed hashes
# of identifiers (casework.screening) and the keyed Bloom-filter encodings of names and dates of birth
# (linkage). Required outside debug, at least 32 random characters, kept outside the database (whoever
# holds the database and this key can test guesses against the encodings). It cannot be rotated: the
# values it encoded are gone, so encodings made under another key never match again. A register that
# hashed identifiers before this was required used DJANGO_SECRET_KEY: give that value to keep them.
LINKAGE_HMAC_KEY = env_str("DJANGO_LINKAGE_KEY", "")
if not LINKAGE_HMAC_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_LINKAGE_KEY is not set. Set it to a long random value, and never change it "
            "(or set DJANGO_DEBUG=1 for a local development key)."
        )
    # The demo's identifiers were hashed with the development secret key before this setting: keep them.
    LINKAGE_HMAC_KEY = SECRET_KEY
elif len(LINKAGE_HMAC_KEY) < 32:
    raise ImproperlyConfigured("DJANGO_LINKAGE_KEY is too short: use at least 32 random characters.")
elif LINKAGE_HMAC_KEY in SECOND_FACTOR_KEYS:
    raise ImproperlyConfigured("DJANGO_LINKAGE_KEY must differ from DJANGO_SECOND_FACTOR_KEYS.")
# Candidate pairs scoring at least this (0 to 1) enter the review queue (linkage.similarity, chosen on
# the synthetic register of bench/bench_linkage.py, where recall and precision are both above 0.97).
LINKAGE_REVIEW_SCORE = env_float("LINKAGE_REVIEW_SCORE", 0.82, minimum=0.5, maximum=1.0)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])

INSTALLED_APPS = [
    # Django's admin, on a site that asks for the second factor (config.admin).
    "config.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "config.apps.OTPTOTPConfig",
    "config.apps.OTPStaticConfig",
    "config.apps.AxesConfig",
    "accounts",
    "partners",
    "casework",
    # After casework: finds the same child in several organisations (reads casework, never the reverse).
    "linkage",
    "reports",
    # Synthetic data for the demo and the benchmarks (its commands); no app imports it.
    "devdata",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside WhiteNoise and every other middleware: static files and refusals carry it too.
    "config.security.PermissionsPolicyMiddleware",
    # A NUL character, an unpaired surrogate or an over-long address is a 400 before anything reads it.
    "config.errors.MalformedRequestMiddleware",
    # A request that waited too long for a lock another transaction holds: "busy" (503), not a 500.
    "config.errors.BusyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "partners.api.middleware.ApiGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.sessions.SessionLifetimeMiddleware",
    "accounts.two_factor.SecondFactorMiddleware",
    "accounts.events.RefusalLogMiddleware",
    "config.security.PrivatePagesMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", BASE_DIR / "db.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait rather than fail when the dev server and a command write at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # SQLite (the demo) ignores a covering index's INCLUDE columns; PostgreSQL uses them.
    # Nothing to act on there, so no warning on every start of the demo.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
# A process that serves web requests (config/wsgi.py says so) waits at most this long for a row another
# transaction holds: the history's chain head while a large import or a list's answers are written, a case
# being moved. It then answers "busy" (503, nothing changed: config.errors.BusyMiddleware) instead of waiting
# on towards gunicorn's 30 s timeout, which kills the worker and the requests of both its threads. Celery's
# jobs and the commands wait as long as it takes. 0: no limit.
WEB_LOCK_TIMEOUT_SECONDS = env_int("DJANGO_WEB_LOCK_TIMEOUT", 10, minimum=0)
SERVES_REQUESTS = env_bool("DJANGO_SERVES_REQUESTS", False)
if SERVES_REQUESTS and WEB_LOCK_TIMEOUT_SECONDS and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c lock_timeout={WEB_LOCK_TIMEOUT_SECONDS * 1000}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Migrations may run as another role than the application's: the owner of the tables. The application
# then connects (DATABASE_URL) as a role that owns nothing and may only insert into the audit tables
# (casework.privileges; README "Two database roles"). Unset: one role, as in the demo.
MIGRATION_DATABASE = (
    env_database("MIGRATION_DATABASE_URL", BASE_DIR / "db.sqlite3")
    if env_str("MIGRATION_DATABASE_URL", "").strip()
    else None
)
DATABASE_APP_ROLE = (
    DATABASES["default"].get("USER", "")
    if MIGRATION_DATABASE and MIGRATION_DATABASE.get("USER") != DATABASES["default"].get("USER")
    else ""
)

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"

# Mail: the password reset's links (accounts.password_reset). EMAIL_URL is smtp+tls://user:password@host:587
# (STARTTLS), smtps://user:password@host:465 (TLS from the start) or smtp://localhost:25 (a relay on this
# machine). Without it: the demo (debug) prints mail on the console; outside debug nothing is sent and the
# sign-in page offers no reset by e-mail (a console would write reset links into the server's log).
_email = env_email_url("EMAIL_URL")
if _email is not None:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email["EMAIL_HOST"]
    EMAIL_PORT = _email["EMAIL_PORT"]
    EMAIL_HOST_USER = _email["EMAIL_HOST_USER"]
    EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"]
    EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
    EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
elif DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
else:
    EMAIL_BACKEND = "config.mail.UnconfiguredBackend"
# A mail server that does not answer fails the send (logged, retried by the task) instead of hanging it.
EMAIL_TIMEOUT = 10
# Required once mail really leaves the machine (EMAIL_URL outside debug).
DEFAULT_FROM_EMAIL = env_email_address(
    "DEFAULT_FROM_EMAIL", None if EMAIL_BACKEND.endswith("smtp.EmailBackend") and not DEBUG else "register@localhost"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The register's address for links in mail sent without a request (the daily digest); empty: no link.
REGISTER_URL = env_str("REGISTER_URL", "http://127.0.0.1:8000" if DEBUG else "").strip().rstrip("/")
# Reset by e-mail: only when mail can be sent. A link works once, for PASSWORD_RESET_TIMEOUT_MINUTES.
PASSWORD_RESET_BY_EMAIL = EMAIL_BACKEND != "config.mail.UnconfiguredBackend"
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_MINUTES", 60, minimum=5) * 60
# At most this many reset requests an hour from one address (then 429), and mails an hour to one
# e-mail address (then the same answer as ever, and no mail: nobody can mail-bomb an inbox).
PASSWORD_RESET_REQUESTS_PER_ADDRESS = 10
PASSWORD_RESET_MAILS_PER_EMAIL = 3
# The lockout check runs before the password check (accounts.lockout.LockoutBackend, django-axes).
AUTHENTICATION_BACKENDS = [
    "accounts.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Two-factor sign-in (django-otp: an authenticator app, and one-time backup codes).
# Always asked of superusers, staff, supervisors and organisation admins; of everyone
# when OTP_REQUIRED_FOR_ALL is on. See accounts.two_factor.
OTP_REQUIRED_FOR_ALL = env_bool("OTP_REQUIRED_FOR_ALL", False)
OTP_TOTP_ISSUER = "Children's return register"
# Each wrong code doubles the wait before the next one is checked (1 s, 2 s, 4 s ...).
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# The admin never shows a device's secret key or a QR code for it.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_BACKUP_CODES = 10
# How long an enrolment code (accounts.enrolment) stays usable after an admin issues it.
ENROLMENT_CODE_HOURS = env_int("ENROLMENT_CODE_HOURS", 72, minimum=1)
# An invitation's link (a new user sets a password, then a second factor) works once, for this long.
INVITATION_HOURS = env_int("INVITATION_HOURS", 72, minimum=1)

# Lockout (django-axes), three rules (accounts.lockout): an account from one address after
# AXES_FAILURE_LIMIT failures (wrong passwords, second-factor or enrolment codes) within the
# cool-off; an address, whatever the account, after AXES_ADDRESS_FAILURE_LIMIT; an account from
# every address together after AXES_ACCOUNT_FAILURE_LIMIT, except from addresses it signed in from
# lately. Nobody can lock someone else out from another address.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10, minimum=1)
AXES_ADDRESS_FAILURE_LIMIT = env_int("AXES_ADDRESS_FAILURE_LIMIT", 30, minimum=AXES_FAILURE_LIMIT)
AXES_ACCOUNT_FAILURE_LIMIT = env_int("AXES_ACCOUNT_FAILURE_LIMIT", 100, minimum=AXES_FAILURE_LIMIT)
LOCKOUT_KNOWN_ADDRESS_DAYS = env_int("LOCKOUT_KNOWN_ADDRESS_DAYS", 90, minimum=1)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "accounts.lockout.LockoutHandler"
# The address is the one every door records (accounts.requests.client_address): REMOTE_ADDR, or,
# behind DJANGO_TRUSTED_PROXIES, the first address X-Forwarded-For names that is not one of them.
AXES_CLIENT_IP_CALLABLE = "accounts.requests.client_address"
# A successful sign-in does not clear the count: that would let anyone with an account
# clear the failures against other accounts from the same address.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Successful sign-ins are recorded once, as AuthEvent rows (accounts.events), not again by axes.
AXES_DISABLE_ACCESS_LOG = True
# Never store what was typed in the sign-in form beyond the username.
AXES_SENSITIVE_PARAMETERS = ["username", "password", "csrfmiddlewaretoken", "otp_token", "token"]
AXES_VERBOSE = False

# Sessions: an idle timeout and an absolute one from sign-in, both enforced by
# config.security.SessionLifetimeMiddleware; the cookie lasts as long as the idle timeout.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT_MINUTES", 30, minimum=1) * 60
SESSION_ABSOLUTE_TIMEOUT = env_int("SESSION_ABSOLUTE_TIMEOUT_HOURS", 12, minimum=1) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True
# Over HTTPS the cookies carry the __Host- prefix: the browser then keeps them only if they are Secure,
# for the whole site (Path=/) and for this host alone (no Domain), so no sibling subdomain can set or
# overwrite them. The demo speaks plain HTTP, where such a cookie would be refused: plain names there.
SESSION_COOKIE_PATH = CSRF_COOKIE_PATH = "/"
SESSION_COOKIE_DOMAIN = CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_NAME = "__Host-sessionid" if SESSION_COOKIE_SECURE else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if CSRF_COOKIE_SECURE else "csrftoken"
LANGUAGE_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600

# HTTPS: on by default outside debug. Behind a TLS-terminating proxy, set
# DJANGO_BEHIND_PROXY=1 so that X-Forwarded-Proto is trusted.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The reverse proxies in front of the register, as addresses or networks (DJANGO_TRUSTED_PROXIES,
# comma-separated). A request from one of them comes from the address it appended to X-Forwarded-For
# (read from the right, past the other trusted proxies); from anyone else, from REMOTE_ADDR, whatever
# the headers say. Empty: REMOTE_ADDR always. See accounts.requests.client_address.
TRUSTED_PROXIES = env_networks("DJANGO_TRUSTED_PROXIES")
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("uk", _("Ukrainian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# One date format per language (config/formats): 15 Jan 2025 in English, 15.01.2025 in Ukrainian.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "Europe/Kyiv"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic writes the files served in production (the load benchmark builds its own).
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", "").strip() or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve static files from the app directories without collectstatic in tests and the demo.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# A strict Content-Security-Policy: no inline script or style, nothing from
# another origin. Pages use only the project's own static files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
X_FRAME_OPTIONS = "DENY"
# Permissions-Policy (config.security.PermissionsPolicyMiddleware): the register needs none of the
# browser's powerful features but writing to the clipboard (the copy button of a secret shown once).
# Only names Chromium knows, so that its console stays free of warnings.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "clipboard-read",
        "compute-pressure",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "gamepad",
        "geolocation",
        "gyroscope",
        "hid",
        "identity-credentials-get",
        "idle-detection",
        "interest-cohort",
        "keyboard-map",
        "local-fonts",
        "magnetometer",
        "microphone",
        "midi",
        "otp-credentials",
        "payment",
        "picture-in-picture",
        "publickey-credentials-create",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "storage-access",
        "usb",
        "window-management",
        "xr-spatial-tracking",
    )
} | {"clipboard-write": ["self"]}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

REDIS_URL = env_redis_url("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
# Without Redis the demo and the tests run tasks in-process.
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 15 * 60, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30 if CELERY_TASK_TIME_LIMIT > 60 else CELERY_TASK_TIME_LIMIT
CELERY_TIMEZONE = TIME_ZONE

# The cache holds the rate limits' counters only (accounts.rate_counters), which go on in each process's memory
# while Redis does not answer: a request waits at most the timeouts below for it, never for good.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["partners.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["partners.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "partners.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"token": env_str("API_THROTTLE_RATE", "600/minute")},
    "UNAUTHENTICATED_USER": None,
}
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 16 * 1024, minimum=1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Children's return register: partner API",
    "DESCRIPTION": (
        "Read the cases shared with your organisation and report progress on them. "
        "Authenticate with `Authorization: Bearer <token>`. Every error has the shape "
        '`{"error": {"status", "code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "casework.models.Status",
        "OblastEnum": "casework.models.Oblast",
        "SexEnum": "casework.models.Sex",
    },
}

# Webhooks: plain http, and receivers on loopback or a private network, only for local development
# and tests. Otherwise a webhook URL never reaches the register's own network (partners/outbound.py).
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", DEBUG)
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", DEBUG)
if not DEBUG and (WEBHOOK_ALLOW_HTTP or WEBHOOK_ALLOW_PRIVATE_ADDRESSES):
    # A production register that posts case events in clear, or into its own network, is a leak waiting.
    raise ImproperlyConfigured(
        "WEBHOOK_ALLOW_HTTP and WEBHOOK_ALLOW_PRIVATE_ADDRESSES are for local development only: "
        "unset them, or set DJANGO_DEBUG=1 on a development machine."
    )
# Figures requested on the figures page and not yet computed, for everyone together (one per person).
SNAPSHOT_MAX_OPEN_REQUESTS = env_int("SNAPSHOT_MAX_OPEN_REQUESTS", 3, minimum=1)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)

# Retention policy (casework.retention), applied nightly.
RETENTION_ACCESS_LOG_DAYS = env_int("RETENTION_ACCESS_LOG_DAYS", 730, minimum=1)
RETENTION_CLOSED_CASE_YEARS = env_int("RETENTION_CLOSED_CASE_YEARS", 5, minimum=1)

# Releases show any breakdown cell below this count as "fewer than k", and a headline total too.
FIGURES_MIN_CELL = env_int("FIGURES_MIN_CELL", 5, minimum=2)
# Releases (reports.protection, docs/figures-method.md). The privacy-loss budget of each child, in ρ of
# zero-concentrated differential privacy, that the releases of any 365 days may spend together; each
# release spends the budget's share that lets releases at the fastest allowed cadence last the year
# (ρ/14 at one every 28 days: noise σ ≈ 2.96 per cell; ρ/53 at one every 7 days: σ ≈ 5.76; the lists'
# cells per intermediary take 0.2 of each release's ρ, with twice that noise).
FIGURES_PRIVACY_RHO_PER_YEAR = env_float("FIGURES_PRIVACY_RHO_PER_YEAR", 10.0, above=0, maximum=100)
FIGURES_RELEASE_MIN_DAYS = env_int("FIGURES_RELEASE_MIN_DAYS", 28, minimum=7)
if FIGURES_RELEASE_MIN_DAYS > 365:
    raise ImproperlyConfigured("FIGURES_RELEASE_MIN_DAYS must be at most 365.")
# How many distinct supervisors approve a release: 1, or 2 (then neither may be the one who prepared it).
FIGURES_RELEASE_APPROVERS = env_int("FIGURES_RELEASE_APPROVERS", 1, minimum=1)
if FIGURES_RELEASE_APPROVERS > 2:
    raise ImproperlyConfigured("FIGURES_RELEASE_APPROVERS must be 1 or 2.")
# The first month of the released monthly series; children reported (or returned) earlier are counted in it.
# How long a shared cache or a browser may keep a public figures page or file (seconds).
PUBLIC_FIGURES_CACHE_SECONDS = env_int("PUBLIC_FIGURES_CACHE_SECONDS", 300, minimum=0)
FIGURES_RELEASE_SERIES_START = env_str("FIGURES_RELEASE_SERIES_START", "2022-02")
if not re.fullmatch(r"(19|20)\d\d-(0[1-9]|1[0-2])", FIGURES_RELEASE_SERIES_START):
    raise ImproperlyConfigured(
        f"FIGURES_RELEASE_SERIES_START={FIGURES_RELEASE_SERIES_START!r} is not a month: use YYYY-MM."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
}

# --- web import of case files (casework.web_import) ---
# Uploaded files may hold children's names: they are kept in this private directory only (never under
# static or media, never served), deleted when their import is done, failed or cancelled, and swept by
# beat after IMPORT_UPLOAD_HOURS when abandoned.
IMPORT_PRIVATE_DIR = Path(env_str("IMPORT_PRIVATE_DIR", str(BASE_DIR / "var" / "imports")))
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_MB", 50, minimum=1) * 1024 * 1024
# Any upload over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB: a cases file, an answered sheet) is spooled for its
# request in IMPORT_PRIVATE_DIR/.uploading, never the system's temporary directory (casework.uploads).
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "casework.uploads.PrivateTemporaryFileUploadHandler",
]
IMPORT_UPLOAD_HOURS = env_int("IMPORT_UPLOAD_HOURS", 6, minimum=1)
# The references file (source_ref,reference) of a finished import: its importer's only, for these hours.
IMPORT_REFERENCES_HOURS = env_int("IMPORT_REFERENCES_HOURS", 24, minimum=1)

# --- figures (reports) ---
# Nightly snapshots, the figures task's limits and the queue it goes to.
# (FIGURES_MIN_CELL, the k of the published figures, is set above.)
# An answered sheet uploaded back to a list: its job (and the answers it keeps) deleted after this long.
ANSWER_SHEET_JOB_HOURS = env_int("ANSWER_SHEET_JOB_HOURS", 24, minimum=1)

from celery.schedules import crontab  # noqa: E402

# The queue of the figures tasks; empty: Celery's default queue, which every worker reads.
FIGURES_QUEUE = env_str("FIGURES_QUEUE", "")
FIGURES_TASK_TIME_LIMIT = env_int("FIGURES_TASK_TIME_LIMIT", 20 * 60, minimum=10)
FIGURES_TASK_SOFT_TIME_LIMIT = max(5, FIGURES_TASK_TIME_LIMIT - 60)
# A snapshot being computed whose worker has given no sign of life for this long lost its worker (killed,
# out of memory, its machine gone): the sweep (beat, every minute) queues it again, so that it is done
# minutes after a crash, not when the broker's visibility timeout (an hour) hands its message back.
# The worker computing a snapshot writes a heartbeat every sixth of it (reports.services).
SNAPSHOT_STALL_SECONDS = env_int("SNAPSHOT_STALL_SECONDS", 180, minimum=5)
SNAPSHOT_HEARTBEAT_SECONDS: float = max(1, SNAPSHOT_STALL_SECONDS // 6)
# Every task that takes no argument is periodic, and is here (tests/test_celery_schedule.py checks it).
CELERY_BEAT_SCHEDULE = {
    # The figures of the day that ended, every night.
    "figures-nightly": {"task": "reports.nightly_snapshot", "schedule": crontab(hour=2, minute=30)},
    # Snapshots whose worker was lost (no heartbeat for SNAPSHOT_STALL_SECONDS): queued again, or failed
    # after a few attempts. A sweep that waited longer than its interval in the queue is dropped: the next
    # one does its work.
    "sweep-stalled-snapshots": {
        "task": "reports.sweep_stalled_snapshots",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # The retention policy (access log, closed cases' free text), every night.
    "retention-nightly": {"task": "casework.tasks.apply_retention_policy", "schedule": crontab(hour=3, minute=30)},
    # Follow-ups: a review of every open case with no status change for the organisation's days.
    "review-idle-cases": {"task": "casework.tasks.review_idle_cases", "schedule": crontab(hour=4, minute=15)},
    # Each user's daily digest of follow-ups and notices (counts and references only), after the reviews.
    "daily-digest": {"task": "casework.tasks.send_daily_digests", "schedule": crontab(hour=6, minute=0)},
    # Web imports abandoned for IMPORT_UPLOAD_HOURS, and references files past their time: deleted.
    "sweep-imports": {"task": "casework.tasks.sweep_imports", "schedule": crontab(minute=20)},
    # Answered sheets uploaded back to a list (their answers kept for the check and the recording): a job
    # older than ANSWER_SHEET_JOB_HOURS is deleted.
    "sweep-answer-sheets": {"task": "partners.tasks.sweep_answer_sheets", "schedule": crontab(minute=40)},
    # Status changes whose announcement was not nudged (a broker outage): claimed from the outbox.
    "announce-status-changes": {"task": "partners.tasks.announce_status_changes", "schedule": 60.0},
    # Webhook deliveries whose task was lost (a worker died): queued again.
    "sweep-webhooks": {"task": "partners.tasks.sweep_webhooks", "schedule": 300.0},
    # Cases whose candidates were not looked for (a lost job, a failed search after an edit): matched.
    "linkage-sweep-waiting": {"task": "linkage.tasks.sweep_waiting", "schedule": 300.0, "options": {"expires": 290}},
}
# A broker that does not answer makes a publish fail in seconds, not minutes
# (the page then says new snapshots are unavailable). The visibility timeout,
# after which an unacknowledged task goes back on the queue, must stay longer
# than the figures task may run. Tasks acknowledge late (CELERY_TASK_ACKS_LATE):
# the message of a worker that dies, whole, is handed back after the visibility
# timeout. For the figures that is only a backstop: the heartbeat and the sweep
# restart a snapshot within minutes, and a late copy of its message finds it
# done, or computed by a live worker, and does nothing (reports/tasks.py).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "visibility_timeout": max(3600, 2 * FIGURES_TASK_TIME_LIMIT),
    **globals().get("CELERY_BROKER_TRANSPORT_OPTIONS", {}),
}
