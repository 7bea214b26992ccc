"""What casework tells the rest of the register, without importing it.

``status_change_recorded`` is sent after the transaction that recorded a
status change commits. It is only a nudge: the change's ``StatusEvent`` (the
outbox row written in the same transaction) is what must be acted on, and a
periodic sweep acts on any event whose nudge was lost.
"""

from django.dispatch import Signal

# Arguments: change_id (the StatusChange's id).
status_change_recorded = Signal()
