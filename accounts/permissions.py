"""Who may do what (DESIGN.md section 5): the one home of every role rule.

Every door (views, services, selectors, the admin, the API, commands) asks
these predicates; none writes a role rule of its own. A predicate takes
anything with ``role`` and ``is_superuser`` (a user, or a service's actor), and
for rules about an organisation's own things, the organisation concerned.

| action                                   | caseworker | supervisor | analyst | org admin | superuser |
|------------------------------------------|------------|------------|---------|-----------|-----------|
| read case records (own organisation's)   | yes        | yes        | no      | yes       | yes       |
| create, edit, move cases forward         | yes        | yes        | no      | no        | yes       |
| correct, withdraw, mark duplicate        | no         | yes        | no      | no        | yes       |
| share cases, read a case's access log,   | no         | yes        | no      | no        | yes       |
| export case lists                        |            |            |         |           |           |
| manage the organisation's people, API    | no         | no         | no      | own org   | yes       |
| tokens and webhooks                      |            |            |         |           |           |
| exact figures of own organisation's cases| yes        | yes        | yes     | yes       | yes       |
| exact register-wide figures              | host org   | host org   | host org| host org  | yes       |
| ask for new figures (snapshots)          | no         | yes        | yes     | no        | yes       |
| prepare a release / approve one          | no         | host org:  | host org| no        | yes / yes |
| (drafts: seen by those who may)          |            | yes / yes  | yes / no|           |           |
| pass a second factor at sign-in          | if set     | yes        | if set  | yes       | yes       |
| issue enrolment codes, reset another's   | no         | no         | no      | own org's | yes       |
| second factor                            |            |            |         | people    |           |
| read own org's lists to intermediaries   | yes        | yes        | no      | yes       | yes       |
| compose, send, close a list              | no         | yes        | no      | no        | yes       |
| record an intermediary's answer (web)    | yes        | yes        | no      | no        | yes       |
| make and close follow-ups                | yes        | yes        | no      | no        | yes       |
| team view, bulk reassign, follow-up rules| no         | yes        | no      | no        | yes       |
| import case files on the web (own org)   | no         | yes        | no      | no        | yes       |
| review possible duplicates in own org    | no         | yes        | no      | no        | no        |
| review the same child across orgs        | no         | host org   | no      | no        | no        |

Partner tokens act only through shares (partners.selectors), and an
intermediary's token answers only on its open lists with update scope
(``token_can_record_answers``); the exact
figures each reader sees are decided in ``exact_figures_scope``.
"""

from __future__ import annotations

import enum
from typing import Any, Protocol

from django.conf import settings

from accounts.models import Role, TokenScope


class HasRole(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def is_superuser(self) -> bool: ...


CASE_READER_ROLES = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ORG_ADMIN})
CASE_EDITOR_ROLES = frozenset({Role.CASEWORKER, Role.SUPERVISOR})
SNAPSHOT_REQUESTER_ROLES = frozenset({Role.SUPERVISOR, Role.ANALYST})
RELEASE_PREPARER_ROLES = frozenset({Role.SUPERVISOR, Role.ANALYST})
RELEASE_APPROVER_ROLES = frozenset({Role.SUPERVISOR})
ROLES_WITH_SECOND_FACTOR = frozenset({Role.SUPERVISOR, Role.ORG_ADMIN})


def _active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", True) and getattr(user, "is_active", True))


# --- cases -------------------------------------------------------------------------------


def can_read_cases(user: Any) -> bool:
    """Case records (an analyst sees aggregate figures only)."""
    return _active(user) and (bool(user.is_superuser) or user.role in CASE_READER_ROLES)


def can_edit_cases(who: HasRole) -> bool:
    """Create cases, edit their fields and move them forward."""
    return bool(who.is_superuser) or who.role in CASE_EDITOR_ROLES


def can_correct_cases(who: HasRole) -> bool:
    """Move a case backwards (a correction), withdraw it, or mark it a duplicate."""
    return bool(who.is_superuser) or who.role == Role.SUPERVISOR


def can_share_cases(user: Any) -> bool:
    """Share cases with partners and revoke shares."""
    return can_read_cases(user) and can_correct_cases(user)


