"""The base of every role's kit: options, the `@check` decorator, set-up and tear-down, the default run loop.

A kit subclass names its role and has one method per requirement of `catalogue/<role>.yaml`, decorated with
`@check("ID")`; `tests/conform/test_catalogue.py` holds the two to each other. `start` brings up whatever the kit
plays (servers, files) and raises `Unreachable` when the system under test cannot be reached; `stop` undoes it.
The default `run` calls the checks in catalogue order; a passive kit (the hospital's, which waits for messages)
overrides `run`.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from sandbox.conform.model import Outcome, Requirement, Result, Role
from sandbox.conform.probe import Probe
from sandbox.spec.index_profiles import DEFAULT_PROFILE

K = TypeVar("K", bound="Kit")
CheckMethod = Callable[[Any], Awaitable[Outcome]]


class KitError(Exception):
    """The run cannot start (exit status 2): an unusable option, or the kit cannot listen. Chinese message."""

    prefix = "无法开始测试"


class Unreachable(KitError):
    """The system under test could not be reached at all (exit status 2); the message is Chinese and names the URL."""

    prefix = "无法连接被测系统"


@dataclass
class Options:
    """What `sandbox conform` was asked; kits read what concerns them."""

    url: str | None = None                  # the system under test (its hop-1 or hop-2 URL; unused by the hospital kit)
    mode: Literal["strict", "lenient"] = "strict"   # how the document's variant spellings (ERRATA) are graded
    profile: str = DEFAULT_PROFILE          # index-number profile (`--index-profile` of validate)
    timeout: float = 10.0                   # seconds for one request of the kit
    wait: float = 30.0                      # seconds to wait for something the system does on its own (a forward)
    institution: str | None = None          # the tested system's institution code (infCode it sends / is known by)
    key: str | None = None                  # the tested system's key
    sender_code: str | None = None          # the code the kit sends as (when it plays a hospital or a center)
    sender_key: str | None = None
    sender_uscc: str | None = None          # the USCC the kit files under when it plays a center (stogInsUscc)
    listen_host: str = "127.0.0.1"          # where the kit's own servers listen
    listen_port: int = 0                    # 0: a free port (the kit prints the URL to configure)
    public_host: str | None = None          # the host name the system under test reaches the kit by
    messages: int | None = None             # hospital kit: end after N messages (else Ctrl-C)
    enforce: bool = False                   # hospital kit: refuse what is graded wrong, as a strict center would
    seed: int = 20251008
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v not in (None, {}, False) and k != "key"}
        if self.key:
            out["key"] = "***"
        if self.sender_key:
            out["sender_key"] = "***"
        return out


def check(req_id: str) -> Callable[[CheckMethod], CheckMethod]:
    """Mark a kit method as the check of requirement `req_id`."""
    def mark(fn: CheckMethod) -> CheckMethod:
        fn.__conform_id__ = req_id  # type: ignore[attr-defined]
        return fn
    return mark


class Kit:
    role: ClassVar[Role]
    # Upper bound on one check, so a system that stalls cannot hang the run; a check past it is an `error`.
    check_cap: ClassVar[float] = 300.0

    def __init__(self, options: Options, say: Callable[[str], None] = print) -> None:
        self.options = options
        self.say = say  # progress lines for the operator (URLs to configure, waits), Chinese
        self.probe = Probe(options.timeout)

    @classmethod
    def checks(cls) -> dict[str, str]:
        """Requirement id → method name, for every `@check` method of the class and its bases."""
        out: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                rid = getattr(value, "__conform_id__", None)
                if rid is not None:
                    out[rid] = name
        return out

    async def __aenter__(self: K) -> K:
        await self.probe.__aenter__()
        try:
            await self.start()
        except BaseException:
            await self.probe.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop()
        finally:
            await self.probe.__aexit__(None, None, None)

    async def start(self) -> None:
        """Bring up what the kit plays; raise `Unreachable` when the system under test does not answer."""

    async def stop(self) -> None:
        """Undo `start`."""

    async def run_check(self, req: Requirement) -> Result:
        """One requirement's check, timed; a check that raises or overruns `check_cap` is an `error` result."""
        name = self.checks().get(req.id)
        started = time.perf_counter()
        if name is None:
            return Result.of(req, Outcome.skip("本工具没有这一项的检查"), 0.0)
        try:
            outcome = await asyncio.wait_for(getattr(self, name)(), self.check_cap)
        except TimeoutError:
            return Result(req, "error", f"检查在 {self.check_cap:g} 秒内没有结束", seconds=time.perf_counter() - started)
        except KitError:
            raise
        except Exception as e:  # noqa: BLE001 - a broken check is a result, not a crash of the run
            return Result(req, "error", f"检查本身出错：{type(e).__name__}: {e}", detail=traceback.format_exc(),
                          seconds=time.perf_counter() - started)
        return Result.of(req, outcome, time.perf_counter() - started)

    async def run(self, reqs: list[Requirement]) -> AsyncIterator[Result]:
        for req in reqs:
            yield await self.run_check(req)
