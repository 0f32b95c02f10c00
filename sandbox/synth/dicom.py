"""DICOM studies for synthetic exams: the one module that builds DICOM files.

Each exam becomes one study whose patient, study and equipment attributes agree with its hop-1 record
(PatientName, PatientID = patnId, AccessionNumber = appyNo, StudyDate = examDate, InstitutionName =
fixmedinsName …). Images are computed from simple anatomical phantoms (sums of uniform ellipsoids, the
Shepp–Logan idea) so that a viewer shows a head, a chest or a knee: CT slices in Hounsfield units, MR
slices by a tissue-to-signal map, DX/CR radiographs as analytic projections of the same phantom, and
ultrasound as a speckled sector. Files are written one instance at a time (never a whole series in
memory) with `save_as(..., enforce_file_format=True)`; UIDs and noise derive from the seed, so the same
seed gives the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundImageStorage,
)

from sandbox.synth.catalogue import Item
from sandbox.synth.exams import Exam, make_uid
from sandbox.synth.images import DEFAULT_IMAGES, ImageSpec

IMPLEMENTATION_UID = make_uid("yibao-imgcloud-sandbox", "implementation")
IMPLEMENTATION_NAME = "YBIMGCLOUD_SBX1"
CHARSET = "ISO_IR 192"

SOP_CLASSES = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "DX": DigitalXRayImageStorageForPresentation,
    "CR": ComputedRadiographyImageStorage,
    "US": UltrasoundImageStorage,
}


@dataclass(frozen=True, slots=True)
class InstanceFile:
    """One written instance."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class: str
    series_no: int
    instance_no: int
    path: Path
    size: int


# --- phantoms -------------------------------------------------------------------------------------
# (cx, cy, cz, rx, ry, rz, value) in mm, patient coordinates (LPS: +x left, +y posterior, +z head).
# Values add up over a background of -1000 (air), so CT numbers are sums and projections are line integrals.
Ellipsoid = tuple[float, float, float, float, float, float, float]
_LONG = 2000.0  # "infinite" extent along z

