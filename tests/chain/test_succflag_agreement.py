"""One meaning of succFlag: `sandbox validate` predicts, per record, exactly what the center (hop 1) and the
province (hop 2) answer — over every ERRATA variant in both modes and the document's two example messages.

Hop 1 goes to the real center with the emulated hospital serving every file, so its answer depends on the
record alone, as `validate` assumes; hop 2 goes to the province with the center's key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.app import Sandbox
from sandbox.cli import main
from sandbox.province.samples import message as hop2_message
from sandbox.province.samples import record as hop2_record
from sandbox.scenario.driver import Driver
from sandbox.scenario.malform import ERRATA_MALFORMATIONS
from sandbox.spec.fields import HOP1, HOP2
from sandbox.spec.variants import FIELD_VARIANTS, FOREIGN_FIELDS
from sandbox.synth.batching import envelope
from sandbox.synth.urls import report_url, study_url
from tests.chain.conftest import StartSandbox

Record = dict[str, Any]


def hop2_variants(clean: Callable[[int], Record]) -> list[Record]:
    """A hop-2 record for each way the document's examples differ from the hop-2 table (ERRATA #2–#10)."""
    out: list[Record] = [clean(0)]
    for n, v in enumerate(FIELD_VARIANTS[2].values(), 1):
        rec = clean(n)
        rec[v.wrong] = rec.pop(v.right)
        out.append(rec)
    n = len(out)
    for foreign in FOREIGN_FIELDS[2]:
        out.append({**clean(n), foreign: "http://127.0.0.1/file"})
        n += 1
    for change in ({"age": "35"}, {"examRsltCode": "Normal"}, {"examWay": "Inpatient"},
                   {"diagTime": "2025-02-28"}, {"patientColor": "blue"},
                   {"examRsltCode": "Normal", "patientColor": "blue", "gend": "7", "age": -3}):
        out.append({**clean(n), **change})
        n += 1
    return out


def predicted(tmp_path: Path, message: Any, hop: int, strict: bool, capsys: pytest.CaptureFixture[str]) -> list[Any]:
    """`sandbox validate --json`'s answers for a message written to a file, as a user runs it."""
    path = tmp_path / f"hop{hop}-{'strict' if strict else 'lenient'}.json"
    path.write_text(json.dumps(message, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    main(["validate", str(path), "--hop", str(hop), "--json"] + (["--strict"] if strict else []))
    out = json.loads(capsys.readouterr().out)
    return [(a["succFlag"], a["message"]) for a in out["answers"]]


async def answered(sb: Sandbox, role: str, path: str, message: Any) -> list[Any]:
    async with aiohttp.ClientSession() as s, s.post(sb.url(role) + path, json=message) as r:
        body = await r.json()
    assert body["code"] in (0, -1), body
    return [(a["succFlag"], a["message"]) for a in body["data"]]


@pytest.mark.parametrize("mode", ["lenient", "strict"])
async def test_validate_and_both_receivers_give_the_same_succflag(
        mode: str, start_sandbox: StartSandbox, doc_example: Callable[[int], Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    sb = await start_sandbox(mode=mode)
    strict = mode == "strict"
    s = sb.settings
    hospital = Driver(sb).hospital()
    inst = hospital.institution

    # ---- hop 1: the center, files served by the emulated hospital ----------------------------------
    exams = await hospital.generate_exams(len(ERRATA_MALFORMATIONS) + 3)
    records = hospital.records(exams)
    hop1 = [records[0]]
    hop1 += [m.break_record(r) for m, r in zip(ERRATA_MALFORMATIONS, records[1:], strict=False)
             if m.level == "record" and m.break_record is not None]
    hop1.append({**records[-2], "patientColor": "blue"})
    # the document's own hop-1 example, sent by a configured hospital, its link fields pointing at real files
    example = doc_example(1)
    doc = example["data"][0]
    last = exams[-1]
    doc.update(examRpotLinkUrl=report_url(hospital.base_url, last.exam_id),
               imgDldLink=study_url(hospital.base_url, last.study_uid), fixmedinsCode=inst.code)
    hop1.append(doc)
    msg1 = envelope(hop1, inst, hospital._now(), 1)
    want = predicted(tmp_path, msg1, 1, strict, capsys)
    got = await answered(sb, "center", HOP1.path, msg1)
    assert [f for f, _ in got] == [f for f, _ in want]
    assert len(got) == len(hop1) >= 10
    # every normalisation, dropped value and error the validator names, the center names the same way
    for (_, message), (_, prediction) in zip(got, want, strict=True):
        assert message.startswith(prediction.split("（提示：")[0][:60])
    flags = {f for f, _ in got}
    assert flags == ({"1", "-1"} if strict else {"1", "0"}), got  # strict: only the clean record passes

    # ---- hop 2: the province, from the center -----------------------------------------------------------
    hop2 = hop2_variants(lambda n: hop2_record(s, n))
    example2 = doc_example(2)["data"][0]
    example2["stogInsUsec"] = s.center.uscc  # the example's USCC belongs to no configured center
    hop2.append(example2)
    msg2 = hop2_message(s, hop2, 7)
    want = predicted(tmp_path, msg2, 2, strict, capsys)
    got = await answered(sb, "province", HOP2.path, msg2)
    assert got == want  # flags and messages, word for word
    assert {f for f, _ in got} == ({"1", "-1"} if strict else {"1", "0", "-1"})
    # a refused record names every blocking problem, not only the first
    flag, text = got[-2]
    assert flag == "-1" and "gend" in text and "age" in text


async def test_a_refused_record_names_every_blocking_problem(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox(("province",))
    s = sb.settings
    broken = {"gend": "7", "age": -3, "psnName": "名" * 60, "brdy": "1990/01/01",
              "examDate": "2025-13-01", "diagTime": "昨天", "examAdmdvs": "51"}  # seven errors: more than five
    ((flag, text),) = await answered(sb, "province", HOP2.path, hop2_message(s, [hop2_record(s, 1, **broken)]))
    assert flag == "-1" and len(text) <= 3000
    for code in broken:
        assert f"{code}(" in text, (code, text)
    assert "另有" not in text
