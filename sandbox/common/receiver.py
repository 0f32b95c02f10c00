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
   `handler.store(conn, batch)` (or `store_many`) decides each record against what is stored and writes the
   accepted ones, and the msgid's answer is written beside them. It commits before the answer is sent.
   With group commit, the messages waiting together share this step's statements (`_Write.run_many`);
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

`store` may instead be `def store_many(self, conn, batches)` (the batches in order, each seeing what the ones
before it stored): messages waiting for one group commit then share their statements. Or it may be
`async def store(self, conn: aiosqlite.Connection, batch)`: it then runs on the event loop inside
`Database.transaction()`. The plain functions are faster under load: each `await` inside a transaction waits
for the event loop, which is busy validating other batches, while the write lock is held.
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
    LOOKUP_MESSAGE_SQL,
    Database,
    lookup_message,
    lookup_messages_sync,
    remember_message,
    remember_messages_sync,
)
from sandbox.common.envelope import (
    Answer,
    Canonical,
    EnvelopeError,
    batch_body,
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
    """The role-specific part of receiving: `prepare`, and one of

    - `store_many(conn, batches)`: a plain function, run with the sqlite3 connection in the database thread
      (`Database.run`); it stores the batches in order, each seeing what the ones before it stored, so that
      messages waiting for one group commit share their statements (preferred: the fewest trips);
    - `store(conn, batch)`: the same for one batch (several batches then call it in turn);
    - `async def store(conn, batch)`: run on the event loop with the aiosqlite connection inside
      `Database.transaction()`.

    Each decides every accepted item against stored data (`Item.reject`, `Item.idempotent`), then writes the
    accepted ones, without committing.
    """

    async def prepare(self, batch: Batch) -> None:
        """Role checks outside the transaction; reject items with `Item.reject`. No writes."""


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
        canonical = Canonical.of(message)  # serialised once: the hash, data's length, each record's text
        env, env_problems, records, length = self.validator.validate_envelope(message, canonical.data_length)
        report = Report(self.hop, self.validator.mode, env, env_problems, [], length)
        sender = check_envelope(report, self.settings, self.sender_role, message)
        digest = canonical.digest
        infcode, msgid = env["infCode"], env["msgid"]
        # A resend is answered before its records are checked again or `prepare` fetches anything; the look-up
        # is repeated inside the transaction for copies arriving at the same time.
        earlier = lookup_message(self.db, infcode, msgid)
        if earlier is not None:
            return self._replay(earlier, digest, msgid)
        assert records is not None  # check_envelope refuses a message without data
        results = self.validator.validate_records(records)
        items = [Item(r, o.flag, o.message) for r, o in zip(results, record_outcomes(results), strict=True)]
        if canonical.records is not None:
            for item, text in zip(items, canonical.records, strict=True):
                if item.result.as_sent:  # the normalised values are the record as sent: the same text
                    item._canonical = text
        envelope = {k: v for k, v in env.items() if k != "key"}
        batch = Batch(self.hop, sender, envelope, items)
        await self.handler.prepare(batch)
        overrides = record_overrides.get()
        if overrides is not None:
            overrides(batch)
        notes = [p for p in env_problems if p.level is Level.WARNING]
        # The msgid is looked up inside the write lock, so two copies of one msgid arriving together store once.
        store = getattr(self.handler, "store", None)
        if inspect.iscoroutinefunction(store):
            async with self.db.transaction() as conn:
                rows = list(await conn.execute_fetchall(LOOKUP_MESSAGE_SQL, (infcode, msgid)))
                if rows:
                    return self._replay((rows[0][0], rows[0][1]), digest, msgid)
                await store(conn, batch)
                body = self._answer(batch, notes)
                await remember_message(conn, infcode, msgid, digest, orjson.dumps(body).decode())
            return body
        body = await self.db.run(_Write(self, batch, digest, notes))
        return body

    def store_many(self, conn: sqlite3.Connection, batches: list[Batch]) -> None:
        """The handler's `store_many`, or its `store` once per batch, in order (each sees what the ones
        before it wrote: one connection, one transaction)."""
        many = getattr(self.handler, "store_many", None)
        if many is not None:
            many(conn, batches)
            return
        store = getattr(self.handler, "store")  # noqa: B009 — RecordHandler names it only in its text
        for batch in batches:
            store(conn, batch)

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


class _Write:
    """Step 4 of one message, as a `Database.run` function: look the msgid up again, store the batch, write
    the answer beside it. Messages of one receiver waiting for the same group commit share these statements
    (`run_many`, see `Database.run`): one look-up of every msgid, one `store_many` of every new batch, one
    insert of every answer — the database thread then takes the GIL back a few times per group instead of
    several times per message. Alone, a message runs as a group of one: there is one way of storing."""

    __slots__ = ("receiver", "batch", "digest", "notes")

    def __init__(self, receiver: Receiver, batch: Batch, digest: str, notes: list[Problem]) -> None:
        self.receiver, self.batch, self.digest, self.notes = receiver, batch, digest, notes

    @property
    def group_key(self) -> Receiver:
        """Writes with the same key may run together in `run_many` (the same receiver, so the same handler)."""
        return self.receiver

    def __call__(self, conn: sqlite3.Connection) -> dict[str, Any]:
        ok, value = _Write.run_many(conn, [self])[0]
        if not ok:
            raise value
        body: dict[str, Any] = value
        return body

    @staticmethod
    def run_many(conn: sqlite3.Connection, writes: list[_Write]) -> list[tuple[bool, Any]]:
        """(True, answer) or (False, EnvelopeError) per write, exactly as if each had run alone in turn: a
        msgid already answered — before, or by an earlier write of this group — is replayed (or refused as a
        conflict) and stores nothing; the batches of the others are stored in order, each seeing the ones
        before it. Raises when something unexpected fails: `Database.run` then runs each write alone."""
        answered = lookup_messages_sync(conn, [(w.batch.infcode, w.batch.msgid) for w in writes])
        new: list[_Write] = []
        for w in writes:
            key = (w.batch.infcode, w.batch.msgid)
            if key not in answered:
                answered[key] = ("", "")  # taken by this write: a later copy in the group replays its answer
                new.append(w)
        bodies: dict[int, dict[str, Any]] = {}
        if new:
            receiver = new[0].receiver
            receiver.store_many(conn, [w.batch for w in new])
            rows = []
            for w in new:
                body = receiver._answer(w.batch, w.notes)
                response = orjson.dumps(body).decode()
                answered[(w.batch.infcode, w.batch.msgid)] = (w.digest, response)
                bodies[id(w)] = body
                rows.append((w.batch.infcode, w.batch.msgid, w.digest, response))
            remember_messages_sync(conn, rows)
        outcomes: list[tuple[bool, Any]] = []
        for w in writes:
            if id(w) in bodies:
                outcomes.append((True, bodies[id(w)]))
                continue
            try:
                outcomes.append((True, Receiver._replay(answered[(w.batch.infcode, w.batch.msgid)], w.digest,
                                                        w.batch.msgid)))
            except EnvelopeError as exc:
                outcomes.append((False, exc))
        return outcomes
