"""QIDO-RS (PS3.18 10.6): search for studies, series and instances at every resource path.

    /dicomweb/studies                              /dicomweb/studies/{study}/series
    /dicomweb/series                               /dicomweb/studies/{study}/instances
    /dicomweb/instances                            /dicomweb/studies/{study}/series/{series}/instances

Query parameters: attribute keys by keyword (`PatientName`) or tag (`00100010`, `0010,0010`), matched by
`dicomquery` (the rules C-FIND uses); `includefield` (repeatable, comma-separated, or `all`); `limit`,
`offset`; `fuzzymatching` (true|false). A key the center does not support, or one below the searched level,
is ignored with `Warning: 299 {host} "..."` (PS3.18 8.3.4.1) — never silently; a malformed value is a 400
naming the key. Answers are `application/dicom+json`; a Person Name with several component groups is split
into Alphabetic / Ideographic / Phonetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.center.dicomindex import QueryIndex
from sandbox.center.dicomquery import (
    BY_KEYWORD,
    INSTANCE_AVAILABILITY,
    KEYS,
    Condition,
    Level,
    QueryError,
    condition,
    dataset,
    levels_upto,
    resolve,
)
from sandbox.center.dicomstore import media_type
from sandbox.center.dicomweb import DICOM_JSON, PREFIX, _base, json_response_typed
from sandbox.center.errors import BadDicomRequest, NotAcceptable
from sandbox.spec.formats import DICOM_UID_RE
from sandbox.typedefs import DICOM_INDEX

DEFAULT_LIMIT = 1000  # answers without an explicit limit; more are announced by a Warning
MAX_LIMIT = 10000
QIDO_SEPARATORS = ",\\"  # PS3.18 8.3.4.1: a comma separates UIDs (and other list values); DIMSE's backslash too
JSON_TYPES = ("application/dicom+json", "application/json", "*/*", "application/*")
LEVEL_NAMES = {"STUDY": "study", "SERIES": "series", "IMAGE": "instance"}
CONTROL = frozenset({"limit", "offset", "includefield", "fuzzymatching", "accept", "charset"})


@dataclass(slots=True)
class Search:
    """A parsed QIDO-RS query."""

    level: Level
    scope: dict[str, str]
    conditions: list[Condition] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)  # keywords named in the query or includefield
    limit: int | None = None
    offset: int = 0
    fuzzy: bool = False
    warnings: list[str] = field(default_factory=list)


def _int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadDicomRequest(f"{name}「{text[:40]}」应为 {low}-{high} 之间的整数")
    return value


def _defaults(level: Level, scope: dict[str, str]) -> list[str]:
    """What PS3.18 table 10.6.3-3..5 returns at a level: its own required keys, and those of the levels
    above it that the resource path does not fix."""
    levels: set[str] = {level}
    if level == "SERIES" and "StudyInstanceUID" not in scope:
        levels |= {"PATIENT", "STUDY"}
    if level == "IMAGE":
        if "SeriesInstanceUID" not in scope:
            levels.add("SERIES")
        if "StudyInstanceUID" not in scope:
            levels |= {"PATIENT", "STUDY"}
    if level == "STUDY":
        levels.add("PATIENT")
    out = [k.keyword for k in KEYS if k.qido_default and k.level in levels]
    for above in ("StudyInstanceUID", "SeriesInstanceUID"):
        if BY_KEYWORD[above].level in levels_upto(level) and above not in out:
            out.append(above)
    return out


def parse(request: web.Request, level: Level, scope: dict[str, str]) -> Search:
    """The query of a QIDO-RS request; BadDicomRequest for a malformed value."""
    search = Search(level, scope)
    allowed = levels_upto(level)
    q = request.query
    for name in ("limit", "offset", "fuzzymatching"):
        if len(q.getall(name, [])) > 1:
            raise BadDicomRequest(f"参数 {name} 重复")
    if "limit" in q:
        search.limit = _int("limit", q["limit"], 1, MAX_LIMIT)
    if "offset" in q:
        search.offset = _int("offset", q["offset"], 0, 2**31)
    fuzzy = q.get("fuzzymatching", "false").strip().lower()
    if fuzzy not in ("true", "false"):
        raise BadDicomRequest(f"fuzzymatching「{fuzzy[:20]}」应为 true 或 false")
    search.fuzzy = fuzzy == "true"
    for value in q.getall("includefield", []):
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            if item == "all":
                search.returned += [k.keyword for k in KEYS if k.level in allowed]
                continue
            keyword = resolve(item)
            if keyword is None or keyword not in BY_KEYWORD:
                search.warnings.append(f"includefield {item[:64]} is not available")
            elif keyword not in search.returned:
                search.returned.append(keyword)
    seen: set[str] = set()
    for name, value in q.items():
        if name in CONTROL:
            continue
        keyword = resolve(name)
        key = BY_KEYWORD.get(keyword) if keyword else None
        if key is None or key.level not in allowed:
            search.warnings.append(f"{name[:64]} is not supported as a query key at the {LEVEL_NAMES[level]} level")
            continue
        if keyword in seen:
            raise BadDicomRequest(f"查询键 {keyword} 重复；多个值请用逗号分隔")
        seen.add(key.keyword)
        if key.returned_only and value.strip():
            search.warnings.append(f"{key.keyword} is a return key and is not matched")
        try:
            # A UID the path fixes is matched too: a query naming another one finds nothing.
            cond = condition(key, value, QIDO_SEPARATORS, search.fuzzy)
        except QueryError as exc:
            raise BadDicomRequest(f"{exc.keyword}：{exc.reason}") from exc
        if cond is not None:
            search.conditions.append(cond)
        if key.keyword not in search.returned:
            search.returned.append(key.keyword)
    return search


def _check_accept(request: web.Request) -> None:
    raw = request.query.get("accept") or request.headers.get("Accept") or "*/*"
    kinds = [media_type(item)[0] for item in raw.split(",") if item.strip()]
    if not any(kind in JSON_TYPES for kind in kinds):
        raise NotAcceptable("查询结果的类型为 application/dicom+json")


def _retrieve_url(base: str, record: dict[str, Any], level: Level) -> str:
    url = f"{base}{PREFIX}/studies/{record['StudyInstanceUID']}"
    if level in ("SERIES", "IMAGE"):
        url += f"/series/{record['SeriesInstanceUID']}"
    if level == "IMAGE":
        url += f"/instances/{record['SOPInstanceUID']}"
    return url


async def _search(request: web.Request, level: Level) -> web.Response:
    _check_accept(request)
    scope = {}
    for param, keyword in (("study", "StudyInstanceUID"), ("series", "SeriesInstanceUID")):
        if param in request.match_info:
            value = request.match_info[param]
            if not DICOM_UID_RE.match(value):
                raise BadDicomRequest(f"「{value[:80]}」不是合法的 UID")
            scope[keyword] = value
    search = parse(request, level, scope)
    index: QueryIndex = request.app[DICOM_INDEX]
    records = await index.find(level, search.conditions, scope)
    limit = search.limit or DEFAULT_LIMIT
    page = records[search.offset:search.offset + limit]
    if search.limit is None and len(records) > search.offset + limit:
        search.warnings.append("There are additional results that can be requested")
    keywords = list(dict.fromkeys(_defaults(level, scope) + search.returned))
    base = _base(request)
    out = []
    for record in page:
        ds = dataset(record, keywords)
        if level != "PATIENT":
            ds.add_new(0x00080056, "CS", INSTANCE_AVAILABILITY)
            ds.add_new(0x00081190, "UR", _retrieve_url(base, record, level))
        del ds.SpecificCharacterSet  # DICOM JSON is UTF-8 by definition (PS3.18 F.2)
        out.append(ds.to_json_dict())
    resp = json_response_typed(out, DICOM_JSON)
    for text in search.warnings:
        # A header is ASCII: a key's name as sent is escaped, never echoed raw.
        value = f'299 {request.host} "{text.replace(chr(34), chr(39))}"'
        resp.headers.add("Warning", value.encode("ascii", "backslashreplace").decode())
    if search.warnings:
        resp.headers["Access-Control-Expose-Headers"] = resp.headers.get(
            "Access-Control-Expose-Headers", "") + ", Warning"
    return resp


async def search_studies(request: web.Request) -> web.Response:
    return await _search(request, "STUDY")


async def search_series(request: web.Request) -> web.Response:
    return await _search(request, "SERIES")


async def search_instances(request: web.Request) -> web.Response:
    return await _search(request, "IMAGE")


def setup_qido(app: web.Application) -> None:
    """The QIDO-RS routes (before the WADO-RS ones, so that `/studies/{study}/instances` is a search)."""
    r = app.router
    r.add_get(PREFIX + "/studies", search_studies)
    r.add_get(PREFIX + "/series", search_series)
    r.add_get(PREFIX + "/instances", search_instances)
    r.add_get(PREFIX + "/studies/{study}/series", search_series)
    r.add_get(PREFIX + "/studies/{study}/instances", search_instances)
    r.add_get(PREFIX + "/studies/{study}/series/{series}/instances", search_instances)
