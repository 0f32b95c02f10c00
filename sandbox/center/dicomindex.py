"""The query side of the center's DICOM store: records at PATIENT / STUDY / SERIES / IMAGE level for QIDO-RS
and C-FIND, matched with `dicomquery`.

The instances table already holds most query keys. The others (PatientBirthDate, StudyTime, ReferringPhysician…)
are read from each stored instance's header once, the first time a query runs after it was stored, into the
side table `query_attributes` of the same database, keyed by the center's instance id. Queries join it with the
instances table, so an instance that is deleted or replaced (a new instance id) is never answered from a stale
row; rows left behind by such changes are pruned on the next refresh.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

from sandbox.center.dicomquery import KEYS, Condition, Key, Level, element_text, levels_upto, matches
from sandbox.center.domain import Center
from sandbox.common.db import insert_rows

log = logging.getLogger("sandbox.center.dicomindex")

TABLE = "query_attributes"
# Keys the instances table holds, by its column.
INSTANCE_COLUMNS = {
    "PatientName": "patient_name", "PatientID": "patient_id", "StudyInstanceUID": "study_uid",
    "StudyDate": "study_date", "AccessionNumber": "accession", "StudyDescription": "study_description",
    "SeriesInstanceUID": "series_uid", "Modality": "modality", "SeriesNumber": "series_number",
    "SeriesDescription": "series_description", "SOPInstanceUID": "sop_uid", "SOPClassUID": "sop_class",
    "InstanceNumber": "instance_number", "Rows": "rows", "Columns": "cols", "NumberOfFrames": "frames",
    "AvailableTransferSyntaxUID": "transfer_syntax",
}
# Keys computed over a level's instances: (alias of the aggregate, its SQL over instances `a`).
AGGREGATES: dict[Level, tuple[str, str, dict[str, str]]] = {
    "PATIENT": ("p", "patient_id", {
        "NumberOfPatientRelatedStudies": "count(DISTINCT a.study_uid)",
        "NumberOfPatientRelatedSeries": "count(DISTINCT a.series_uid)",
        "NumberOfPatientRelatedInstances": "count(*)",
    }),
    "STUDY": ("s", "study_uid", {
        "ModalitiesInStudy": "group_concat(DISTINCT a.modality)",
        "SOPClassesInStudy": "group_concat(DISTINCT a.sop_class)",
        "NumberOfStudyRelatedSeries": "count(DISTINCT a.series_uid)",
        "NumberOfStudyRelatedInstances": "count(*)",
    }),
    "SERIES": ("r", "series_uid", {"NumberOfSeriesRelatedInstances": "count(*)"}),
}
LISTS = frozenset({"ModalitiesInStudy", "SOPClassesInStudy"})
COMPUTED = {kw for _, _, cols in AGGREGATES.values() for kw in cols}
# Keys read from the header into the side table (column named by keyword).
HEADER_KEYS: tuple[Key, ...] = tuple(k for k in KEYS if k.keyword not in INSTANCE_COLUMNS and k.keyword not in COMPUTED)


@cache
def header_tags() -> list[int]:
    """Specific Character Set and the HEADER_KEYS' tags (pydicom's dictionary: loaded on the first query)."""
    return [0x00080005] + [k.tag for k in HEADER_KEYS]


GROUP_BY: dict[Level, str | None] = {"PATIENT": "i.patient_id", "STUDY": "i.study_uid", "SERIES": "i.series_uid",
                                     "IMAGE": None}
ORDER_BY: dict[Level, str] = {
    "PATIENT": '"PatientID"',
    "STUDY": '"StudyDate" DESC, "StudyInstanceUID"',
    "SERIES": '"StudyInstanceUID", coalesce("SeriesNumber", 2147483647), "SeriesInstanceUID"',
    "IMAGE": '"StudyInstanceUID", coalesce("SeriesNumber", 2147483647), "SeriesInstanceUID",'
             ' coalesce("InstanceNumber", 2147483647), "SOPInstanceUID"',
}
# What C-GET / C-MOVE and WADO need of a matched instance besides its keys.
STORAGE_COLUMNS = ("instance_id", "pack_id", "offset", "size", "transfer_syntax")

_HEADER_COLUMNS = [f'"{k.keyword}"' for k in HEADER_KEYS]
SCHEMA = f"CREATE TABLE IF NOT EXISTS {TABLE} (instance_id TEXT PRIMARY KEY, {' TEXT, '.join(_HEADER_COLUMNS)} TEXT)"
_INSERT = f"INSERT OR REPLACE INTO {TABLE} (instance_id, {', '.join(_HEADER_COLUMNS)})"


def _expr(key: Key) -> str:
    if key.keyword in INSTANCE_COLUMNS:
        return f"i.{INSTANCE_COLUMNS[key.keyword]}"
    for alias, _, cols in AGGREGATES.values():
        if key.keyword in cols:
            return f"{alias}.\"{key.keyword}\""
    return f'x."{key.keyword}"'


def select_sql(level: Level, scope: dict[str, str]) -> tuple[str, list[str]]:
    """The SQL giving one row per record of `level` (keys of that level and above), and its parameters."""
    upto = levels_upto(level)
    group = GROUP_BY[level]
    columns = []
    for key in KEYS:
        if key.level not in upto:
            continue
        expr = _expr(key)
        columns.append(f'{f"max({expr})" if group else expr} AS "{key.keyword}"')
    if level == "IMAGE":
        columns += [f"i.{c} AS {c}" for c in STORAGE_COLUMNS]
    joins = []
    for agg_level in upto:
        if agg_level not in AGGREGATES:
            continue
        alias, column, cols = AGGREGATES[agg_level]
        inner = ", ".join(f'{sql} AS "{kw}"' for kw, sql in cols.items())
        joins.append(f"LEFT JOIN (SELECT a.{column} AS k, {inner} FROM instances a GROUP BY a.{column}) {alias}"
                     f" ON {alias}.k = i.{column}")
    where, params = [], []
    for keyword, value in scope.items():
        where.append(f"i.{INSTANCE_COLUMNS[keyword]} = ?")
        params.append(value)
    sql = (f"SELECT {', '.join(columns)} FROM instances i JOIN {TABLE} x ON x.instance_id = i.instance_id "
           + " ".join(joins)
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + (f" GROUP BY {group}" if group else "")
           + f" ORDER BY {ORDER_BY[level]}")
    return sql, params


def header_values(source: str | bytes) -> list[str]:
    """The HEADER_KEYS of one stored instance, "" for each one absent or unreadable."""
    import pydicom

    fp: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=header_tags(), force=True)
        except Exception as exc:  # any damage: the instance stays findable by the instances table's keys
            log.warning("查询属性读取失败：%s", exc)
            return [""] * len(HEADER_KEYS)
        out = []
        for key in HEADER_KEYS:
            try:
                elem = ds.get(key.tag)
                out.append(element_text(elem).strip() if elem is not None else "")
            except Exception:  # one malformed value: that key is empty, the others stand
                out.append("")
    return out


class QueryIndex:
    """Records for QIDO-RS and C-FIND over the center's stored instances."""

    def __init__(self, center: Center) -> None:
        self.center = center
        self.lock = asyncio.Lock()

    async def open(self) -> None:
        def create(conn: sqlite3.Connection) -> None:
            conn.execute(SCHEMA)

        await self.center.store.db.run(create)

    def _read(self, row: Any) -> list[Any]:
        center = self.center
        source: str | bytes
        if row["pack_id"] is None:
            source = center.dicoms.path(row["instance_id"])
        else:
            source = center.read_instance(row)
        try:
            values = header_values(source)
        except OSError as exc:
            log.warning("查询属性读取失败：%s", exc)
            values = [""] * len(HEADER_KEYS)
        return [row["instance_id"], *values]

    async def refresh(self) -> None:
        """Read the header keys of instances stored since the last query."""
        reader = self.center.store.reader
        async with self.lock:
            rows = await reader.fetchall(
                f"SELECT i.instance_id, i.pack_id, i.offset, i.size FROM instances i LEFT JOIN {TABLE} x"
                " ON x.instance_id = i.instance_id WHERE x.instance_id IS NULL")
            stale = await reader.fetchone(f"SELECT (SELECT count(*) FROM {TABLE}) - (SELECT count(*) FROM instances)")
            if not rows and not (stale and stale[0] > 0):
                return
            values = await asyncio.to_thread(lambda: [self._read(r) for r in rows])

            def write(conn: sqlite3.Connection) -> None:
                insert_rows(conn, _INSERT, values)
                conn.execute(f"DELETE FROM {TABLE} WHERE instance_id NOT IN (SELECT instance_id FROM instances)")

            await self.center.store.db.run(write)

    async def find(self, level: Level, conditions: Sequence[Condition],
                   scope: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The records of `level` matching every condition, in a stable order. `scope` narrows by UIDs
        (StudyInstanceUID / SeriesInstanceUID), as the resource path of a QIDO-RS URL does."""
        await self.refresh()
        sql, params = select_sql(level, scope or {})
        rows = await self.center.store.reader.fetchall(sql, tuple(params))
        out = []
        for row in rows:
            record = dict(row)
            for kw in LISTS:
                if kw in record:
                    record[kw] = sorted(v for v in (record[kw] or "").split(",") if v)
            if matches(record, conditions):
                out.append(record)
        return out
