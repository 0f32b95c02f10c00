"""The receive flow every receiving role shares (hop 1 at the center, hop 2 at the province).

One message goes through these steps, in this order:

1. envelope: `Validator.validate_envelope` then `check_envelope` — bad head, unknown infCode, wrong key
   (constant time), wrong sender role, bad `data` (type, empty, over 40000 chars) raise EnvelopeError and
   nothing is stored;
2. msgid replay: (infCode, msgid) already answered with the same body (`body_hash`: key order and white
   space do not count) returns the stored answer at once; with a different body it raises
   EnvelopeError("msgid_conflict");
3. records: `Validator.validate_records` (table rules, ERRATA variants per mode, duplicates in the batch),
   then `handler.prepare(batch)`: the role's own checks, outside any transaction (may do I/O, no writes),
   then the fault injector's overrides, when a scenario set them (`record_overrides`);
4. ONE transaction: the msgid is looked up again (copies arriving together are stored once), then
   `handler.store(conn, batch)` decides each record against what is stored and writes the accepted ones,
   and the msgid's answer is written beside them. It commits before the answer is sent;
5. the answer in the configured response style (`batch_body`), with envelope warnings as 提示.

Per-record outcome (ERRATA's reading of succFlag):

- `-1` rejected, nothing saved: any validation error, or a role rejection (`Item.reject`);
- `0` saved, but something the sender sent was not saved: a field dropped (unknown, of the other hop,
  the second spelling of a field sent twice), or (at the center) the PDF or some DICOM instances — the
  message names each one;
- `1` saved in full (`保存数据成功`). What a lenient receiver normalised (variant spelling renamed, date-only
  datetime completed, number sent as text or text as number, a link used for a missing file) and advisory
  warnings (a checksum the document's own example fails, an index segment that disagrees with a field) are
  named in the message as 提示. `sandbox.validate.record_outcome` decides this, for the receivers and for
  `sandbox validate` alike.

Using it from a role::

    class MyHandler:                      # satisfies RecordHandler
        async def prepare(self, batch: Batch) -> None:
            for item in batch.accepted:
                if item.values["stogInsUscc"] != batch.sender.uscc:
                    item.reject(RESULTS["uscc_not_sender"].format(...))

        def store(self, conn: sqlite3.Connection, batch: Batch) -> None:   # in the database thread
            stored = ...                   # look up existing rows; item.reject(...) / item.idempotent(...)
            conn.executemany(...)          # then insert batch.accepted; no commit (the receiver commits)

    receiver = Receiver(hop=2, sender_role="center", settings=settings, db=db, handler=MyHandler())
    body = await receiver.receive(message)   # dict to serialise; raises EnvelopeError

`store` may instead be `async def store(self, conn: aiosqlite.Connection, batch)`: it then runs on the event
loop inside `Database.transaction()`. The plain function is faster under load: each `await` inside a
transaction waits for the event loop, which is busy validating other batches, while the write lock is held.
"""

from __future__ import annotations

import hashlib
import inspect
import sqlite3
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from sandbox.common.db import (
    Database,
    lookup_message,
    lookup_message_sync,
    remember_message,
    remember_message_sync,
)
from sandbox.common.envelope import (
    Answer,
    EnvelopeError,
    batch_body,
    body_hash,
    canonical_json,
    check_envelope,
)
from sandbox.config import Institution, Settings
from sandbox.spec.codes import SuccFlag
from sandbox.spec.formats import DATETIME_FORMAT, china_now
from sandbox.spec.messages import RESULTS
from sandbox.validate import (
    MESSAGE_LIMIT,
    Level,
    Problem,
    RecordResult,
    Report,
    describe,
    record_outcome,
    record_outcomes,
    validator,
)

_LOOKUP = "SELECT body_hash, response FROM messages WHERE infcode=? AND msgid=?"


@dataclass(slots=True)
class Item:
    """One record of the batch on its way through the flow, with its current answer."""

    result: RecordResult
    flag: SuccFlag
    message: str
    _canonical: str | None = None

    @classmethod
    def from_result(cls, result: RecordResult, first: int | None = None) -> Item:
        """The answer the validation alone gives (`record_outcome`, as `sandbox validate` predicts it);
        `first` is where a repeated index first appeared."""
        outcome = record_outcome(result, first)
        return cls(result, outcome.flag, outcome.message)

    @property
    def position(self) -> int:
        return self.result.position

    @property
    def index(self) -> str | None:
        return self.result.index

    @property
    def values(self) -> dict[str, Any]:
        """The normalised values (table spellings) the validator kept."""
        return self.result.values

    @property
    def accepted(self) -> bool:
        return self.flag is not SuccFlag.FAILED

    def reject(self, message: str) -> None:
        """Refuse this record: `-1`, nothing of it is stored. A record refused already keeps each cause."""
        if self.flag is SuccFlag.FAILED and message not in self.message:
            message = f"{self.message}；{message}"
        self.flag, self.message = SuccFlag.FAILED, message

    def idempotent(self, message: str = RESULTS["saved_idempotent"]) -> None:
        """The same record is already stored: answer success, store nothing again."""
        self.flag, self.message = SuccFlag.OK, message

    def canonical_json(self) -> str:
        """The normalised values as compact JSON with sorted keys: equal records give equal texts, whatever
        the key order, blanks or variant spellings they were sent with."""
        if self._canonical is None:
            self._canonical = canonical_json(self.values).decode()
        return self._canonical

    def canonical(self) -> tuple[str, str]:
        """(canonical JSON text, its sha256)."""
        text = self.canonical_json()
        return text, hashlib.sha256(text.encode()).hexdigest()

    def answer(self) -> Answer:
        return Answer(self.index, self.flag, self.message[:MESSAGE_LIMIT])


