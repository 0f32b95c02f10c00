"""The faults switched on right now, shared by every role of one sandbox. No HTTP here.

Each call a role receives on a faultable path is numbered per fault (`seen`); a fault is applied to a call
when it is active for that call number, at that moment, and — with a probability — when the seeded draw
for that call number says so. Draws are seeded from (seed, fault, call number or record index), never
from a shared random stream, so the same scenario and seed hit the same calls and records whatever the
order in which concurrent requests arrive.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sandbox.common.receiver import Batch
from sandbox.faults.messages import FAULT_TEXTS
from sandbox.faults.model import TRANSPORT_KINDS, Fault
from sandbox.spec.codes import SuccFlag

# Names of the faults that shaped the current request (set per request by the fault middleware).
applied_faults: ContextVar[list[str] | None] = ContextVar("applied_faults", default=None)


@dataclass(slots=True)
class Active:
    """A loaded fault and what it has done so far."""

    fault: Fault
    loaded: float
    seen: int = 0  # calls received on its path since it was loaded
    applied: int = 0  # calls (or records) it shaped

    def active_for(self, n: int, now: float, seed: int) -> bool:
        f = self.fault
        if n <= f.skip or (f.calls is not None and n > f.skip + f.calls):
            return False
        if f.window is not None and not (f.window[0] <= now - self.loaded < f.window[1]):
            return False
        return f.probability is None or random.Random(f"{seed}:{f.label}:call:{n}").random() < f.probability

    def exhausted(self, now: float) -> bool:
        f = self.fault
        if f.calls is not None and self.seen >= f.skip + f.calls:
            return True
        return f.window is not None and now - self.loaded >= f.window[1]

    def state(self, now: float) -> dict[str, Any]:
        return {"name": self.fault.label, "at": self.fault.at, "kind": self.fault.kind,
                "description": self.fault.describe(), "seen": self.seen, "applied": self.applied,
                "exhausted": self.exhausted(now), "fault": self.fault.model_dump(mode="json", exclude_defaults=True)}


@dataclass(slots=True)
class CallPlan:
    """What the faults do to one call: at most one transport or batch fault, and the record faults."""

    transport: Active | None = None
    records: list[Active] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.transport is None and not self.records


class FaultInjector:
    """The loaded faults of one sandbox, in the order they were loaded."""

    def __init__(self, seed: int = 0, clock: Any = time.monotonic) -> None:
        self.seed = seed
        self.clock = clock
        self.faults: list[Active] = []

    def load(self, faults: Iterable[Fault]) -> list[Active]:
        now = self.clock()
        added = [Active(f, now) for f in faults]
        self.faults.extend(added)
        return added

    def heal(self, name: str | None = None) -> list[str]:
        """Remove the faults of that name (every fault when None); returns the names removed."""
        gone = [a.fault.label for a in self.faults if name is None or a.fault.label == name]
        self.faults = [a for a in self.faults if not (name is None or a.fault.label == name)]
        return gone

    def reset(self, seed: int | None = None) -> None:
        self.faults = []
        if seed is not None:
            self.seed = seed

    def plan(self, role: str, path: str) -> CallPlan:
        """Count this call for every fault on (role, path) and say which of them apply to it."""
        plan = CallPlan()
        if not self.faults:
            return plan
        now = self.clock()
        for a in self.faults:
            f = a.fault
            if f.at != role or not f.matches_path(path):
                continue
            a.seen += 1
            if not a.active_for(a.seen, now, self.seed):
                continue
            if f.kind == "reject_records":
                plan.records.append(a)
            elif plan.transport is None and (f.kind in TRANSPORT_KINDS or f.kind == "reject_batch"):
                plan.transport = a
        return plan

    def apply_records(self, batch: Batch, faults: list[Active]) -> None:
        """Rewrite the decision of the selected records: `-1` rejected (not stored) or `0` stored, partly failed."""
        names = applied_faults.get()
        for a in faults:
            f = a.fault
            hit = 0
            for item in batch.items:
                if not item.accepted or not self._selected(f, item.position, item.index, item.values):
                    continue
                hit += 1
                if f.flag == SuccFlag.FAILED.value:
                    item.reject(f.message or FAULT_TEXTS["record_rejected"].format(name=f.label))
                else:
                    item.flag = SuccFlag.PARTIAL
                    item.message = f.message or FAULT_TEXTS["record_partial"].format(name=f.label)
            if hit:
                a.applied += hit
                if names is not None:
                    names.append(f.label)

    def _selected(self, f: Fault, position: int, index: str | None, values: dict[str, Any]) -> bool:
        s = f.select
        if s is None:
            return True
        if s.positions is not None and position not in s.positions:
            return False
        if s.where is not None:
            for key, want in s.where.items():
                got = values.get(key)
                got = None if got is None else str(got)
                if got not in ((want,) if isinstance(want, str) else want):
                    return False
        if s.probability is not None:
            draw = random.Random(f"{self.seed}:{f.label}:record:{index or position}").random()
            return draw < s.probability
        return True

    def state(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [a.state(now) for a in self.faults]
