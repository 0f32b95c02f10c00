"""Every transfer syntax, the way a PACS and a web viewer meet it: a corpus made during the test from pydicom's
bundled files plus dcmtk transcodes of a synthetic CT slice, each pushed with dcmtk's storescu proposing its
own syntax, then retrieved with dicomweb-client as stored, as Explicit VR Little Endian, frame by frame
(stored bitstream and uncompressed) and rendered, and compared with what was pushed."""

from __future__ import annotations

import asyncio
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from aiohttp.test_utils import TestClient
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import get_frame
from pydicom.uid import JPEG2000Lossless

from sandbox.center.syntax import EXPLICIT_LE, FRAME_MEDIA, OCTET
from sandbox.config import Settings
from tests.center.helpers import instance, study_uid_for
from tests.center.test_scp import need, run

N = 90  # the synthetic study's exam number (its StudyInstanceUID)
# name, dcmtk tool and options, the syntax it writes, 8- or 12-bit source. JPEG 2000: pydicom's encoder
# (pylibjpeg-openjpeg), as Debian's dcmtk has none.
TRANSCODES = [
    ("explicit-le", ["dcmconv", "+te"], "1.2.840.10008.1.2.1", 12),
    ("big-endian", ["dcmconv", "+tb"], "1.2.840.10008.1.2.2", 12),
    ("implicit-le", ["dcmconv", "+ti"], "1.2.840.10008.1.2", 12),
    ("deflated", ["dcmconv", "+td"], "1.2.840.10008.1.2.1.99", 12),
    ("jpeg-baseline", ["dcmcjpeg", "+eb"], "1.2.840.10008.1.2.4.50", 8),
    ("jpeg-extended-12bit", ["dcmcjpeg", "+ee"], "1.2.840.10008.1.2.4.51", 12),
    ("jpeg-lossless", ["dcmcjpeg", "+e1"], "1.2.840.10008.1.2.4.70", 12),
    ("jpeg-ls", ["dcmcjpls"], "1.2.840.10008.1.2.4.80", 12),
    ("rle", ["dcmcrle"], "1.2.840.10008.1.2.5", 12),
    ("jpeg-2000", [], JPEG2000Lossless, 12),
]
# storescu's option proposing each syntax.
PROPOSE = {"1.2.840.10008.1.2.1": "-xe", "1.2.840.10008.1.2.2": "-xb", "1.2.840.10008.1.2": "-xi",
           "1.2.840.10008.1.2.1.99": "-xd", "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
           "1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.80": "-xt", "1.2.840.10008.1.2.4.90": "-xv",
           "1.2.840.10008.1.2.5": "-xr"}
# pydicom's bundled files with distinct SOP Instance UIDs (several others share MR_small's).
BUNDLED = ["CT_small.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm", "SC_rgb_jpeg_gdcm.dcm",
           "SC_rgb_jpeg_dcmtk.dcm", "SC_jpeg_no_color_transform.dcm", "rtdose.dcm"]


def _read(data: bytes | Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data) if isinstance(data, bytes) else data)


def _pixels(ds: pydicom.Dataset) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ds.pixel_array


def _slice(number: int, bits: int) -> bytes:
    """A synthetic CT slice (12 bits stored, or 8 for JPEG baseline) with its own SOP Instance UID."""
    data = instance(n=N, number=number, size=64)
    if bits == 12:
        return data
    ds = _read(data)
    eight = (_pixels(ds) >> 4).astype(np.uint8)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = eight.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


async def _corpus(tmp_path: Path) -> list[Path]:
    paths = []
    for number, (name, argv, ts, bits) in enumerate(TRANSCODES, 1):
        src, out = tmp_path / f"{name}-src.dcm", tmp_path / f"{name}.dcm"
        src.write_bytes(_slice(number, bits))
        if argv:
            code, text = await run(need(argv[0]), *argv[1:], str(src), str(out))
            assert code == 0, text
        else:
            ds = _read(src)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds.compress(ts, encoding_plugin="pylibjpeg")
            ds.save_as(out, enforce_file_format=True)
        assert _read(out).file_meta.TransferSyntaxUID == ts, name
        paths.append(out)
    for name in BUNDLED:
        path = get_testdata_file(name)
        assert path is not None, name
        paths.append(Path(path))
    return paths


@dataclass
class Got:
    as_stored: pydicom.Dataset
    explicit: pydicom.Dataset
    stored_frame: bytes
    native_frame: bytes
    rendered: bytes
    metadata_ts: str


