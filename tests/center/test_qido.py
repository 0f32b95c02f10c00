"""QIDO-RS as dicomweb-client sees it, over instances pushed with dcmtk's storescu."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestClient
from dicomweb_client.api import DICOMwebClient

from sandbox.center import create_app
from sandbox.config import Settings
from tests.center.helpers import uid
from tests.center.qr_corpus import Pushed, corpus, push


@pytest.fixture
async def stored(aiohttp_client: Any, make_settings: Callable[..., Settings],
                 tmp_path: Path) -> AsyncIterator[tuple[TestClient, DICOMwebClient, Pushed]]:
    settings = make_settings()
    center = await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
    files = corpus(tmp_path / "corpus")
    await push(settings, files)
    yield center, DICOMwebClient(url=f"http://127.0.0.1:{settings.center_port}/dicomweb"), files


def _values(results: list[dict[str, Any]], tag: str) -> list[Any]:
    return [r[tag]["Value"][0] if "Value" in r[tag] else None for r in results]


STUDY_UID, SERIES_UID, SOP_UID, NAME = "0020000D", "0020000E", "00080018", "00100010"


async def test_study_search_matches_names_ids_dates_and_modalities(
        stored: tuple[TestClient, DICOMwebClient, Pushed]) -> None:
    _, client, pushed = stored
    huang, li, wang = (pushed.studies[k] for k in ("huang", "li", "wang"))

    def search(**filters: str) -> list[str]:
        return sorted(_values(client.search_for_studies(search_filters=filters), STUDY_UID))

    got = await asyncio.to_thread(lambda: {
        "all": search(),
        "ideographic": search(PatientName="黄*"),
        "alphabetic": search(PatientName="huang^*"),
        "ideographic_group": search(PatientName="=黄^丽娟"),
        "one_char": search(PatientName="李?"),
        "no_match": search(PatientName="张*"),
        "id_wildcard": search(PatientID="P51080265*"),
        "accession": search(AccessionNumber="ACC063"),
        "range": search(StudyDate="20250310-20250331"),
        "open_range": search(StudyDate="-20250310"),
        "time": search(StudyTime="14"),
        "modalities": search(ModalitiesInStudy="MR"),
        "uid_list": search(StudyInstanceUID=f"{huang},{wang}"),
        "by_tag": search(**{"00100020": "Q7700"}),
        "by_tag_comma": search(**{"0010,0020": "Q7700"}),
        "description": search(StudyDescription="*CT*"),
        "fuzzy": search(PatientName="huanglij", fuzzymatching="true"),
    })
    assert got["all"] == sorted([huang, li, wang])
    assert got["ideographic"] == got["alphabetic"] == got["ideographic_group"] == [huang]
    assert got["one_char"] == [li] and got["no_match"] == []
    assert got["id_wildcard"] == sorted([huang, li])
    assert got["accession"] == got["by_tag"] == got["by_tag_comma"] == [wang]
    assert got["range"] == [li] and got["open_range"] == [huang] and got["time"] == [li]
    assert got["modalities"] == sorted([huang, li])
    assert got["uid_list"] == sorted([huang, wang])
    assert got["description"] == sorted([huang, wang])
    assert got["fuzzy"] == [huang]


async def test_multi_group_names_come_back_split(stored: tuple[TestClient, DICOMwebClient, Pushed]) -> None:
    _, client, _ = stored
    studies = await asyncio.to_thread(client.search_for_studies, search_filters={"PatientID": "P51080265001"})
    assert studies[0][NAME]["Value"] == [
        {"Alphabetic": "HUANG^LIJUAN", "Ideographic": "黄^丽娟", "Phonetic": "huang^li juan"}]
    assert studies[0]["00080090"]["Value"] == [{"Alphabetic": "ZHOU^MING", "Ideographic": "周^明"}]
    assert studies[0]["00080061"]["Value"] == ["CT", "MR"]
    assert studies[0]["00201208"]["Value"] == [4] and studies[0]["00201206"]["Value"] == [2]


async def test_series_and_instance_search_at_every_resource_path(
        stored: tuple[TestClient, DICOMwebClient, Pushed]) -> None:
    _, client, pushed = stored
    huang = pushed.studies["huang"]

    got = await asyncio.to_thread(lambda: {
        "all_series": client.search_for_series(),
        "mr_series": client.search_for_series(search_filters={"Modality": "MR"}),
        "study_series": client.search_for_series(huang),
        "all_instances": client.search_for_instances(),
        "study_instances": client.search_for_instances(huang),
        "series_instances": client.search_for_instances(huang, uid(2, 61, 1)),
        "numbered": client.search_for_instances(huang, search_filters={"InstanceNumber": "2"}),
        "by_patient": client.search_for_instances(search_filters={"PatientName": "WANG*"}),
    })
    assert len(got["all_series"]) == 4 and len(got["study_series"]) == 2
    assert sorted(_values(got["mr_series"], STUDY_UID)) == sorted([huang, pushed.studies["li"]])
    # Top-level series search names the study and the patient; one under a study need not.
    assert NAME in got["all_series"][0] and NAME not in got["study_series"][0]
    assert set(_values(got["all_instances"], SOP_UID)) == set(pushed.files)
    assert set(_values(got["study_instances"], SOP_UID)) == pushed.sops("huang")
    assert len(got["series_instances"]) == 3 and len(got["numbered"]) == 1
    assert set(_values(got["by_patient"], SOP_UID)) == pushed.sops("wang")
    one = got["study_instances"][0]
    assert one["00083002"]["Value"] == ["1.2.840.10008.1.2.1"] and one["00280010"]["Value"] == [32]
    assert one["00081190"]["Value"][0].endswith(f"/instances/{one[SOP_UID]['Value'][0]}")


async def test_includefield_limit_and_offset(stored: tuple[TestClient, DICOMwebClient, Pushed]) -> None:
    _, client, _ = stored
    got = await asyncio.to_thread(lambda: {
        "page1": client.search_for_studies(limit=2, offset=0),
        "page2": client.search_for_studies(limit=2, offset=2),
        "plain": client.search_for_studies(search_filters={"PatientID": "Q7700"}),
        "include": client.search_for_studies(search_filters={"PatientID": "Q7700"},
                                             fields=["InstitutionName", "00201200"]),
        "all": client.search_for_studies(search_filters={"PatientID": "Q7700"}, fields=["all"]),
    })
    assert len(got["page1"]) == 2 and len(got["page2"]) == 1
    assert not set(_values(got["page1"], STUDY_UID)) & set(_values(got["page2"], STUDY_UID))
    assert "00201200" not in got["plain"][0] and "00080062" not in got["plain"][0]
    assert got["include"][0]["00201200"]["Value"] == [1] and "00080080" in got["include"][0]
    assert got["all"][0]["00080062"]["Value"] == ["1.2.840.10008.5.1.4.1.1.2"]


async def test_bad_values_are_400_and_unknown_keys_are_warned(
        stored: tuple[TestClient, DICOMwebClient, Pushed]) -> None:
    center, client, _ = stored
    with pytest.raises(requests.HTTPError) as info:
        await asyncio.to_thread(client.search_for_studies, search_filters={"StudyDate": "garbage"})
    assert info.value.response.status_code == 400
    body = info.value.response.json()
    assert body["code"] == 1073 and "StudyDate" in body["message"] and "garbage" in body["message"]
    for query, field in (("StudyInstanceUID=1.2.abc", "StudyInstanceUID"), ("StudyTime=25x", "StudyTime"),
                         ("limit=0", "limit"), ("fuzzymatching=maybe", "fuzzymatching"),
                         ("InstanceNumber=two", "InstanceNumber")):
        path = "/dicomweb/instances" if field == "InstanceNumber" else "/dicomweb/studies"
        resp = await center.get(f"{path}?{query}")
        assert resp.status == 400, query
        assert field in (await resp.json())["message"]
    huang = stored[2].studies["huang"]
    resp = await center.get(f"/dicomweb/studies/{huang}/series?StudyInstanceUID=1.2.abc")
    assert resp.status == 400 and "StudyInstanceUID" in (await resp.json())["message"]
    resp = await center.get(f"/dicomweb/studies/{huang}/series?StudyInstanceUID={stored[2].studies['li']}")
    assert resp.status == 200 and await resp.json() == []  # the path fixes the study; another one finds nothing
    resp = await center.get("/dicomweb/studies?PatientID=Q7700&NoSuchKey=1&Modality=CT")
    assert resp.status == 200 and len(await resp.json()) == 1
    warnings = resp.headers.getall("Warning")
    assert any(w.startswith("299 ") and "NoSuchKey" in w for w in warnings)
    assert any("Modality" in w and "study level" in w for w in warnings)  # a series key is not matched here
    resp = await center.get("/dicomweb/studies?PatientID=Q7700&includefield=ImageType,PatientSex")
    assert "00100040" in (await resp.json())[0] and "00080008" not in (await resp.json())[0]
    assert "ImageType is not available" in resp.headers["Warning"]
    resp = await center.get("/dicomweb/studies", headers={"Accept": "application/dicom+xml"})
    assert resp.status == 406
