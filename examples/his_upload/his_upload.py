"""A tiny HIS upload client: what a hospital's IT team writes against the document, in about 100 lines.

It turns the HIS's own exam rows into saveExamRpotImgInfo messages (batches within the 40000-character
limit of `data`), numbers msgids as the document says (institution code 12 + yyyyMMddHHmmss 14 + sequence 4),
resends the same msgid and body after a timeout, a refused connection or an HTTP 5xx, and reports each
exam's outcome as the document defines succFlag: 1 success, 0 partly failed, -1 failed.

Standard library only (urllib), synchronous — as in a Django or Flask HIS. Its tests, in this folder, use
the sandbox's pytest plugin (`imgcloud` fixtures).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

PATH = "/mie/api/mie/saveExamRpotImgInfo"
DATA_LIMIT = 40000
CHINA = timezone(timedelta(hours=8))


@dataclass
class Outcome:
    index: str
    flag: str  # "1", "0", "-1"; "" when the message never got an answer
    message: str


@dataclass
class Uploader:
    center: str  # http://host:port of the regional sharing center
    inf_code: str  # this hospital's institution code (infCode)
    key: str  # the key the center issued to it
    attempts: int = 4
    timeout: float = 10.0
    backoff: float = 0.2
    sent_msgids: list[str] = field(default_factory=list)
    _seq: int = 0

    def upload(self, records: list[dict[str, Any]]) -> list[Outcome]:
        """Upload exam records; one Outcome per record, in order."""
        outcomes: list[Outcome] = []
        for batch in self._batches(records):
            outcomes += self._send(batch)
        return outcomes

    def _batches(self, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        batches: list[list[dict[str, Any]]] = [[]]
        size = 2
        for rec in records:
            n = len(json.dumps(rec, ensure_ascii=False, separators=(",", ":"))) + 1
            if batches[-1] and size + n > DATA_LIMIT:
                batches.append([])
                size = 2
            batches[-1].append(rec)
            size += n
        return [b for b in batches if b]

    def _msgid(self, now: datetime) -> str:
        self._seq = self._seq % 9999 + 1
        return f"{self.inf_code[:12]:0<12}{now:%Y%m%d%H%M%S}{self._seq:04d}"

    def _send(self, batch: list[dict[str, Any]]) -> list[Outcome]:
        now = datetime.now(CHINA)
        message = {"infno": "saveExamRpotImgInfo", "msgid": self._msgid(now),
                   "infTime": now.strftime("%Y-%m-%d %H:%M:%S"), "infCode": self.inf_code, "key": self.key,
                   "data": batch}
        body = json.dumps(message, ensure_ascii=False).encode()  # the same bytes on every attempt
        last = ""
        for attempt in range(1, self.attempts + 1):
            self.sent_msgids.append(message["msgid"])
            request = urllib.request.Request(self.center.rstrip("/") + PATH, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return self._read(batch, json.loads(resp.read()))
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code < 500:
                    return self._read(batch, json.loads(exc.read() or b"{}"))
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = str(exc)
            time.sleep(self.backoff * 2 ** (attempt - 1))
        return [Outcome(r["hiImgIndx"], "", f"未送达：{last}") for r in batch]

    @staticmethod
    def _read(batch: list[dict[str, Any]], answer: dict[str, Any]) -> list[Outcome]:
        if answer.get("code") not in (0, -1):  # the whole message refused
            return [Outcome(r["hiImgIndx"], "-1", str(answer.get("message"))) for r in batch]
        by_index = {a.get("hiImgIndx"): a for a in answer.get("data") or []}
        return [Outcome(r["hiImgIndx"], str(by_index.get(r["hiImgIndx"], {}).get("succFlag", "")),
                        str(by_index.get(r["hiImgIndx"], {}).get("message", ""))) for r in batch]
