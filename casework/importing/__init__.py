"""Importing an organisation's cases and their status history from CSV files.

Two steps, so that any door (``manage.py import_cases`` now, an upload form
later) can show every problem before anything is written:

- ``plan_import`` reads and checks both files, a row at a time (memory holds a batch of rows and a
  few numbers per case, never the files). Case fields are checked by
  ``services.validate_case_values`` and each case's status changes are
  replayed in memory, in file order, through ``services.check_move``: the
  rules live in the service, not here. It raises ``ImportErrors`` listing
  every problem (file, line, column, reason), or returns an ``ImportPlan``.
- ``apply_import`` reads the files again and writes them as it reads, in one
  transaction: with COPY on PostgreSQL (no model instances, ids drawn from
  the sequence first), with ``bulk_create`` in batches elsewhere. A file
  changed since its check is refused.

The organisation's own reference for a case (``source_ref``) is kept only as
a keyed hash (``linkage_digest``); it is never written to the database and
never repeated in messages.

Lookups (institutions, intermediaries, source_refs imported earlier,
references already taken) are made in bulk: the cost of an import does not
grow with one query per row.
"""

from casework.importing.common import (
    CASE_COLUMNS,
    EVENT_COLUMNS,
    ImportErrors,
    ImportPlan,
    ImportProblem,
    ImportResult,
    ProgressHook,
)
from casework.importing.planning import plan_import
from casework.importing.writing import apply_import

__all__ = [
    "CASE_COLUMNS",
    "EVENT_COLUMNS",
    "ImportErrors",
    "ImportPlan",
    "ImportProblem",
    "ImportResult",
    "ProgressHook",
    "apply_import",
    "plan_import",
]
