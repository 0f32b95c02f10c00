"""The journal: every exchange on every hop, in SQLite, with live subscriptions, paged queries and export."""

from sandbox.journal.entry import Entry
from sandbox.journal.store import Journal

__all__ = ["Entry", "Journal"]
