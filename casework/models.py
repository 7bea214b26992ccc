"""The anonymised case record (DESIGN.md section 2) and its status history.

A case never holds a name, an exact date of birth, an address, a phone, an
e-mail, a document number or a photo. Identifiers that help find duplicates
are kept only as keyed hashes (see ``casework.screening``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import localized_name


class Oblast(models.TextChoices):
    """Oblast of origin, as ISO 3166-2:UA codes (all 27)."""

    VINNYTSIA = "UA-05", _("Vinnytsia oblast")
    VOLYN = "UA-07", _("Volyn oblast")
    LUHANSK = "UA-09", _("Luhansk oblast")
    DNIPROPETROVSK = "UA-12", _("Dnipropetrovsk oblast")
    DONETSK = "UA-14", _("Donetsk oblast")
    ZHYTOMYR = "UA-18", _("Zhytomyr oblast")
    ZAKARPATTIA = "UA-21", _("Zakarpattia oblast")
    ZAPORIZHZHIA = "UA-23", _("Zaporizhzhia oblast")
    IVANO_FRANKIVSK = "UA-26", _("Ivano-Frankivsk oblast")
    KYIV_CITY = "UA-30", _("Kyiv city")
    KYIV = "UA-32", _("Kyiv oblast")
    KIROVOHRAD = "UA-35", _("Kirovohrad oblast")
    SEVASTOPOL = "UA-40", _("Sevastopol city")
    CRIMEA = "UA-43", _("Autonomous Republic of Crimea")
    LVIV = "UA-46", _("Lviv oblast")
    MYKOLAIV = "UA-48", _("Mykolaiv oblast")
    ODESA = "UA-51", _("Odesa oblast")
    POLTAVA = "UA-53", _("Poltava oblast")
    RIVNE = "UA-56", _("Rivne oblast")
    SUMY = "UA-59", _("Sumy oblast")
    TERNOPIL = "UA-61", _("Ternopil oblast")
    KHARKIV = "UA-63", _("Kharkiv oblast")
    KHERSON = "UA-65", _("Kherson oblast")
    KHMELNYTSKYI = "UA-68", _("Khmelnytskyi oblast")
    CHERKASY = "UA-71", _("Cherkasy oblast")
    # ISO 3166-2:UA: UA-74 is Chernihiv oblast, UA-77 Chernivtsi oblast.
    CHERNIHIV = "UA-74", _("Chernihiv oblast")
    CHERNIVTSI = "UA-77", _("Chernivtsi oblast")


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")
    UNKNOWN = "U", _("Unknown")


class Source(models.TextChoices):
    FAMILY = "family", _("Family")
    AUTHORITY_REGISTER = "authority_register", _("Authority register")
    PARTNER_NGO = "partner_ngo", _("Partner NGO")
    OPEN_SOURCE = "open_source", _("Open source")
    SELF_REPORT = "self_report", _("Self-report")


class Placement(models.TextChoices):
    CAMP = "camp", _("Camp or sanatorium")
    BOARDING_SCHOOL = "boarding_school", _("Boarding or cadet school")
    INSTITUTION = "institution", _("Orphanage or institution")
    FOSTER_FAMILY = "foster_family", _("Foster or adoptive family")
    RELATIVES = "relatives", _("With relatives")
    UNKNOWN = "unknown", _("Unknown")


class Status(models.TextChoices):
    REPORTED = "reported", _("Reported")
    VERIFIED = "verified", _("Verified")
    LOCATED = "located", _("Located")
    RETURN_REQUESTED = "return_requested", _("Return requested")
    REPATRIATED = "repatriated", _("Repatriated")
    REUNIFIED = "reunified", _("Reunified")
    DUPLICATE = "duplicate", _("Duplicate")
    WITHDRAWN = "withdrawn", _("Withdrawn")


# The main path, in order. Side statuses are not on it.
MAIN_PATH: tuple[str, ...] = (
    Status.REPORTED,
    Status.VERIFIED,
    Status.LOCATED,
    Status.RETURN_REQUESTED,
    Status.REPATRIATED,
    Status.REUNIFIED,
)
SIDE_STATUSES: frozenset[str] = frozenset({Status.DUPLICATE, Status.WITHDRAWN})
RETURNED_STATUSES: frozenset[str] = frozenset({Status.REPATRIATED, Status.REUNIFIED})
# Statuses that may name the intermediary organisation that acted.
VIA_STATUSES: frozenset[str] = frozenset({Status.RETURN_REQUESTED, Status.REPATRIATED, Status.REUNIFIED})
CLOSED_STATUSES: frozenset[str] = frozenset({Status.REUNIFIED, Status.DUPLICATE, Status.WITHDRAWN})


class DisplacedPrecision(models.TextChoices):
    MONTH = "month", _("Month")
    DAY = "day", _("Day")


class Institution(models.Model):
    """A known institution where children are held."""

    class Kind(models.TextChoices):
        CAMP = "camp", _("Camp or sanatorium")
        BOARDING_SCHOOL = "boarding_school", _("Boarding or cadet school")
        ORPHANAGE = "orphanage", _("Orphanage or children's home")
        HOSPITAL = "hospital", _("Hospital or rehabilitation centre")
        OTHER = "other", _("Other")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    name_uk = models.CharField(_("name in Ukrainian"), max_length=200, blank=True)
    region = models.CharField(_("region"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)

    class Meta:
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.code})"

    @property
    def display_name(self) -> str:
        return localized_name(self.name, self.name_uk)


class Case(models.Model):
    reference = models.CharField(_("reference"), max_length=11, unique=True, editable=False)
    # Indexed through the composite indexes that start with it (Meta.indexes).
    organisation = models.ForeignKey(
        "accounts.Organisation",
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="cases",
        db_index=False,
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned caseworker"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_cases",
    )
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_year = models.PositiveSmallIntegerField(_("birth year"), null=True, blank=True)
    oblast = models.CharField(_("oblast of origin"), max_length=5, choices=Oblast.choices)
    reported_on = models.DateField(_("reported on"))
    displaced_on = models.DateField(_("displaced on"), null=True, blank=True)
    displaced_precision = models.CharField(
        _("displacement date precision"), max_length=5, choices=DisplacedPrecision.choices, blank=True
    )
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, blank=True)
    placement = models.CharField(_("placement"), max_length=20, choices=Placement.choices, blank=True)
    institution = models.ForeignKey(
        Institution,
        verbose_name=_("institution"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
    )
    risk_adoption = models.BooleanField(_("adoption or guardianship in Russia"), default=False)
    risk_citizenship = models.BooleanField(_("Russian citizenship imposed"), default=False)
    risk_military = models.BooleanField(_("military training or mobilisation risk"), default=False)
    risk_medical = models.BooleanField(_("medical needs"), default=False)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.REPORTED)
    # Every change to the case (fields or status) bumps the version; a write
    # based on an older version is refused, never applied over the newer one.
    version = models.PositiveIntegerField(_("version"), default=1)
    notes = models.TextField(_("notes"), blank=True)
    # Keyed hash of the reporting organisation's own reference (import).
    source_ref_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_change_at = models.DateTimeField(_("last status change"), null=True, blank=True)

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-reported_on", "reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "source_ref_hash"],
                condition=models.Q(source_ref_hash__isnull=False),
                name="case_unique_source_ref_per_organisation",
            ),
            models.CheckConstraint(
                condition=models.Q(birth_year__isnull=True) | models.Q(birth_year__gte=1990),
                name="case_birth_year_plausible",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "-reported_on"], name="case_org_reported"),
            models.Index(fields=["organisation", "oblast"], name="case_org_oblast"),
            # The partner API pages by (updated_at, id) for incremental sync.
            models.Index(fields=["updated_at", "id"], name="case_updated_id"),
        ]
        # PostgreSQL also has case_org_status_oblast_changed (migration 0008) for the
        # filtered case list, newest change first (SQLite cannot index NULLS LAST); it
        # also serves filters on (organisation, status). One organisation's figures read
        # its cases through case_org_* (reports.figures).

    def __str__(self) -> str:
        return self.reference

    @property
    def age_band(self) -> str:
        """The age band at the report (``unknown`` without a birth year)."""
        return age_band_at_report(birth_year=self.birth_year, reported_on=self.reported_on)

    @property
    def risk_flags(self) -> list[str]:
        return [name for name in RISK_FLAGS if getattr(self, f"risk_{name}")]


RISK_FLAGS: tuple[str, ...] = ("adoption", "citizenship", "military", "medical")

# DESIGN.md section 4: age = year of reported_on - birth_year, in these bands.
AGE_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 4, "0-4"),
    (5, 9, "5-9"),
    (10, 13, "10-13"),
    (14, 17, "14-17"),
    (18, None, "18+"),
)
UNKNOWN_AGE_BAND = "unknown"


def age_band_at_report(*, birth_year: int | None, reported_on: dt.date | None) -> str:
    """A case's age band from its values (``Case.age_band``, and a page read as values)."""
    if reported_on is None:
        return UNKNOWN_AGE_BAND
    return age_band_key(birth_year=birth_year, reported_year=reported_on.year)