PHANTOMS: dict[str, tuple[Ellipsoid, ...]] = {
    "head": (
        (0, 0, 0, 78, 98, 92, 1040),  # scalp
        (0, 0, 0, 75, 95, 88, 700),  # skull
        (0, 0, 0, 69, 89, 82, -705),  # brain (35 HU)
        (-12, -5, 10, 6, 24, 16, -25),  # lateral ventricles
        (12, -5, 10, 6, 24, 16, -25),
        (0, 40, -40, 30, 25, 20, 5),  # cerebellum
    ),
    "chest": (
        (0, 0, 0, 170, 120, _LONG, 1040),  # body (40 HU)
        (0, 0, 0, 160, 112, _LONG, 400),  # rib cage (shell: outer …
        (0, 0, 0, 150, 102, _LONG, -400),  # … minus inner)
        (-85, -5, 0, 62, 88, 170, -890),  # right lung
        (85, -5, 0, 60, 88, 165, -890),  # left lung
        (12, -28, -40, 40, 42, 60, 10),  # heart
        (8, 30, 0, 12, 12, _LONG, 5),  # descending aorta
        (0, 82, 0, 18, 16, _LONG, 600),  # vertebral bodies
        (0, -100, 0, 14, 6, 120, 500),  # sternum
    ),
    "abdomen": (
        (0, 0, 0, 165, 120, _LONG, 1040),
        (-60, -10, 20, 85, 75, 130, 20),  # liver
        (-40, -55, -10, 16, 16, 30, -25),  # gallbladder
        (85, 35, 30, 35, 45, 60, 10),  # spleen
        (-65, 55, -40, 26, 30, 55, -5),  # kidneys
        (65, 55, -40, 26, 30, 55, -5),
        (10, 40, 0, 12, 12, _LONG, 5),  # aorta
        (0, 75, 0, 20, 17, _LONG, 600),  # vertebral bodies
        (0, -20, -20, 60, 20, 30, -120),  # bowel gas and fat
    ),
    "lspine": (
        (0, 0, 0, 160, 120, _LONG, 1040),
        (0, 20, 0, 24, 19, _LONG, 600),  # vertebral bodies …
        (0, 20, -60, 24, 19, 4, -520),  # … with discs
        (0, 20, -30, 24, 19, 4, -520),
        (0, 20, 0, 24, 19, 4, -520),
        (0, 20, 30, 24, 19, 4, -520),
        (0, 20, 60, 24, 19, 4, -520),
        (0, 50, 0, 11, 9, _LONG, -30),  # spinal canal
        (0, 76, 0, 26, 13, _LONG, 600),  # posterior elements
        (-48, 25, 0, 20, 26, _LONG, 15),  # psoas
        (48, 25, 0, 20, 26, _LONG, 15),
    ),
    "knee": (
        (0, 0, 0, 62, 62, _LONG, 1040),
        (0, 0, 55, 36, 31, 60, 900),  # femur (cortex) …
        (0, 0, 55, 29, 24, 58, -700),  # … and marrow
        (0, 3, -55, 34, 31, 52, 900),  # tibia
        (0, 3, -55, 28, 25, 50, -700),
        (0, -46, 25, 21, 8, 22, 900),  # patella
        (0, 0, 0, 40, 35, 7, -30),  # joint fluid and cartilage
    ),
    "pelvis": (
        (0, 0, 0, 180, 130, _LONG, 1040),
        (-95, 20, 45, 42, 50, 60, 700),  # iliac wings
        (95, 20, 45, 42, 50, 60, 700),
        (-92, -8, -40, 25, 25, 25, 800),  # femoral heads
        (92, -8, -40, 25, 25, 25, 800),
        (-100, -5, -110, 16, 16, 70, 800),  # femoral shafts
        (100, -5, -110, 16, 16, 70, 800),
        (0, 72, 25, 42, 20, 60, 600),  # sacrum
        (0, -60, -50, 45, 40, 35, -30),  # bladder
    ),
}
# Where the lesion of an abnormal report shows (x, y, z, radius) per phantom.
LESIONS: dict[str, tuple[float, float, float, float]] = {
    "head": (-25, -10, 15, 12), "chest": (-80, 10, 20, 10), "abdomen": (-60, -10, 20, 14),
    "lspine": (0, 38, 0, 8), "knee": (0, -20, 5, 8), "pelvis": (-92, -8, -60, 10),
}
# Contrast enhancement (HU added) of vessels and organs, by phantom and ellipsoid number.
ENHANCE: dict[str, dict[int, float]] = {
    "chest": {5: 150, 6: 250}, "abdomen": {1: 60, 3: 80, 4: 120, 5: 120, 6: 250}, "head": {5: 20},
}

# CT windows (centre, width) per phantom; several windows are DICOM multi-values.
CT_WINDOWS: dict[str, tuple[tuple[float, float, str], ...]] = {
    "head": ((40, 80, "BRAIN"),),
    "chest": ((40, 400, "MEDIASTINUM"), (-600, 1500, "LUNG")),
    "abdomen": ((40, 350, "ABDOMEN"),),
    "lspine": ((40, 400, "SOFT TISSUE"), (500, 2000, "BONE")),
    "knee": ((300, 1500, "BONE"),),
    "pelvis": ((400, 1800, "BONE"),),
}
# T2-weighted-looking signal from CT numbers (MR shows the same anatomy, differently).
_MR_HU = np.array([-1000, -800, -150, -30, 0, 15, 25, 45, 80, 250, 700, 2000], dtype=np.float32)
_MR_T2 = np.array([0, 40, 1300, 1600, 1900, 1700, 1100, 800, 700, 550, 180, 60], dtype=np.float32)
_MR_T1C = np.array([0, 40, 1500, 900, 500, 600, 900, 1000, 1400, 1100, 200, 80], dtype=np.float32)


def _noise_rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _uid(exam: Exam, *parts: object) -> str:
    return make_uid(exam.seed, exam.hospital.code, exam.n, *parts)