def can_read_access_log(user: Any) -> bool:
    """Who read or changed a case."""
    return can_share_cases(user)


def can_export_cases(user: Any) -> bool:
    """The case list as a file: anonymised fields, every exported case logged."""
    return can_share_cases(user)


# --- lists to intermediaries ------------------------------------------------------------


def _own(user: Any, organisation_id: int | None) -> bool:
    return bool(user.is_superuser) or organisation_id is None or organisation_id == user.organisation_id


def can_read_lists(user: Any, organisation_id: int | None = None) -> bool:
    """The lists an organisation sent (without ``organisation_id``: whether the user reads any)."""
    return can_read_cases(user) and _own(user, organisation_id)


def can_compose_lists(user: Any, organisation_id: int | None = None) -> bool:
    """Compose, send and close the organisation's lists: its supervisors."""
    return can_share_cases(user) and _own(user, organisation_id)


def can_record_answers(user: Any, organisation_id: int | None = None) -> bool:
    """Record on the web an intermediary's answer to one of the organisation's lists."""
    return can_read_cases(user) and can_edit_cases(user) and _own(user, organisation_id)


def token_can_record_answers(token: Any) -> bool:
    """An intermediary's token records answers (on its own open lists only) when it may write at all."""
    return bool(token.scope == TokenScope.UPDATE)


def can_work_on_tasks(user: Any) -> bool:
    """Make follow-ups on cases by hand and close them (anyone who edits cases)."""
    return can_read_cases(user) and can_edit_cases(user)


def can_lead_team(user: Any) -> bool:
    """See the team's follow-ups per caseworker, reassign cases in bulk, and edit the organisation's
    follow-up rules: supervisors (and superusers)."""
    return can_read_cases(user) and can_correct_cases(user)


def can_import_cases(user: Any, organisation_id: int | None = None) -> bool:
    """Import a file of cases and their status history into the organisation, on the web: its supervisors.

    An import creates cases and replays every move, corrections, withdrawals and duplicates included, so it
    needs what a supervisor may do by hand; an org admin does not create cases and a caseworker does not
    correct them. Only into one's own organisation (without ``organisation_id``: whether the user may
    import at all), and only for a user who belongs to one.
    """
    if not (can_read_cases(user) and can_correct_cases(user)):
        return False
    own = getattr(user, "organisation_id", None)
    return own is not None and (organisation_id is None or organisation_id == own)


# --- the same child in several organisations (DESIGN.md section 11) -------------------------


def can_review_links_within(user: Any, organisation_id: int) -> bool:
    """Decide whether two cases of one organisation are one child (then mark the duplicate): its supervisors.

    A superuser who is no supervisor of it does not: the pairs show cases side by side, for people who
    work on them.
    """
    return (
        _active(user)
        and getattr(user, "role", None) == Role.SUPERVISOR
        and getattr(user, "organisation_id", None) == organisation_id
    )


def can_review_links_across(user: Any) -> bool:
    """Decide whether cases of different organisations are one child: the host organisation's supervisors
    only (the coalition's secretariat); to everyone else these pairs are absent (404)."""
    if not _active(user) or getattr(user, "role", None) != Role.SUPERVISOR:
        return False
    organisation = getattr(user, "organisation", None)
    return organisation is not None and bool(organisation.is_host)


def can_review_links(user: Any) -> bool:
    """Whether the review queue exists for this user at all."""
    return can_review_links_across(user) or can_review_links_within(user, getattr(user, "organisation_id", None) or 0)


# --- the organisation --------------------------------------------------------------------


def can_manage_organisation(user: Any, organisation_id: int | None = None) -> bool:
    """Manage an organisation's people, API tokens and webhooks: its admin, or a superuser.

    Without ``organisation_id``: whether the user manages their own organisation at all.
    """
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    if user.role != Role.ORG_ADMIN:
        return False
    return organisation_id is None or organisation_id == user.organisation_id