def age_band_key(*, birth_year: int | None, reported_year: int) -> str:
    if birth_year is None:
        return UNKNOWN_AGE_BAND
    age = reported_year - birth_year
    for low, high, key in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return key
    return UNKNOWN_AGE_BAND


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """History rows are written once; the application never edits or deletes them."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise PermissionError(f"{self.model.__name__} rows are append-only and cannot be updated.")

    def delete(self) -> NoReturn:
        raise PermissionError(f"{self.model.__name__} rows are append-only and cannot be deleted.")


class StatusChange(models.Model):
    # Every write pays for every index here, and imports write millions of rows:
    # only the indexes that reads need. (case, occurred_on, id) serves lookups by case.
    case = models.ForeignKey(
        Case, verbose_name=_("case"), on_delete=models.PROTECT, related_name="status_changes", db_index=False
    )
    from_status = models.CharField(_("from"), max_length=20, choices=Status.choices)
    to_status = models.CharField(_("to"), max_length=20, choices=Status.choices)
    occurred_on = models.DateField(_("occurred on"))
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    recorded_by_token = models.ForeignKey(
        "accounts.ApiToken",
        verbose_name=_("recorded by API token"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Free text naming a non-user recorder, e.g. "import" or a partner token.
    recorded_via = models.CharField(_("recorded through"), max_length=100, blank=True)
    via = models.ForeignKey(
        "accounts.Organisation",
        verbose_name=_("via intermediary"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    duplicate_of = models.ForeignKey(
        Case,
        verbose_name=_("duplicate of"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    note = models.TextField(_("note"), blank=True)
    is_correction = models.BooleanField(_("correction"), default=False)
    # The case's version after this change.
    version = models.PositiveIntegerField(_("version"))
    # The audit chain (casework.audit_chain): a hash over this row's content and the previous row's hash.
    # The note is covered through its digest, so that the retention policy may erase a note and keep the chain.
    note_digest = models.CharField(_("note digest"), max_length=64, blank=True, editable=False)
    chain_hash = models.CharField(_("chain hash"), max_length=64, blank=True, editable=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        ordering = ["case", "occurred_on", "id"]
        indexes = [
            models.Index(fields=["case", "occurred_on", "id"], name="change_case_occurred"),
            # PostgreSQL also has two partial indexes for the figures (migration 0024): the moves they
            # count, by case and covering what they read (change_figures_moves), and the exits from
            # the returned statuses (change_figures_exits). Their predicates are in reports.figures.
            # Few rows name a surviving case: a partial index keeps the foreign-key
            # check cheap without charging every other insert for it.
            models.Index(
                fields=["duplicate_of"],
                name="change_duplicate_of",
                condition=models.Q(duplicate_of__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status} ({self.occurred_on})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError("Status changes are append-only and cannot be edited.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("Status changes are append-only and cannot be deleted.")


class StatusEvent(models.Model):
    """The outbox: a status change to be announced, written in the transaction that recorded the change.

    Whoever follows cases (partners' webhooks) claims unprocessed events and marks them processed
    when they have acted on them; a change whose announcement failed stays unprocessed and is
    claimed again by the periodic sweep. casework itself never needs to know who follows.
    """

    status_change = models.OneToOneField(
        StatusChange, verbose_name=_("status change"), on_delete=models.PROTECT, related_name="event"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)

    class Meta:
        verbose_name = _("status event")
        verbose_name_plural = _("status events")
        ordering = ["id"]
        # The sweep reads the few unprocessed events; processed ones are never scanned.
        indexes = [
            models.Index(fields=["id"], name="statusevent_unprocessed", condition=models.Q(processed_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"{self.status_change_id} ({'processed' if self.processed_at else 'pending'})"


class CaseEdit(models.Model):
    """One edit of a case's fields: which fields changed, by whom, to which version.

    Kept so that a stale write can be told exactly what changed meanwhile.
    """

    case = models.ForeignKey(Case, verbose_name=_("case"), on_delete=models.PROTECT, related_name="edits")
    version = models.PositiveIntegerField(_("version"))
    edited_at = models.DateTimeField(_("edited at"))
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("edited by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    fields = models.JSONField(_("changed fields"), default=list)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("case edit")
        verbose_name_plural = _("case edits")
        ordering = ["case", "version"]

    def __str__(self) -> str:
        return f"{self.case_id} v{self.version}: {', '.join(self.fields)}"


class CaseIdentifier(models.Model):
    """A keyed hash (HMAC-SHA256) of an identifier that helps find duplicates."""

    class Kind(models.TextChoices):
        REGISTER_NUMBER = "register_number", _("Register number")
        NAME_AND_BIRTH_DATE = "name_birth_date", _("Name with date of birth")
        PARTNER_REFERENCE = "partner_reference", _("Partner's reference")

    case = models.ForeignKey(Case, verbose_name=_("case"), on_delete=models.CASCADE, related_name="identifiers")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    digest = models.CharField(_("digest"), max_length=64, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("linkage identifier")
        verbose_name_plural = _("linkage identifiers")
        constraints = [
            models.UniqueConstraint(fields=["case", "kind", "digest"], name="identifier_unique_per_case"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.digest[:8]}"


class AccessLog(models.Model):
    """Who read or changed which case, by which door, when and from where. Never the case's content."""

    class Door(models.TextChoices):
        WEB = "web", _("Web")
        ADMIN = "admin", _("Admin")
        API = "api", _("API")
        EXPORT = "export", _("Export")
        COMMAND = "command", _("Command line")
        # A webhook event sent to a partner: the receiving organisation read the case.
        WEBHOOK = "webhook", _("Webhook")

    class Action(models.TextChoices):
        VIEW = "view", _("Viewed")
        LIST = "list", _("Listed")
        CREATE = "create", _("Created")
        EDIT = "edit", _("Edited")
        STATUS_CHANGE = "status_change", _("Changed status")
        SHARE = "share", _("Shared")
        REVOKE = "revoke", _("Revoked a share")
        EXPORT = "export", _("Exported")
        # A follow-up made by hand, closed (done) or reassigned with the case.
        FOLLOW_UP = "follow_up", _("Worked on a follow-up")
        REASSIGN = "reassign", _("Reassigned")
        # Decided whether this case and another are the same child (linkage).
        LINK = "link", _("Decided a link")
        # A file of cases imported on the web (one row for the import), and its references file downloaded.
        IMPORT = "import", _("Imported cases")
        IMPORT_REFERENCES = "import_refs", _("Downloaded an import's references")

    at = models.DateTimeField(_("at"), db_index=True)
    # No foreign key constraints in the database (db_constraint=False), and deletion still PROTECTed by Django:
    # each constraint was checked at COMMIT for every row written, locking the case, the user and the
    # organisation FOR KEY SHARE while the chain's head was held, so that every page's log write made
    # concurrent readers of one organisation share locks on its row (multixacts). The rows are written
    # only by casework.audit with ids the request has just read; the log outlives nothing it names.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    token = models.ForeignKey(
        "accounts.ApiToken",
        verbose_name=_("API token"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    organisation = models.ForeignKey(
        "accounts.Organisation",
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    # Indexed by accesslog_case_at (case, -at), which serves every lookup by case: no index of its own.
    case = models.ForeignKey(
        Case,
        verbose_name=_("case"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_log",
        db_constraint=False,
        db_index=False,
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    door = models.CharField(_("door"), max_length=10, choices=Door.choices)
    ip_address = models.GenericIPAddressField(_("from address"), null=True, blank=True)
    # The audit chain (casework.audit_chain): a hash over this row's content and the previous row's hash.
    chain_hash = models.CharField(_("chain hash"), max_length=64, blank=True, editable=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["case", "-at"], name="accesslog_case_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.case_id}"


class AuditChainHead(models.Model):
    """The last link of an audit chain: the hash the next row of that table chains from.

    Appending rows locks this row for the transaction, so links are made one writer at a time, in id order.
    """

    table = models.CharField(_("table"), max_length=63, unique=True)
    last_hash = models.CharField(_("last hash"), max_length=64)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("audit chain head")
        verbose_name_plural = _("audit chain heads")

    def __str__(self) -> str:
        return f"{self.table}: {self.last_hash[:12]}"


class RetentionRun(models.Model):
    """What one run of the retention policy did (counts only, never content)."""

    ran_at = models.DateTimeField(_("ran at"))
    access_log_deleted = models.PositiveIntegerField(_("access-log rows deleted"), default=0)
    cases_erased = models.PositiveIntegerField(_("cases whose free text was erased"), default=0)
    notes_erased = models.PositiveIntegerField(_("history notes erased"), default=0)
    access_log_days = models.PositiveIntegerField(_("access-log retention (days)"))
    closed_case_years = models.PositiveIntegerField(_("closed-case retention (years)"))
    # The hash of the last access-log row erased: where the remaining chain starts from.
    access_log_anchor = models.CharField(_("access-log chain anchor"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        return f"{self.ran_at:%Y-%m-%d %H:%M}"


# Follow-ups live in their own module; imported here so that Django finds them.
from casework.import_models import ImportJob, ImportMapping  # noqa: E402, F401
from casework.task_models import FollowUpRule, Notice, SavedFilter, Task, TaskKind  # noqa: E402, F401