@dataclass(slots=True)
class Batch:
    """One accepted message: its sender, its envelope (without the key) and its records."""

    hop: int
    sender: Institution
    envelope: dict[str, Any]
    items: list[Item]
    received: str = field(default_factory=lambda: china_now().strftime(DATETIME_FORMAT))
    stored: list[Item] = field(default_factory=list)  # what `store` wrote; informational

    @property
    def accepted(self) -> list[Item]:
        """Records still to be saved (not rejected so far)."""
        return [i for i in self.items if i.accepted]

    @property
    def msgid(self) -> str:
        return str(self.envelope["msgid"])

    @property
    def infcode(self) -> str:
        return str(self.envelope["infCode"])


# Scripted failure scenarios (sandbox.faults) rewrite per-record decisions after the role's own checks and
# before storing: set for the duration of one request by the fault middleware, None otherwise. A record it
# rejects (`Item.reject`) is not stored; one it marks `0` is stored with the fault's message.
record_overrides: ContextVar[Callable[[Batch], None] | None] = ContextVar("record_overrides", default=None)


class RecordHandler(Protocol):
    """The role-specific part of receiving.

    `store` is either a plain function, run with the sqlite3 connection in the database thread in one hop
    (`Database.run`; preferred: the write lock is held only while SQLite works), or a coroutine function,
    run on the event loop with the aiosqlite connection inside `Database.transaction()`.
    """

    async def prepare(self, batch: Batch) -> None:
        """Role checks outside the transaction; reject items with `Item.reject`. No writes."""

    def store(self, conn: Any, batch: Batch) -> Any:
        """Inside the transaction: decide each accepted item against stored data, then write them."""


class Receiver:
    """Receives messages of one hop from institutions of one role and answers them."""

    def __init__(self, *, hop: int, sender_role: str, settings: Settings, db: Database,
                 handler: RecordHandler) -> None:
        self.hop = hop
        self.sender_role = sender_role
        self.settings = settings
        self.db = db
        self.handler = handler
        self.validator = validator(hop, settings.mode, settings.index_profile)

    async def receive(self, message: Any) -> dict[str, Any]:
        """Answer one parsed message; raises EnvelopeError when the whole message is refused."""
        env, env_problems, records, length = self.validator.validate_envelope(message)
        report = Report(self.hop, self.validator.mode, env, env_problems, [], length)
        sender = check_envelope(report, self.settings, self.sender_role, message)
        digest = body_hash(message)
        infcode, msgid = env["infCode"], env["msgid"]
        # A resend is answered before its records are checked again or `prepare` fetches anything; the look-up
        # is repeated inside the transaction for copies arriving at the same time.
        earlier = await lookup_message(self.db, infcode, msgid)
        if earlier is not None:
            return self._replay(earlier, digest, msgid)
        assert records is not None  # check_envelope refuses a message without data
        results = self.validator.validate_records(records)
        items = [Item(r, o.flag, o.message) for r, o in zip(results, record_outcomes(results), strict=True)]
        envelope = {k: v for k, v in env.items() if k != "key"}
        batch = Batch(self.hop, sender, envelope, items)
        await self.handler.prepare(batch)
        overrides = record_overrides.get()
        if overrides is not None:
            overrides(batch)
        notes = [p for p in env_problems if p.level is Level.WARNING]
        # The msgid is looked up inside the write lock, so two copies of one msgid arriving together store once.
        if inspect.iscoroutinefunction(self.handler.store):
            async with self.db.transaction() as conn:
                rows = list(await conn.execute_fetchall(_LOOKUP, (infcode, msgid)))
                if rows:
                    return self._replay((rows[0][0], rows[0][1]), digest, msgid)
                await self.handler.store(conn, batch)
                body = self._answer(batch, notes)
                await remember_message(conn, infcode, msgid, digest, orjson.dumps(body).decode())
            return body

        def commit(conn: sqlite3.Connection) -> dict[str, Any]:
            earlier = lookup_message_sync(conn, infcode, msgid)
            if earlier is not None:
                return self._replay(earlier, digest, msgid)
            self.handler.store(conn, batch)
            body = self._answer(batch, notes)
            remember_message_sync(conn, infcode, msgid, digest, orjson.dumps(body).decode())
            return body

        return await self.db.run(commit)

    def _answer(self, batch: Batch, notes: list[Problem]) -> dict[str, Any]:
        body = batch_body(self.hop, [i.answer() for i in batch.items], self.settings.response_style)
        if notes:
            body["message"] += RESULTS["advisory"].format(detail=describe(notes))
        return body

    @staticmethod
    def _replay(earlier: tuple[str, str], digest: str, msgid: str) -> dict[str, Any]:
        stored_hash, response = earlier
        if stored_hash != digest:
            raise EnvelopeError("msgid_conflict", msgid=msgid)
        body: dict[str, Any] = orjson.loads(response)
        return body
