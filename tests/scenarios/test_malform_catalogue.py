"""The catalogue of malformed data says what the validator reports, field by field and mode by mode."""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.common.envelope import EnvelopeError, check_envelope
from sandbox.common.receiver import Item
from sandbox.config import Settings
from sandbox.scenario.malform import CATALOGUE, ENVELOPE_MALFORMATIONS, RECORD_MALFORMATIONS, Malformation
from sandbox.spec.codes import SuccFlag
from sandbox.synth.batching import envelope
from sandbox.synth.exams import ExamFactory
from sandbox.validate import Mode, Report, validator

SETTINGS = Settings()
FACTORY = ExamFactory(SETTINGS.hospitals[0], SETTINGS.center.uscc, 11, index_profile=SETTINGS.index_profile)
FLAGS = {"rejected": {SuccFlag.FAILED}, "altered": {SuccFlag.PARTIAL}, "normalised": {SuccFlag.OK},
         "noted": {SuccFlag.OK, SuccFlag.PARTIAL}}


def test_the_catalogue_covers_every_kind_the_issue_names() -> None:
    problems = {m.problem for m in CATALOGUE.values()}
    assert {"missing", "too_long", "not_dict_code", "date_format", "idcard_checksum", "variant_spelling",
            "wrong_key", "env_data_too_long"} <= problems
    assert {m.erratum for m in CATALOGUE.values() if m.erratum} == {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13}


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("rule", RECORD_MALFORMATIONS, ids=lambda m: m.name)
def test_a_broken_record_gets_the_catalogued_problem_and_outcome(rule: Malformation, mode: Mode) -> None:
    assert rule.break_record is not None
    record = FACTORY.exam(3).record("http://127.0.0.1:8700")
    result = validator(1, mode, SETTINGS.index_profile).validate_record(rule.break_record(record), 1)
    item = Item.from_result(result)
    found = [p for p in result.errors + result.warnings if p.code in (rule.problem, rule.problem + "_strict")
             or (rule.outcome(mode) == "rejected" and p.field == rule.field)]
    assert found, [p.code for p in result.errors + result.warnings]
    if rule.field is not None:
        assert any(p.field == rule.field for p in found)
        assert rule.field in item.message
    assert item.flag in FLAGS[rule.outcome(mode)], item.message


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("rule", ENVELOPE_MALFORMATIONS, ids=lambda m: m.name)
def test_a_broken_envelope_gets_the_catalogued_code(rule: Malformation, mode: Mode) -> None:
    assert rule.break_message is not None
    message = envelope([FACTORY.exam(4).record("http://127.0.0.1:8700")], SETTINGS.hospitals[0],
                       datetime(2025, 12, 1, 9), 1)
    v = validator(1, mode, SETTINGS.index_profile)
    env, problems, _, length = v.validate_envelope(rule.break_message(message))
    report = Report(1, mode, env, problems, [], length)
    try:
        check_envelope(report, SETTINGS, "hospital")
        code = 0
    except EnvelopeError as exc:
        code = exc.spec.code
    if rule.outcome(mode) == "rejected":
        assert code == rule.code(mode)
    else:
        assert code == 0
        assert any(p.code == rule.problem for p in problems)