def _retrieve(client: DICOMwebClient, ds: pydicom.Dataset) -> Got:
    ts = str(ds.file_meta.TransferSyntaxUID)
    uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    frame_media = (FRAME_MEDIA[ts], ts) if ts in FRAME_MEDIA else (OCTET, EXPLICIT_LE)
    return Got(
        as_stored=client.retrieve_instance(*uids, media_types=(("application/dicom", "*"),)),
        explicit=client.retrieve_instance(*uids, media_types=(("application/dicom", EXPLICIT_LE),)),
        stored_frame=client.retrieve_instance_frames(*uids, [1], media_types=(frame_media,))[0],
        native_frame=client.retrieve_instance_frames(*uids, [1], media_types=((OCTET, EXPLICIT_LE),))[0],
        rendered=client.retrieve_instance_rendered(*uids, media_types=("image/png",)),
        metadata_ts=client.retrieve_instance_metadata(*uids)["00020010"]["Value"][0],
    )


@pytest.mark.slow
async def test_every_syntax_pushed_by_storescu_comes_back_as_stored_uncompressed_framed_and_rendered(
        center: TestClient, settings: Settings, tmp_path: Path) -> None:
    paths = await _corpus(tmp_path)
    pushed = [_read(p) for p in paths]
    storescu = need("storescu")
    for path, ds in zip(paths, pushed, strict=True):
        # storescu proposes uncompressed syntaxes unless told; each option adds the file's own syntax.
        option = PROPOSE[str(ds.file_meta.TransferSyntaxUID)]
        code, out = await run(storescu, "-R", option, "-aet", "PACS", "-aec", settings.dicom_ae_title,
                              "127.0.0.1", str(settings.dicom_port), str(path))
        assert code == 0 and "Converting transfer syntax" not in out, out
    client = DICOMwebClient(url=f"http://127.0.0.1:{settings.center_port}/dicomweb")

    def retrieve_all() -> dict[str, Any]:
        return {
            "each": [_retrieve(client, ds) for ds in pushed],
            "study_stored": client.retrieve_study(study_uid_for(N), media_types=(("application/dicom", "*"),)),
            "study_explicit": client.retrieve_study(study_uid_for(N)),
        }

    got = await asyncio.to_thread(retrieve_all)
    for ds, g in zip(pushed, got["each"], strict=True):
        ts, name = str(ds.file_meta.TransferSyntaxUID), f"{ds.SOPInstanceUID} ({ds.file_meta.TransferSyntaxUID.name})"
        # As stored: the syntax storescu proposed, the same data set and pixel bytes.
        assert g.metadata_ts == ts and g.as_stored.file_meta.TransferSyntaxUID == ts, name
        assert g.as_stored.SOPInstanceUID == ds.SOPInstanceUID and g.as_stored.PatientID == ds.PatientID, name
        assert g.as_stored.PixelData == ds.PixelData, name
        # Explicit VR Little Endian: decoded as pydicom decodes what was pushed.
        expected = _pixels(ds)
        assert g.explicit.file_meta.TransferSyntaxUID == EXPLICIT_LE, name
        assert np.array_equal(_pixels(g.explicit), expected), name
        first = expected[0] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else expected
        assert g.native_frame == np.ascontiguousarray(first).astype(first.dtype.newbyteorder("<")).tobytes(), name
        if ts in FRAME_MEDIA:
            assert g.stored_frame == get_frame(ds.PixelData, 0, number_of_frames=int(ds.get("NumberOfFrames", 1))), name
        else:
            assert g.stored_frame == g.native_frame, name
        image = Image.open(io.BytesIO(g.rendered))
        assert image.format == "PNG" and image.size == (ds.Columns, ds.Rows), name
    synthetic = {ds.SOPInstanceUID: ds for ds in pushed if ds.StudyInstanceUID == study_uid_for(N)}
    assert len(synthetic) == len(TRANSCODES)
    stored = {ds.SOPInstanceUID: ds for ds in got["study_stored"]}
    assert {u: str(d.file_meta.TransferSyntaxUID) for u, d in stored.items()} == {
        u: str(d.file_meta.TransferSyntaxUID) for u, d in synthetic.items()}
    # The whole study in Explicit VR Little Endian: big-endian, deflated and compressed parts included.
    explicit = {ds.SOPInstanceUID: ds for ds in got["study_explicit"]}
    assert set(explicit) == set(synthetic)
    for uid, ds in explicit.items():
        assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
        assert np.array_equal(_pixels(ds), _pixels(synthetic[uid]))
