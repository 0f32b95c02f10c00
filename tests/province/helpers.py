"""Valid hop-2 records and messages for the province's tests (built in sandbox.province.samples)."""

from typing import Any

from sandbox.province.samples import DOCTOR, certno, message, record
from sandbox.typedefs import PROVINCE

__all__ = ["DOCTOR", "PATH", "certno", "message", "record", "send", "stored"]


PATH = "/mie/api/mie/saveExamRpotImgIndx"


async def send(client: Any, msg: Any) -> tuple[int, dict[str, Any]]:
    """POST a message (a dict, or raw bytes as they are) and return (HTTP status, JSON answer)."""
    if isinstance(msg, bytes):
        resp = await client.post(PATH, data=msg, headers={"Content-Type": "application/json"})
    else:
        resp = await client.post(PATH, json=msg)
    return resp.status, await resp.json()


async def stored(client: Any) -> tuple[int, int]:
    """(index rows, answered msgids) in the province's database."""
    province = client.server.app[PROVINCE]
    rows = await province.indexes.db.fetchone("SELECT (SELECT COUNT(*) FROM img_index), (SELECT COUNT(*) FROM messages)")
    return int(rows[0]), int(rows[1])
