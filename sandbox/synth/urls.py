"""Where a hospital serves the files it names in a hop-1 record. Routes and record builders both use these.

- `examRpotPdfI` → `{base}/files/{exam_id}/report.pdf` (application/pdf)
- `imgInfoDcm`   → `{base}/dicomweb/studies/{StudyInstanceUID}`: the whole study as DICOMweb WADO-RS,
  `multipart/related; type="application/dicom"`, one part per instance.
  Also served: `…/series/{SeriesInstanceUID}` (multipart), `…/series/{S}/instances/{SOPInstanceUID}`
  (application/dicom, or multipart when the Accept header asks for it), and `{base}/files/{exam_id}/study.zip`
  (application/zip of the .dcm files).
"""

from __future__ import annotations

REPORT_PATH = "/files/{exam_id}/report.pdf"
ZIP_PATH = "/files/{exam_id}/study.zip"
STUDY_PATH = "/dicomweb/studies/{study}"
SERIES_PATH = STUDY_PATH + "/series/{series}"
INSTANCE_PATH = SERIES_PATH + "/instances/{instance}"


def report_url(base: str, exam_id: str) -> str:
    return base.rstrip("/") + REPORT_PATH.format(exam_id=exam_id)


def study_url(base: str, study_uid: str) -> str:
    return base.rstrip("/") + STUDY_PATH.format(study=study_uid)


def zip_url(base: str, exam_id: str) -> str:
    return base.rstrip("/") + ZIP_PATH.format(exam_id=exam_id)