def can_manage_second_factor(actor: Any, user: Any) -> bool:
    """Issue an enrolment code to a user, or reset their lost second factor.

    Never one's own (a stolen password must not enrol or reset a factor); staff and superusers only by a
    superuser; everyone else by their organisation's admin.
    """
    if not _active(actor) or actor.pk == user.pk:
        return False
    if actor.is_superuser:
        return True
    if user.is_superuser or user.is_staff:
        return False
    return bool(actor.role == Role.ORG_ADMIN and actor.organisation_id == user.organisation_id)


def can_change_account(actor: Any, user: Any) -> bool:
    """Change another person's account (role, name, address, password; deactivate; delete) in the admin.

    A superuser: anyone. Staff who are not superusers: the people of their own organisation who are
    neither staff nor superusers, never themselves (their own account is on the account page: a staff
    member who could raise their own role, or take over a superuser's account, would be one).
    """
    if not _active(actor):
        return False
    if actor.is_superuser:
        return True
    if user is None:
        return True  # the list: each row is checked on its own
    return bool(
        actor.pk != user.pk
        and not user.is_superuser
        and not user.is_staff
        and user.organisation_id == actor.organisation_id
    )


def can_manage_person(actor: Any, user: Any) -> bool:
    """Change a user's role, deactivate them, or invite them again: their organisation's admin, or a
    superuser. Never one's own account (an admin cannot lock themselves out); staff and superusers only
    by a superuser."""
    if not _active(actor) or actor.pk == user.pk:
        return False
    if actor.is_superuser:
        return True
    if user.is_superuser or user.is_staff:
        return False
    return bool(actor.role == Role.ORG_ADMIN and actor.organisation_id == user.organisation_id)


# --- figures -----------------------------------------------------------------------------


class FiguresScope(enum.Enum):
    ALL = "all"  # exact figures of every organisation's cases
    ORGANISATION = "organisation"  # exact figures of the reader's organisation's cases
    PUBLISHED = "published"  # published figures only


EXACT_FIGURES_ROLES = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ANALYST, Role.ORG_ADMIN})


def exact_figures_scope(user: Any) -> FiguresScope:
    """Which exact figures a reader may see: every organisation's cases (superusers, and the users of the
    organisation that hosts the register), their own organisation's (everyone else with a role), or none."""
    if not _active(user):
        return FiguresScope.PUBLISHED
    if user.is_superuser:
        return FiguresScope.ALL
    if user.role not in EXACT_FIGURES_ROLES:
        return FiguresScope.PUBLISHED
    organisation = getattr(user, "organisation", None)
    if organisation is not None and organisation.is_host:
        return FiguresScope.ALL
    return FiguresScope.ORGANISATION


def can_request_snapshots(user: Any) -> bool:
    return _active(user) and (bool(user.is_superuser) or user.role in SNAPSHOT_REQUESTER_ROLES)


def _reads_register_wide_figures(user: Any) -> bool:
    return exact_figures_scope(user) is FiguresScope.ALL


def can_prepare_release(user: Any) -> bool:
    """Prepare (and discard) a draft release: supervisors and analysts of the host organisation, superusers.

    A draft's protected cells are not public yet, and whoever could prepare and discard drafts at will
    could average their noise away: so only readers of the exact register-wide figures, who learn
    nothing from a draft, handle them.
    """
    return _active(user) and (
        bool(user.is_superuser) or (user.role in RELEASE_PREPARER_ROLES and _reads_register_wide_figures(user))
    )


def can_approve_release(user: Any) -> bool:
    """Approve a release, which publishes it: supervisors of the host organisation, superusers."""
    return _active(user) and (
        bool(user.is_superuser) or (user.role in RELEASE_APPROVER_ROLES and _reads_register_wide_figures(user))
    )


def can_see_release_drafts(user: Any) -> bool:
    return can_prepare_release(user) or can_approve_release(user)


# --- signing in ----------------------------------------------------------------------------


def second_factor_required(user: Any) -> bool:
    """Superusers, staff (the admin), supervisors and organisation admins; everyone with OTP_REQUIRED_FOR_ALL."""
    if user is None or not user.is_authenticated:
        return False
    return bool(
        settings.OTP_REQUIRED_FOR_ALL
        or user.is_superuser
        or user.is_staff
        or getattr(user, "role", None) in ROLES_WITH_SECOND_FACTOR
    )
