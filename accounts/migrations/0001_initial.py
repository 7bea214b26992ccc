"""The accounts app takes over organisations, users, API tokens and sign-in events from ``partners``.

The tables stay where they are (``partners_organisation``, ``partners_user``,
``partners_apitoken``, ``partners_authevent`` and the user's group and
permission tables): this migration changes Django's idea of which app owns
them, nothing in the database. On a database created before the move, the
``migrate`` command of this app records this migration as applied before it
migrates (it must be, before Django will look at the rest of the history;
see accounts/management/commands/migrate.py). ``partners.0006`` then drops
the models from ``partners``.
"""

import django.contrib.auth.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import accounts.models

KINDS = [
    ("sign_in", "Signed in"),
    ("sign_in_failed", "Failed sign-in"),
    ("locked_out", "Locked out"),
    ("sign_out", "Signed out"),
    ("otp_verified", "Passed the second factor"),
    ("otp_failed", "Wrong second-factor code"),
    ("otp_set_up", "Set up two-factor sign-in"),
    ("backup_codes_made", "Made new backup codes"),
    ("permission_denied", "Refused"),
]

STATE = [
    migrations.CreateModel(
        name="Organisation",
        fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("slug", models.SlugField(unique=True, verbose_name="slug")),
            ("name", models.CharField(max_length=200, verbose_name="name")),
            (
                "kind",
                models.CharField(
                    choices=[
                        ("ngo", "NGO"),
                        ("intermediary", "Intermediary"),
                        ("authority", "Authority"),
                        ("international", "International organisation"),
                    ],
                    max_length=20,
                    verbose_name="kind",
                ),
            ),
            ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
        ],
        options={
            "verbose_name": "organisation",
            "verbose_name_plural": "organisations",
            "ordering": ["name"],
            "db_table": "partners_organisation",
        },
    ),
    migrations.CreateModel(
        name="User",
        fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("password", models.CharField(max_length=128, verbose_name="password")),
            ("last_login", models.DateTimeField(blank=True, null=True, verbose_name="last login")),
            (
                "is_superuser",
                models.BooleanField(
                    default=False,
                    help_text="Designates that this user has all permissions without explicitly assigning them.",
                    verbose_name="superuser status",
                ),
            ),
            (
                "username",
                models.CharField(
                    error_messages={"unique": "A user with that username already exists."},
                    help_text="Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only.",
                    max_length=150,
                    unique=True,
                    validators=[django.contrib.auth.validators.UnicodeUsernameValidator()],
                    verbose_name="username",
                ),
            ),
            ("first_name", models.CharField(blank=True, max_length=150, verbose_name="first name")),
            ("last_name", models.CharField(blank=True, max_length=150, verbose_name="last name")),
            ("email", models.EmailField(blank=True, max_length=254, verbose_name="email address")),
            (
                "is_staff",
                models.BooleanField(
                    default=False,
                    help_text="Designates whether the user can log into this admin site.",
                    verbose_name="staff status",
                ),
            ),
            (
                "is_active",
                models.BooleanField(
                    default=True,
                    help_text=(
                        "Designates whether this user should be treated as active. "
                        "Unselect this instead of deleting accounts."
                    ),
                    verbose_name="active",
                ),
            ),
            ("date_joined", models.DateTimeField(default=django.utils.timezone.now, verbose_name="date joined")),
            (
                "role",
                models.CharField(
                    choices=[
                        ("caseworker", "Caseworker"),
                        ("supervisor", "Supervisor"),
                        ("analyst", "Analyst"),
                        ("org_admin", "Organisation admin"),
                    ],
                    default="caseworker",
                    max_length=20,
                    verbose_name="role",
                ),
            ),
            (
                "groups",
                models.ManyToManyField(
                    blank=True,
                    help_text=(
                        "The groups this user belongs to. A user will get all permissions granted to each of their "
                        "groups."
                    ),
                    related_name="user_set",
                    related_query_name="user",
                    to="auth.group",
                    verbose_name="groups",
                ),
            ),
            (
                "user_permissions",
                models.ManyToManyField(
                    blank=True,
                    help_text="Specific permissions for this user.",
                    related_name="user_set",
                    related_query_name="user",
                    to="auth.permission",
                    verbose_name="user permissions",
                ),
            ),
            (
                "organisation",
                models.ForeignKey(
                    on_delete=django.db.models.deletion.PROTECT,
                    related_name="users",
                    to="accounts.organisation",
                    verbose_name="organisation",
                ),
            ),
        ],
        options={"verbose_name": "user", "verbose_name_plural": "users", "db_table": "partners_user"},
        managers=[("objects", accounts.models.OrganisationUserManager())],
    ),
    migrations.CreateModel(
        name="ApiToken",
        fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("name", models.CharField(blank=True, max_length=100, verbose_name="name")),
            ("prefix", models.CharField(max_length=12, unique=True, verbose_name="prefix")),
            ("digest", models.CharField(max_length=64)),
            (
                "scope",
                models.CharField(
                    choices=[("read", "Read"), ("update", "Read and update")],
                    default="read",
                    max_length=10,
                    verbose_name="scope",
                ),
            ),
            ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
            ("expires_at", models.DateTimeField(blank=True, null=True, verbose_name="expires at")),
            ("last_used_at", models.DateTimeField(blank=True, null=True, verbose_name="last used")),
            ("revoked_at", models.DateTimeField(blank=True, null=True, verbose_name="revoked at")),
            (
                "created_by",
                models.ForeignKey(
                    blank=True,
                    null=True,
                    on_delete=django.db.models.deletion.PROTECT,
                    related_name="+",
                    to="accounts.user",
                    verbose_name="created by",
                ),
            ),
            (
                "organisation",
                models.ForeignKey(
                    on_delete=django.db.models.deletion.PROTECT,
                    related_name="api_tokens",
                    to="accounts.organisation",
                    verbose_name="organisation",
                ),
            ),
        ],
        options={
            "verbose_name": "API token",
            "verbose_name_plural": "API tokens",
            "ordering": ["-created_at"],
            "db_table": "partners_apitoken",
        },
    ),
    migrations.CreateModel(
        name="AuthEvent",
        fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name="at")),
            ("kind", models.CharField(choices=KINDS, max_length=20, verbose_name="kind")),
            ("username", models.CharField(blank=True, max_length=150, verbose_name="username")),
            ("ip_address", models.GenericIPAddressField(blank=True, null=True, verbose_name="address")),
            ("path", models.CharField(blank=True, max_length=200, verbose_name="page")),
            (
                "organisation",
                models.ForeignKey(
                    blank=True,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    related_name="+",
                    to="accounts.organisation",
                    verbose_name="organisation",
                ),
            ),
            (
                "user",
                models.ForeignKey(
                    blank=True,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    related_name="+",
                    to="accounts.user",
                    verbose_name="user",
                ),
            ),
        ],
        options={
            "verbose_name": "sign-in event",
            "verbose_name_plural": "sign-in events",
            "ordering": ["-at", "-id"],
            "indexes": [models.Index(fields=["username", "at"], name="authevent_username_at")],
            "db_table": "partners_authevent",
        },
    ),
]


class Migration(migrations.Migration):
    initial = True

    # The tables are created by partners' migrations up to 0005 (the layout before the move).
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("partners", "0005_share_covering_index"),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=STATE, database_operations=[])]
