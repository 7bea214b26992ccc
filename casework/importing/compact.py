"""What the import keeps of each case between rows: a few numbers in arrays, never the rows.

A dict from source_ref digest to a state object costs about 110 bytes a case before the state
itself (a million cases: over 100 MB); the arrays here cost about 40, and nothing else grows with
the number of rows. Digests are HMAC-SHA256 (uniformly distributed): their first 128 bits are the
key, so two different source_refs share a key with a probability below 10^-26 for a million cases.
"""

from __future__ import annotations

from array import array

from casework.models import Status

STATUS_CODES: tuple[str, ...] = tuple(Status.values)
CODE_OF: dict[str, int] = {status: code for code, status in enumerate(STATUS_CODES)}
REPORTED = CODE_OF[Status.REPORTED.value]


def key_of(digest: str) -> tuple[int, int]:
    """The 128-bit key of a hex digest, as two 64-bit halves."""
    return int(digest[:16], 16), int(digest[16:32], 16)


class CaseStates:
    """The cases of a file by ordinal (file order), found by digest through an open-addressing table.

    Per case: its line, report date, status while the events are replayed, version and last change
    date (dates as ordinals, 0 for none).
    """

    def __init__(self) -> None:
        self._hi = array("Q")
        self._lo = array("Q")
        self._slots = array("I", bytes(4 * 1024))  # 0: empty; otherwise ordinal + 1
        self._mask = 1023
        self.line = array("I")
        self.reported_on = array("i")
        self.status = bytearray()
        self.version = array("I")
        self.last_on = array("i")

    def __len__(self) -> int:
        return len(self.line)

    def find(self, digest: str) -> int | None:
        hi, lo = key_of(digest)
        slots, mask, his, los = self._slots, self._mask, self._hi, self._lo
        slot = hi & mask
        while True:
            taken = slots[slot]
            if not taken:
                return None
            if his[taken - 1] == hi and los[taken - 1] == lo:
                return taken - 1
            slot = (slot + 1) & mask

    def add(self, digest: str, *, line: int) -> int:
        """A new case (``find`` said it is not there); returns its ordinal."""
        ordinal = len(self.line)
        hi, lo = key_of(digest)
        self._hi.append(hi)
        self._lo.append(lo)
        self.line.append(line)
        self.reported_on.append(0)
        self.status.append(REPORTED)
        self.version.append(1)
        self.last_on.append(0)
        if 2 * (ordinal + 1) > len(self._slots):
            self._grow()
        else:
            self._place(ordinal)
        return ordinal

    def _place(self, ordinal: int) -> None:
        slots, mask = self._slots, self._mask
        slot = self._hi[ordinal] & mask
        while slots[slot]:
            slot = (slot + 1) & mask
        slots[slot] = ordinal + 1

    def _grow(self) -> None:
        size = len(self._slots) * 2
        self._slots = array("I", bytes(4 * size))
        self._mask = size - 1
        for ordinal in range(len(self._hi)):
            self._place(ordinal)
