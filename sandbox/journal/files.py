"""The files hop-1 exchanges referenced, taken away with a journal export and served again by `sandbox replay`.

A hop-1 record names its report PDF and DICOM study by URLs on the hospital that sent it
(`/files/{examId}/report.pdf`, `/dicomweb/studies/{StudyInstanceUID}`, `/files/{examId}/study.zip`, and
their series/instance paths). `journal export --with-files` copies each referenced exam — its row, its
instance rows and its files — from the run's hospital store into a bundle folder beside the export, laid
out as a hospital data folder (`<bundle>/hospital/hospital.db` and the files). `sandbox replay` starts the
emulated hospital on that folder (a free loopback port), so the hospital's own routes serve the files, and
rewrites the recorded hospital address in each hop-1 request to it. `manifest.json` names the addresses.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from sandbox.hospital.store import HospitalStore

BUNDLE_SUFFIX = ".files"
MANIFEST = "manifest.json"
HOSPITAL_DIR = "hospital"
HOSPITAL_DB = "hospital.db"
# Fields of a hop-1 record that name a file (the table's and, ERRATA #6, the links the examples use instead).
FILE_FIELDS = ("examRpotPdfI", "imgInfoDcm", "examRpotLinkUrl", "imgDldLink")
_EXAM_PATH = re.compile(r"^/files/([^/]+)/(?:report\.pdf|study\.zip)$")
_STUDY_PATH = re.compile(r"^/dicomweb/studies/([^/]+)(?:/.*)?$")


def bundle_dir(export: Path) -> Path:
    """Where the files of an export live: `out/journal.jsonl` → `out/journal.jsonl.files/`."""
    return export.with_name(export.name + BUNDLE_SUFFIX)


@dataclass(slots=True)
class Bundle:
    """What `bundle_files` copied."""

    path: Path
    bases: list[str] = field(default_factory=list)  # the recorded hospital addresses (scheme://host:port)
    exams: int = 0
    files: int = 0
    missing: list[str] = field(default_factory=list)  # referenced URLs this data folder has no file for


def _records(request: str) -> list[dict[str, Any]]:
    try:
        message = orjson.loads(request)
    except orjson.JSONDecodeError:
        return []
    data = message.get("data") if isinstance(message, dict) else None
    if isinstance(data, str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def referenced_urls(entries: Iterable[dict[str, Any]]) -> list[str]:
    """Every http(s) file URL the hop-1 requests name, in order of first appearance."""
    seen: dict[str, None] = {}
    for e in entries:
        if e.get("hop") != 1 or not isinstance(e.get("request"), str):
            continue
        for rec in _records(e["request"]):
            for key, value in rec.items():
                if isinstance(key, str) and key.strip() in FILE_FIELDS and isinstance(value, str) \
                        and value.strip().startswith(("http://", "https://")):
                    seen.setdefault(value.strip(), None)
    return list(seen)


def base_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def bundle_files(entries: Iterable[dict[str, Any]], data_dir: Path, dest: Path) -> Bundle:
    """Copy the exams behind every file URL of the hop-1 requests from the hospital store of `data_dir`."""
    urls = referenced_urls(entries)
    bundle = Bundle(dest)
    if dest.exists():
        shutil.rmtree(dest)
    source_root = data_dir / HOSPITAL_DIR
    target_root = dest / HOSPITAL_DIR
    target_root.mkdir(parents=True)
    source = HospitalStore(source_root / HOSPITAL_DB)
    target = HospitalStore(target_root / HOSPITAL_DB)
    await source.open()
    await target.open()
    try:
        copied: set[str] = set()
        for url in urls:
            path = urlsplit(url).path
            exam_id: str | None = None
            if m := _EXAM_PATH.match(path):
                exam_id = m[1]
            elif m := _STUDY_PATH.match(path):
                exam_id = await source.exam_by_study(m[1])
            row = await source.db.fetchone("SELECT * FROM exams WHERE exam_id=?", (exam_id,)) if exam_id else None
            if row is None:
                bundle.missing.append(url)
                continue
            base = base_of(url)
            if base not in bundle.bases:
                bundle.bases.append(base)
            if exam_id in copied:
                continue
            copied.add(str(exam_id))
            instances = await source.instances_of_exam(str(exam_id))
            rels = [r["path"] for r in instances] + ([row["report_path"]] if row["report_path"] else [])
            for rel in rels:
                (target_root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source_root / rel, target_root / rel)
            await target.save_exam(exam_id=row["exam_id"], inst_code=row["inst_code"], seed=row["seed"], n=row["n"],
                                   index=row["hi_img_indx"], study_uid=row["study_uid"],
                                   report_path=row["report_path"], record=json.loads(row["record"]),
                                   instances=instances)
            bundle.exams += 1
            bundle.files += len(rels)
    finally:
        await target.close()
        await source.close()
    (dest / MANIFEST).write_text(json.dumps({"bases": bundle.bases, "exams": bundle.exams, "files": bundle.files},
                                            ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return bundle


def read_manifest(dest: Path) -> list[str] | None:
    """The recorded hospital addresses of a bundle, or None when `dest` holds no bundle."""
    path = dest / MANIFEST
    if not path.is_file():
        return None
    bases = json.loads(path.read_text(encoding="utf-8")).get("bases")
    return [str(b) for b in bases] if isinstance(bases, list) else []


def rewrite(entry: dict[str, Any], bases: list[str], served: str) -> dict[str, Any]:
    """A hop-1 entry whose file URLs point at the replay's own file server instead of the recorded hospital."""
    request = entry.get("request")
    if entry.get("hop") != 1 or not isinstance(request, str):
        return entry
    for base in bases:
        request = request.replace(base, served)
    return {**entry, "request": request}