def _phantom(exam: Exam, item: Item, enhanced: bool) -> list[Ellipsoid]:
    shapes = list(PHANTOMS[item.phantom])
    if enhanced:
        for k, extra in ENHANCE.get(item.phantom, {}).items():
            cx, cy, cz, rx, ry, rz, v = shapes[k]
            shapes[k] = (cx, cy, cz, rx, ry, rz, v + extra)
    if exam.finding is not None and item is exam.items[0]:
        x, y, z, r = LESIONS[item.phantom]
        shapes.append((x, y, z, r, r, r, 45 if not enhanced else 90))
    return shapes


def ct_slice(shapes: list[Ellipsoid], z: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """CT numbers (HU) of the axial plane at height z on the grid xs × ys (mm)."""
    img = np.full((ys.size, xs.size), -1000.0, dtype=np.float32)
    for cx, cy, cz, rx, ry, rz, v in shapes:
        t = 1.0 - ((z - cz) / rz) ** 2
        if t <= 0:
            continue
        s = np.sqrt(t)
        dx = ((xs - cx) / (rx * s)) ** 2
        dy = ((ys - cy) / (ry * s)) ** 2
        img += v * (dy[:, None] + dx[None, :] <= 1.0)
    return img


def projection(shapes: list[Ellipsoid], view: str, us: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Line integrals of attenuation (mm of water) through the phantom: AP/PA along y, lateral along x."""
    total = np.zeros((zs.size, us.size), dtype=np.float32)
    lateral = view in ("LL", "RL", "LAT")
    for cx, cy, cz, rx, ry, rz, v in shapes:
        cu, ru, depth = (cy, ry, rx) if lateral else (cx, rx, ry)
        q = 1.0 - ((us[None, :] - cu) / ru) ** 2 - ((zs[:, None] - cz) / min(rz, 400.0)) ** 2
        total += (v / 1000.0) * 2.0 * depth * np.sqrt(np.clip(q, 0.0, None))
    return total


def _common(exam: Exam, modality: str, sop_class: str, sop_uid: str) -> tuple[FileMetaDataset, Dataset]:
    """File meta and the patient, study and equipment attributes every instance of the study shares."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_NAME

    p, t, h, d = exam.patient, exam.times, exam.hospital, exam.device
    ds = Dataset()
    ds.SpecificCharacterSet = CHARSET
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = f"{t.exam:%Y%m%d}"
    ds.StudyTime = f"{t.exam:%H%M%S}"
    ds.AccessionNumber = exam.accession
    ds.Modality = modality
    ds.Manufacturer = d.model.manufacturer
    ds.InstitutionName = h.name
    ds.ReferringPhysicianName = exam.clinician.name
    ds.StationName = d.ae_title
    ds.StudyDescription = exam.item_name
    ds.InstitutionalDepartmentName = "放射科" if modality != "US" else "超声医学科"
    ds.NameOfPhysiciansReadingStudy = exam.reporter.name
    ds.OperatorsName = exam.technician.name
    ds.ManufacturerModelName = d.model.model
    ds.PatientName = f"{p.family}^{p.given}" if p.given else p.family
    # The record leaves patnId out for some exams; the images then carry the certificate number, so the
    # center can still match them to the record (PatientID against patnId/certno/iptNo).
    ds.PatientID = exam.patient_id if "patnId" in exam.filled else p.certno
    ds.IssuerOfPatientID = h.code
    ds.PatientBirthDate = f"{p.birth:%Y%m%d}"
    ds.PatientSex = "M" if p.gend == "1" else "F"
    years = exam.age
    ds.PatientAge = f"{int(years):03d}Y" if years >= 1 else f"{max(1, round(float(years) * 12)):03d}M"
    ds.DeviceSerialNumber = d.serial
    ds.SoftwareVersions = "VB20A"
    ds.StudyInstanceUID = exam.study_uid
    ds.StudyID = exam.accession[-8:]
    ds.RequestedProcedureDescription = exam.item_name
    return meta, ds


def _save(meta: FileMetaDataset, ds: Dataset, path: Path) -> int:
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path.stat().st_size


def _pixels(ds: Dataset, arr: np.ndarray, bits: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape
    if bits == 8:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        data = arr.astype(np.uint8)
    else:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
        data = np.clip(arr, 0, 2**bits - 1).astype("<u2")
    ds.PixelRepresentation = 0
    ds.PixelData = data.tobytes()


def _series_plan(exam: Exam) -> list[tuple[Item, bool, str]]:
    """(item, enhanced?, description) of each series: CT/MR get a plain and maybe an enhanced series."""
    plan: list[tuple[Item, bool, str]] = []
    for item in exam.items:
        if item.modality in ("CT", "MR"):
            plan.append((item, False, "平扫"))
            if exam.enhanced and item.enhanced_name:
                plan.append((item, True, "增强"))
        else:
            plan.append((item, False, item.name))
    return plan


def write_study(exam: Exam, out_dir: Path, spec: ImageSpec = DEFAULT_IMAGES) -> list[InstanceFile]:
    """Write the exam's study under out_dir (S001/I0001.dcm …), one instance at a time."""
    return list(iter_study(exam, out_dir, spec))


def iter_study(exam: Exam, out_dir: Path, spec: ImageSpec = DEFAULT_IMAGES) -> Iterator[InstanceFile]:
    """Write the study instance by instance, yielding each file as soon as it is on disk."""
    for series_no, (item, enhanced, label) in enumerate(_series_plan(exam), 1):
        series_uid = _uid(exam, "series", series_no)
        writer = {"CT": _ct_mr_series, "MR": _ct_mr_series, "DX": _xray_series, "CR": _xray_series,
                  "US": _us_series}[item.modality]
        yield from writer(exam, item, enhanced, label, series_no, series_uid, out_dir, spec)


def _start(exam: Exam, series_no: int) -> datetime:
    return exam.times.exam + timedelta(minutes=4 * (series_no - 1))


def _ct_mr_series(
    exam: Exam, item: Item, enhanced: bool, label: str, series_no: int, series_uid: str, out_dir: Path,
    spec: ImageSpec,
) -> Iterator[InstanceFile]:
    modality = item.modality
    sop_class = SOP_CLASSES[modality]
    shapes = _phantom(exam, item, enhanced)
    n, size = spec.slices, spec.matrix
    spacing = item.fov_mm / size
    thickness = max(item.slice_mm, item.length_mm / max(n, 1))
    coords = (np.arange(size, dtype=np.float32) + 0.5) * spacing - item.fov_mm / 2
    origin = -item.fov_mm / 2 + spacing / 2
    top = (n - 1) * thickness / 2
    frame_uid = _uid(exam, "frame", series_no)
    start = _start(exam, series_no)
    windows = CT_WINDOWS[item.phantom]
    for k in range(n):
        z = top - k * thickness
        hu = ct_slice(shapes, z, coords, coords)
        rng = _noise_rng(exam.seed, exam.hospital.code, exam.n, series_no, k)
        sop_uid = _uid(exam, "sop", series_no, k + 1)
        meta, ds = _common(exam, modality, sop_class, sop_uid)
        when = start + timedelta(seconds=k)
        ds.SeriesTime = f"{start:%H%M%S}"
        ds.AcquisitionTime = ds.ContentTime = f"{when:%H%M%S}"
        ds.BodyPartExamined = item.body_part
        ds.SliceThickness = f"{thickness:.2f}"
        ds.PatientPosition = "FFS" if item.phantom == "knee" else "HFS"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_no
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [f"{origin:.3f}", f"{origin:.3f}", f"{z:.3f}"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = f"{z:.3f}"
        ds.PixelSpacing = [f"{spacing:.4f}", f"{spacing:.4f}"]
        ds.SeriesDescription = f"{item.name.replace('平扫', '')} {label} {thickness:.1f}mm"
        ds.ProtocolName = f"{item.body_part} {'C+' if enhanced else 'PLAIN'}"
        if modality == "CT":
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.KVP = "120"
            ds.XRayTubeCurrent = 200
            ds.ConvolutionKernel = "B30f" if item.phantom != "chest" else "B70f"
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
            ds.WindowCenter = [str(c) for c, _, _ in windows] if len(windows) > 1 else str(windows[0][0])
            ds.WindowWidth = [str(w) for _, w, _ in windows] if len(windows) > 1 else str(windows[0][1])
            ds.WindowCenterWidthExplanation = [e for _, _, e in windows] if len(windows) > 1 else windows[0][2]
            if enhanced:
                ds.ContrastBolusAgent = "碘海醇 350mgI/ml"
            stored = hu + rng.normal(0.0, 8.0, hu.shape).astype(np.float32) + 1024.0
            _pixels(ds, stored, 12)
        else:
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
            ds.ScanningSequence = "SE"
            ds.SequenceVariant = ["SK", "SP"]
            ds.ScanOptions = ["FS"] if enhanced else ["PFP"]
            ds.MRAcquisitionType = "2D"
            ds.RepetitionTime, ds.EchoTime = ("550", "10") if enhanced else ("4000", "95")
            ds.EchoTrainLength = 3 if enhanced else 16
            ds.MagneticFieldStrength = f"{exam.device.model.field_strength:.1f}"
            ds.ImagedNucleus = "1H"
            ds.SpacingBetweenSlices = f"{thickness:.2f}"
            if enhanced:
                ds.ContrastBolusAgent = "钆喷酸葡胺"
            signal = np.interp(hu, _MR_HU, _MR_T1C if enhanced else _MR_T2).astype(np.float32)
            signal = np.abs(signal + rng.normal(0.0, 25.0, signal.shape).astype(np.float32))
            ds.WindowCenter, ds.WindowWidth = "900", "1800"
            _pixels(ds, signal, 12)
        info = _write(exam, meta, ds, out_dir, series_no, k + 1, series_uid)
        yield info


def _write(exam: Exam, meta: FileMetaDataset, ds: Dataset, out_dir: Path, series_no: int, instance_no: int,
           series_uid: str) -> InstanceFile:
    path = out_dir / f"S{series_no:03d}" / f"I{instance_no:04d}.dcm"
    size = _save(meta, ds, path)
    return InstanceFile(exam.study_uid, series_uid, str(ds.SOPInstanceUID), str(ds.SOPClassUID), series_no,
                        instance_no, path, size)


def _xray_series(
    exam: Exam, item: Item, enhanced: bool, label: str, series_no: int, series_uid: str, out_dir: Path,
    spec: ImageSpec,
) -> Iterator[InstanceFile]:
    modality = item.modality
    sop_class = SOP_CLASSES[modality]
    shapes = _phantom(exam, item, False)
    size = spec.xray_matrix
    spacing = item.fov_mm / size
    us = (np.arange(size, dtype=np.float32) + 0.5) * spacing - item.fov_mm / 2
    zs = item.fov_mm / 2 - (np.arange(size, dtype=np.float32) + 0.5) * spacing  # top row = head end
    start = _start(exam, series_no)
    for k, view in enumerate(item.views or ("AP",)):
        line = projection(shapes, view, us, zs)
        rng = _noise_rng(exam.seed, exam.hospital.code, exam.n, series_no, k)
        value = 3800.0 * (1.0 - np.exp(-line / 160.0)) + 150.0
        value += rng.normal(0.0, 12.0, value.shape).astype(np.float32)
        sop_uid = _uid(exam, "sop", series_no, k + 1)
        meta, ds = _common(exam, modality, sop_class, sop_uid)
        when = start + timedelta(seconds=30 * k)
        ds.SeriesTime = f"{start:%H%M%S}"
        ds.AcquisitionTime = ds.ContentTime = f"{when:%H%M%S}"
        ds.BodyPartExamined = item.body_part
        ds.ViewPosition = view if view != "LAT" else "LL"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_no
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = label
        ds.PatientOrientation = ["A", "F"] if view in ("LL", "RL") else ["L", "F"]
        ds.KVP = "125" if item.phantom == "chest" else "75"
        ds.ExposureInuAs = 2000 if item.phantom == "chest" else 12000
        ds.ImagerPixelSpacing = [f"{spacing:.4f}", f"{spacing:.4f}"]
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.WindowCenter, ds.WindowWidth = "2000", "3800"
        if modality == "DX":
            ds.PresentationIntentType = "FOR PRESENTATION"
            ds.PixelIntensityRelationship = "LOG"
            ds.PixelIntensityRelationshipSign = 1
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
            ds.PresentationLUTShape = "IDENTITY"
            ds.BurnedInAnnotation = "NO"
            ds.LossyImageCompression = "00"
            ds.DetectorType = "SCINTILLATOR"
            ds.PixelSpacing = ds.ImagerPixelSpacing
        else:
            ds.PlateType = "ST-VI"
        _pixels(ds, value, 12)
        yield _write(exam, meta, ds, out_dir, series_no, k + 1, series_uid)


# Ultrasound: anechoic structures (x, depth, half-width, half-height as fractions) per item.
_US_TARGETS: dict[str, tuple[tuple[float, float, float, float, float], ...]] = {
    "us_abdomen": ((0.15, 0.45, 0.12, 0.08, 0.05), (-0.2, 0.3, 0.3, 0.25, 0.55)),  # gallbladder, liver
    "us_thyroid": ((-0.15, 0.35, 0.22, 0.12, 0.45), (0.2, 0.35, 0.2, 0.12, 0.45), (0.0, 0.2, 0.05, 0.05, 0.05)),
    "us_gyn": ((0.0, 0.5, 0.28, 0.18, 0.45), (0.0, 0.5, 0.2, 0.02, 0.9), (0.0, 0.25, 0.22, 0.1, 0.03)),
}


def _us_series(
    exam: Exam, item: Item, enhanced: bool, label: str, series_no: int, series_uid: str, out_dir: Path,
    spec: ImageSpec,
) -> Iterator[InstanceFile]:
    rows, cols = spec.us_shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    apex_x, apex_y = cols / 2, rows * 0.06
    radius = np.hypot(xx - apex_x, yy - apex_y)
    angle = np.arctan2(xx - apex_x, yy - apex_y)
    depth = radius / (rows * 0.9)
    sector = (np.abs(angle) < 0.62) & (depth > 0.04) & (depth < 1.0)
    start = _start(exam, series_no)
    for k in range(spec.us_images):
        rng = _noise_rng(exam.seed, exam.hospital.code, exam.n, series_no, k)
        echo = np.full((rows, cols), 0.55, dtype=np.float32)
        echo *= 1.0 + 0.25 * np.sin(depth * 9.0 + k)  # layered tissue
        shift = 0.04 * k
        for tx, ty, hw, hh, level in _US_TARGETS.get(item.key, ()):
            inside = ((np.sin(angle) * depth - tx - shift) / hw) ** 2 + ((np.cos(angle) * depth - ty) / hh) ** 2 <= 1
            echo[inside] = level
        if exam.finding is not None:
            inside = ((np.sin(angle) * depth + 0.1) / 0.05) ** 2 + ((np.cos(angle) * depth - 0.6) / 0.04) ** 2 <= 1
            echo[inside] = 1.6
        speckle = rng.rayleigh(0.8, (rows, cols)).astype(np.float32)
        img = 150.0 * echo * speckle * (1.0 - 0.35 * depth)
        img = np.where(sector, np.clip(img, 0, 255), 0.0)
        sop_uid = _uid(exam, "sop", series_no, k + 1)
        meta, ds = _common(exam, "US", SOP_CLASSES["US"], sop_uid)
        when = start + timedelta(seconds=40 * k)
        ds.SeriesTime = f"{start:%H%M%S}"
        ds.AcquisitionTime = ds.ContentTime = f"{when:%H%M%S}"
        ds.BodyPartExamined = item.body_part
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_no
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = label
        ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL" if item.key != "us_thyroid" else "SMALL PARTS"]
        ds.TransducerData = "C5-1" if item.key != "us_thyroid" else "L12-4"
        ds.PatientOrientation = ""
        region = Dataset()
        region.RegionSpatialFormat = 1
        region.RegionDataType = 1
        region.RegionFlags = 0
        region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
        region.RegionLocationMaxX1, region.RegionLocationMaxY1 = cols - 1, rows - 1
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
        region.PhysicalDeltaX = region.PhysicalDeltaY = 16.0 / rows
        ds.SequenceOfUltrasoundRegions = [region]
        ds.WindowCenter, ds.WindowWidth = "128", "256"
        _pixels(ds, img, 8)
        yield _write(exam, meta, ds, out_dir, series_no, k + 1, series_uid)
