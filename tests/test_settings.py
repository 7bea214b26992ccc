"""Settings come only from the environment; bad values stop the start with the variable's name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The variables the register reads: a subprocess gets only those the test sets.
OWN_VARIABLES = ("DJANGO_", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "WEBHOOK_", "FIGURES_")
ROOT = Path(__file__).resolve().parent.parent


def start(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "s" * 40}, "DJANGO_SECOND_FACTOR_KEYS"),
        (
            {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "s" * 40, "DJANGO_SECOND_FACTOR_KEYS": "k" * 40 + ",short"},
            "DJANGO_SECOND_FACTOR_KEYS",
        ),
        (
            {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "s" * 40, "DJANGO_SECOND_FACTOR_KEYS": "s" * 40},
            "DJANGO_SECOND_FACTOR_KEYS",
        ),
        (
            {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "s" * 40, "DJANGO_SECOND_FACTOR_KEYS": "k" * 40},
            "DJANGO_LINKAGE_KEY",
        ),
        (
            {
                "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": "s" * 40,
                "DJANGO_SECOND_FACTOR_KEYS": "k" * 40,
                "DJANGO_LINKAGE_KEY": "short",
            },
            "DJANGO_LINKAGE_KEY",
        ),
        (
            {
                "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": "s" * 40,
                "DJANGO_SECOND_FACTOR_KEYS": "k" * 40,
                "DJANGO_LINKAGE_KEY": "k" * 40,
            },
            "DJANGO_LINKAGE_KEY",
        ),
        ({"DJANGO_DEBUG": "1", "LINKAGE_REVIEW_SCORE": "high"}, "LINKAGE_REVIEW_SCORE"),
        ({"DJANGO_DEBUG": "1", "LINKAGE_REVIEW_SCORE": "1.5"}, "LINKAGE_REVIEW_SCORE"),
        ({"DJANGO_DEBUG": "1", "LINKAGE_REVIEW_SCORE": "nan"}, "LINKAGE_REVIEW_SCORE"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DJANGO_DEBUG": "1", "REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"DJANGO_DEBUG": "1", "DJANGO_ALLOWED_HOSTS": " , "}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_DEBUG": "1", "FIGURES_MIN_CELL": "one"}, "FIGURES_MIN_CELL"),
        ({"DJANGO_DEBUG": "1", "DJANGO_TRUSTED_PROXIES": "10.0.0.2, proxy.internal"}, "DJANGO_TRUSTED_PROXIES"),
        ({"DJANGO_DEBUG": "1", "DJANGO_TRUSTED_PROXIES": "10.0.0.2/8"}, "DJANGO_TRUSTED_PROXIES"),
        ({"DJANGO_DEBUG": "1", "DJANGO_TRUSTED_PROXIES": "0.0.0.0/0"}, "DJANGO_TRUSTED_PROXIES"),
        ({"DJANGO_DEBUG": "1", "DJANGO_TRUSTED_PROXIES": "::/0"}, "DJANGO_TRUSTED_PROXIES"),
        ({"DJANGO_DEBUG": "1", "EMAIL_URL": "mail.example.org:587"}, "EMAIL_URL"),
        ({"DJANGO_DEBUG": "1", "EMAIL_URL": "http://mail.example.org"}, "EMAIL_URL"),
        ({"DJANGO_DEBUG": "1", "EMAIL_URL": "smtp+tls://"}, "EMAIL_URL"),
        ({"DJANGO_DEBUG": "1", "EMAIL_URL": "smtp+tls://mail.example.org:99999"}, "EMAIL_URL"),
        ({"DJANGO_DEBUG": "1", "EMAIL_URL": "smtp+tls://mail.example.org:port"}, "EMAIL_URL"),
        ({"DJANGO_DEBUG": "1", "EMAIL_URL": "smtp+tls://mail.example.org/inbox?tls=1"}, "EMAIL_URL"),
        ({"DJANGO_DEBUG": "1", "DEFAULT_FROM_EMAIL": "register at ngo"}, "DEFAULT_FROM_EMAIL"),
        ({"DJANGO_DEBUG": "1", "PASSWORD_RESET_TIMEOUT_MINUTES": "1"}, "PASSWORD_RESET_TIMEOUT_MINUTES"),
        ({"DJANGO_DEBUG": "1", "SNAPSHOT_STALL_SECONDS": "soon"}, "SNAPSHOT_STALL_SECONDS"),
        ({"DJANGO_DEBUG": "1", "SNAPSHOT_STALL_SECONDS": "2"}, "SNAPSHOT_STALL_SECONDS"),
        # Development settings refused in production (found by probing: they passed check --deploy).
        (
            {
                "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": "s" * 40,
                "DJANGO_SECOND_FACTOR_KEYS": "k" * 40,
                "DJANGO_LINKAGE_KEY": "l" * 40,
                "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
            },
            "WEBHOOK_ALLOW_PRIVATE_ADDRESSES",
        ),
        (
            {
                "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": "s" * 40,
                "DJANGO_SECOND_FACTOR_KEYS": "k" * 40,
                "DJANGO_LINKAGE_KEY": "l" * 40,
                "WEBHOOK_ALLOW_HTTP": "yes",
            },
            "WEBHOOK_ALLOW_HTTP",
        ),
        ({"DJANGO_DEBUG": "1", "FIGURES_PRIVACY_RHO_PER_YEAR": "lots"}, "FIGURES_PRIVACY_RHO_PER_YEAR"),
        ({"DJANGO_DEBUG": "1", "FIGURES_PRIVACY_RHO_PER_YEAR": "0"}, "FIGURES_PRIVACY_RHO_PER_YEAR"),
        ({"DJANGO_DEBUG": "1", "FIGURES_PRIVACY_RHO_PER_YEAR": "-1"}, "FIGURES_PRIVACY_RHO_PER_YEAR"),
        ({"DJANGO_DEBUG": "1", "FIGURES_PRIVACY_RHO_PER_YEAR": "nan"}, "FIGURES_PRIVACY_RHO_PER_YEAR"),
        ({"DJANGO_DEBUG": "1", "FIGURES_PRIVACY_RHO_PER_YEAR": "inf"}, "FIGURES_PRIVACY_RHO_PER_YEAR"),
        ({"DJANGO_DEBUG": "1", "FIGURES_PRIVACY_RHO_PER_YEAR": "1000"}, "FIGURES_PRIVACY_RHO_PER_YEAR"),
        ({"DJANGO_DEBUG": "1", "FIGURES_RELEASE_MIN_DAYS": "6"}, "FIGURES_RELEASE_MIN_DAYS"),
        ({"DJANGO_DEBUG": "1", "FIGURES_RELEASE_MIN_DAYS": "400"}, "FIGURES_RELEASE_MIN_DAYS"),
        ({"DJANGO_DEBUG": "1", "FIGURES_RELEASE_APPROVERS": "0"}, "FIGURES_RELEASE_APPROVERS"),
        ({"DJANGO_DEBUG": "1", "FIGURES_RELEASE_APPROVERS": "3"}, "FIGURES_RELEASE_APPROVERS"),
        ({"DJANGO_DEBUG": "1", "FIGURES_RELEASE_SERIES_START": "2022-13"}, "FIGURES_RELEASE_SERIES_START"),
        ({"DJANGO_DEBUG": "1", "FIGURES_RELEASE_SERIES_START": "Feb 2022"}, "FIGURES_RELEASE_SERIES_START"),
    ],
)
def test_it_fails_loudly_on_a_bad_value(env, named):
    result = start(**env)
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Configuration error:")


def test_it_starts_with_good_values():
    result = start(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-long-enough-secret-key-for-this-test-0123456789",
        DJANGO_SECOND_FACTOR_KEYS="another-long-enough-key-for-this-test-9876543210",
        DJANGO_LINKAGE_KEY="a-third-long-enough-key-for-this-test-5678901234",
        DJANGO_ALLOWED_HOSTS="register.example.org",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr


def test_it_runs_tasks_eagerly_without_redis():
    from django.conf import settings as live

    without_redis = os.environ.get("REDIS_URL", "") == ""
    assert live.CELERY_TASK_ALWAYS_EAGER is without_redis


def run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    clean.update(env)
    return subprocess.run(command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "entry_point",
    [
        [sys.executable, "manage.py", "check"],
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_screening.py"],
        [sys.executable, "-c", "import config.wsgi"],
        [str(BIN / "celery"), "-A", "config", "worker", "--loglevel", "error"],
    ],
    ids=["manage.py", "pytest", "wsgi", "celery"],
)
def test_every_entry_point_says_a_bad_setting_in_one_line(entry_point):
    result = run(entry_point, DJANGO_DEBUG="maybe")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DJANGO_DEBUG='maybe' is not a boolean: use one of 1, 0, true, false, yes, no, on, off."
    ]


def test_a_database_url_of_another_kind_is_named_by_its_scheme_never_with_its_password():
    result = start(DJANGO_DEBUG="1", DATABASE_URL="mysql://root:s3cret-pass@db.example.org/register")
    assert result.stderr.strip() == (
        "Configuration error: DATABASE_URL has the scheme 'mysql://': "
        "use a postgres:// (or postgresql://) URL, or sqlite:///path/to/file."
    )
    assert "s3cret" not in result.stderr and "django.db.backends" not in result.stderr


def test_the_demo_database_starts_without_a_warning():
    result = start(DJANGO_DEBUG="1")
    assert result.returncode == 0
    assert "WARNING" not in result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def settings_of(*names: str, **env: str) -> dict[str, object]:
    """Some settings as the process started with ``env`` sees them (read in a subprocess)."""
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name) for name in {list(names)!r}}}))"
    )
    result = run([sys.executable, "-c", script], DJANGO_SETTINGS_MODULE="config.settings", **env)
    assert result.returncode == 0, result.stderr
    values: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return values


COOKIE_SETTINGS = (
    "SESSION_COOKIE_NAME",
    "CSRF_COOKIE_NAME",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_PATH",
    "CSRF_COOKIE_PATH",
    "SESSION_COOKIE_DOMAIN",
    "CSRF_COOKIE_DOMAIN",
)


def test_production_cookies_carry_the_host_prefix_and_meet_its_rules():
    values = settings_of(
        *COOKIE_SETTINGS,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="a-long-enough-secret-key-for-this-test-0123456789",
        DJANGO_SECOND_FACTOR_KEYS="another-long-enough-key-for-this-test-9876543210",
        DJANGO_LINKAGE_KEY="a-third-long-enough-key-for-this-test-5678901234",
        DJANGO_ALLOWED_HOSTS="register.example.org",
    )
    assert values == {
        "SESSION_COOKIE_NAME": "__Host-sessionid",
        "CSRF_COOKIE_NAME": "__Host-csrftoken",
        # What the prefix demands, or the browser drops the cookie: Secure, the whole site, no Domain.
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_PATH": "/",
        "CSRF_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        "CSRF_COOKIE_DOMAIN": None,
    }


def test_the_demo_over_plain_http_keeps_plain_cookie_names():
    values = settings_of(*COOKIE_SETTINGS, DJANGO_DEBUG="1")
    assert values["SESSION_COOKIE_NAME"] == "sessionid" and values["CSRF_COOKIE_NAME"] == "csrftoken"
    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False


def test_the_cookies_sent_meet_the_host_prefix_rules(client, caseworker):
    # The tests run with production settings (no DJANGO_DEBUG): the cookies as a browser receives them.
    page = client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "caseworker", "password": "correct-horse-battery-staple"})
    assert response.status_code == 302
    for name, sent in (("__Host-csrftoken", page), ("__Host-sessionid", response)):
        cookie = sent.cookies[name]
        assert cookie["secure"] is True and cookie["path"] == "/" and cookie["domain"] == "", name
    assert "sessionid" not in response.cookies and "csrftoken" not in page.cookies


def test_trusted_proxies_are_read_as_networks():
    listed = " 10.0.0.2, 10.1.0.0/16 ,fd00::/8,"
    values = settings_of("TRUSTED_PROXIES", DJANGO_DEBUG="1", DJANGO_TRUSTED_PROXIES=listed)
    assert values == {"TRUSTED_PROXIES": ["10.0.0.2/32", "10.1.0.0/16", "fd00::/8"]}
    assert settings_of("TRUSTED_PROXIES", DJANGO_DEBUG="1") == {"TRUSTED_PROXIES": []}


def test_a_bad_trusted_proxy_is_named_in_one_line():
    result = start(DJANGO_DEBUG="1", DJANGO_TRUSTED_PROXIES="10.0.0.2/8")
    assert result.stderr.strip() == (
        "Configuration error: DJANGO_TRUSTED_PROXIES: '10.0.0.2/8' has bits set after its prefix length; "
        "did you mean 10.0.0.0/8?"
    )


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "a-long-enough-secret-key-for-this-test-0123456789",
    "DJANGO_SECOND_FACTOR_KEYS": "another-long-enough-key-for-this-test-9876543210",
    "DJANGO_LINKAGE_KEY": "a-third-long-enough-key-for-this-test-5678901234",
    "DJANGO_ALLOWED_HOSTS": "register.example.org",
}
MAIL_SETTINGS = (
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "DEFAULT_FROM_EMAIL",
    "PASSWORD_RESET_BY_EMAIL",
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp+tls://register%40ngo.example:p%40ss%3Aword@mail.example.org",
            ("mail.example.org", 587, "register@ngo.example", "p@ss:word", True, False),
        ),
        (
            "smtps://register:secret@mail.example.org:2465",
            ("mail.example.org", 2465, "register", "secret", False, True),
        ),
        ("smtp://localhost", ("localhost", 25, "", "", False, False)),
        ("smtp://127.0.0.1:2525/", ("127.0.0.1", 2525, "", "", False, False)),
    ],
)
def test_the_mail_server_comes_from_email_url(url, expected):
    sender = "Register <register@ngo.example>"
    values = settings_of(*MAIL_SETTINGS, **PRODUCTION, EMAIL_URL=url, DEFAULT_FROM_EMAIL=sender)
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    names = ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL")
    assert tuple(values[name] for name in names) == expected
    assert values["DEFAULT_FROM_EMAIL"] == sender
    assert values["PASSWORD_RESET_BY_EMAIL"] is True


def test_the_demo_prints_mail_on_the_console_and_offers_the_reset():
    values = settings_of("EMAIL_BACKEND", "PASSWORD_RESET_BY_EMAIL", "DEFAULT_FROM_EMAIL", DJANGO_DEBUG="1")
    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "PASSWORD_RESET_BY_EMAIL": True,
        "DEFAULT_FROM_EMAIL": "register@localhost",
    }


def test_production_without_a_mail_server_sends_nothing_and_offers_no_reset():
    values = settings_of("EMAIL_BACKEND", "PASSWORD_RESET_BY_EMAIL", **PRODUCTION)
    # Never the console outside debug: reset links would land in the server's log.
    assert values == {"EMAIL_BACKEND": "config.mail.UnconfiguredBackend", "PASSWORD_RESET_BY_EMAIL": False}


def test_production_mail_needs_a_sender():
    result = start(**PRODUCTION, EMAIL_URL="smtp+tls://mail.example.org")
    assert result.stderr.strip() == (
        "Configuration error: DEFAULT_FROM_EMAIL is not set: give the address the register's mail comes from."
    )


def test_a_bad_email_url_is_named_in_one_line_never_with_its_password():
    result = start(DJANGO_DEBUG="1", EMAIL_URL="smtp://register:s3cret-pass@mail.example.org")
    assert result.stderr.strip() == (
        "Configuration error: EMAIL_URL would send mail in clear text to mail.example.org: "
        "use smtp+tls:// or smtps://, or smtp:// only to a relay on this machine (localhost)."
    )
    result = start(DJANGO_DEBUG="1", EMAIL_URL="imap://register:s3cret-pass@mail.example.org")
    assert result.stderr.strip().startswith("Configuration error: EMAIL_URL has the scheme 'imap://'")
    assert "s3cret" not in result.stderr
