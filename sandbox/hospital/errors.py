"""The hospital role's named errors, each with a fixed code, HTTP status and Chinese message."""

from __future__ import annotations

from typing import Any

# code: (HTTP status, Chinese message template)
HOSPITAL_ERRORS: dict[str, tuple[int, str]] = {
    "unknown_exam": (404, "检查「{exam_id}」不存在或尚未生成报告文件"),
    "unknown_study": (404, "检查「{study}」不存在（StudyInstanceUID 未登记）"),
    "unknown_series": (404, "序列「{series}」不属于检查「{study}」"),
    "unknown_instance": (404, "实例「{instance}」不属于序列「{series}」"),
    "file_missing": (410, "文件已被删除：{name}"),
    "not_acceptable": (406, "无法按 Accept「{accept}」返回，可用：application/dicom、multipart/related; type=\"application/dicom\""),
    "center_unreachable": (502, "无法连接地方影像云数据共享中心 {url}：{detail}"),
    "no_hospital": (400, "配置中没有医疗机构（role=hospital）：{code}"),
}


class HospitalError(Exception):
    """A refused request or operation of the hospital role."""

    def __init__(self, error: str, **kw: Any) -> None:
        self.name = error
        self.status, template = HOSPITAL_ERRORS[error]
        self.message = template.format(**kw)
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"code": self.status, "type": "error", "error": self.name, "message": self.message}
