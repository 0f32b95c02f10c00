"""PS3.4 C.2.2.2 matching, as QIDO-RS and C-FIND both use it."""

from __future__ import annotations

import pytest

from sandbox.center.dicomquery import BY_KEYWORD, QueryError, condition, resolve

NAME = "HUANG^LIJUAN=黄^丽娟=huang^li juan"


def match(keyword: str, query: str, stored: object, separators: str = ",\\", fuzzy: bool = False) -> bool:
    cond = condition(BY_KEYWORD[keyword], query, separators, fuzzy)
    return True if cond is None else cond.matches(stored)


@pytest.mark.parametrize(("query", "expected"), [
    ("黄*", True), ("*丽娟", True), ("黄^丽?", True), ("HUANG*", True), ("huang^lijuan", True),
    ("=黄^丽娟", True), ("=黄*=huang*", True), ("HUANG*=张*", False), ("=HUANG*", False), ("黄", False),
    ("李*", False), ("", True), ("*", True),
])
def test_person_names_match_per_component_group(query: str, expected: bool) -> None:
    assert match("PatientName", query, NAME) is expected


def test_fuzzy_matching_ignores_separators_and_takes_a_prefix() -> None:
    assert match("PatientName", "huanglij", NAME, fuzzy=True)
    assert match("PatientName", "黄丽", NAME, fuzzy=True)
    assert not match("PatientName", "huanglij", NAME)


def test_dates_and_times_match_ranges() -> None:
    assert match("StudyDate", "20250301-20250331", "20250315")
    assert match("StudyDate", "-20250301", "20250301") and not match("StudyDate", "20250302-", "20250301")
    assert match("StudyDate", "20250301\\20250401", "20250401")  # a list of values: any matches
    assert match("StudyTime", "14", "141500") and not match("StudyTime", "15", "141500")
    assert match("StudyTime", "1400-1430", "142959.5") and not match("StudyTime", "1400-1430", "143100")
    assert match("StudyTime", "14:00-", "14:15:00")
    assert not match("StudyDate", "20250301", "")  # an empty stored value matches only universal matching


def test_uid_lists_and_text_wildcards() -> None:
    assert match("StudyInstanceUID", "1.2.3,1.2.4", "1.2.4")
    assert match("StudyInstanceUID", "1.2.3\\1.2.4", "1.2.3", separators="\\")
    assert not match("StudyInstanceUID", "1.2.3", "1.2.30")
    assert match("ModalitiesInStudy", "MR", ["CT", "MR"]) and not match("ModalitiesInStudy", "US", ["CT", "MR"])
    assert match("AccessionNumber", "ACC0?1", "ACC061") and not match("AccessionNumber", "acc061", "ACC061")
    assert match("StudyDescription", "*CT*", "胸部CT平扫")
    assert match("SeriesNumber", "2", 2) and not match("SeriesNumber", "3", 2)


@pytest.mark.parametrize(("keyword", "value", "says"), [
    ("StudyDate", "garbage", "不是日期"), ("StudyDate", "20250230", "不是日期"), ("StudyDate", "20250401-20250301", "起点晚于终点"),
    ("StudyDate", "-", "两端不能都为空"), ("StudyTime", "2500x", "不是时间"), ("StudyInstanceUID", "1.2.abc", "不是合法的 UID"),
    ("SeriesNumber", "two", "应为整数"),
])
def test_malformed_values_name_the_key(keyword: str, value: str, says: str) -> None:
    with pytest.raises(QueryError) as info:
        condition(BY_KEYWORD[keyword], value, ",\\")
    assert info.value.keyword == keyword and says in str(info.value)


def test_keys_by_keyword_or_tag() -> None:
    assert resolve("PatientName") == resolve("00100010") == resolve("0010,0010") == "PatientName"
    assert resolve("NoSuchKey") is None
