"""Response codes: the envelope `code` of every envelope outcome and the record `succFlag` values."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SuccFlag(StrEnum):
    """Per-record outcome (output table field 2)."""

    OK = "1"  # 成功
    PARTIAL = "0"  # 失败（部分数据失败）: saved, part of its data failed
    FAILED = "-1"  # 失败（全部数据失败）: rejected, nothing saved


@dataclass(frozen=True, slots=True)
class EnvelopeCode:
    code: int
    http_status: int
    message: str  # Chinese template


# Every envelope-level outcome. Business errors answer HTTP 200 with a non-zero code, as the national
# platform does, so a client that reads JSON always finds the reason; transport-level limits use 4xx.
ENVELOPE_CODES: dict[str, EnvelopeCode] = {
    "ok": EnvelopeCode(0, 200, "成功"),
    "bad_json": EnvelopeCode(1001, 200, "请求体不是合法的 JSON：{detail}"),
    "bad_content_type": EnvelopeCode(1002, 415, "请求类型应为 application/json，实际为「{got}」"),
    "body_too_large": EnvelopeCode(1003, 413, "请求体超过上限 {limit} 字节"),
    "bad_encoding": EnvelopeCode(1004, 200, "请求体不是 UTF-8 编码"),
    "too_deep": EnvelopeCode(1005, 200, "请求体 JSON 嵌套超过 {limit} 层（数组与对象），未处理"),
    "request_timeout": EnvelopeCode(1006, 408, "请求体未在 {seconds:g} 秒内完整到达，连接已关闭"),
    "too_many_connections": EnvelopeCode(1007, 503, "来自 {client} 的并发连接超过上限 {limit} 个，连接已关闭"),
    "duplicate_key": EnvelopeCode(1008, 200, "JSON 中同一对象的键「{key}」出现了 {count} 次（位置：{where}）；"
                                             "不接受重复的键，请只保留一个"),
    "bad_envelope": EnvelopeCode(1010, 200, "报文头校验失败：{detail}"),
    "unknown_infcode": EnvelopeCode(1020, 200, "交易机构编号 infCode「{infcode}」未登记"),
    "wrong_key": EnvelopeCode(1021, 200, "密钥值 key 与交易机构「{infcode}」不匹配"),
    "wrong_role": EnvelopeCode(1022, 200, "交易机构「{infcode}」不是{role}，不能发送本交易"),
    "bad_data": EnvelopeCode(1030, 200, "交易输入 data 校验失败：{detail}"),
    "msgid_conflict": EnvelopeCode(1040, 200, "报文ID「{msgid}」已使用，且报文内容与首次不同"),
    "batch_rejected": EnvelopeCode(1050, 200, "{detail}"),
    "all_failed": EnvelopeCode(-1, 200, "全部失败：{failed} 条记录均未保存"),
    "partial": EnvelopeCode(0, 200, "部分成功：{ok} 条成功，{partial} 条部分失败，{failed} 条失败"),
    "bad_query": EnvelopeCode(1060, 400, "查询参数错误：{detail}"),
    "index_not_found": EnvelopeCode(1061, 404, "索引号「{index}」不存在"),
    "exam_not_found": EnvelopeCode(1070, 404, "未找到检查「{key}」（按 hiImgIndx 或 examId 查找）"),
    "dicom_not_found": EnvelopeCode(1071, 404, "未找到 DICOM 对象：{detail}"),
    "not_acceptable": EnvelopeCode(1072, 406, "无法按请求的类型提供：{detail}"),
    "bad_dicom_request": EnvelopeCode(1073, 400, "DICOMweb/WADO 请求参数错误：{detail}"),
    "unsupported_media": EnvelopeCode(1074, 415, "不支持的请求类型：{detail}"),
    "no_such_path": EnvelopeCode(1080, 404, "路径「{path}」不存在{hint}"),
    "wrong_method": EnvelopeCode(1081, 405, "路径「{path}」不支持 {method} 请求，应使用 {allowed}"),
    "storage_full": EnvelopeCode(1090, 507, "存储空间不足或数据目录不可写（{detail}），本次请求未保存，请稍后重试"),
    # The guard of the control plane, the dashboard's actions and the center's maintenance (sandbox.common.csrf)
    "forbidden_host": EnvelopeCode(1094, 403, "请求头 Host「{host}」不是本沙箱的名字（{names}）；"
                                             "为防 DNS 重绑定，只接受这些名字或 IP 地址"),
    "forbidden_origin": EnvelopeCode(1091, 403, "来源「{origin}」不是本沙箱自己的页面，拒绝修改状态的请求"
                                               "（命令行客户端不要发送 Origin/Referer）"),
    "guard_content_type": EnvelopeCode(1092, 403, "修改状态的请求必须使用 Content-Type: application/json，"
                                                 "实际为「{got}」"),
    "token_required": EnvelopeCode(1093, 403, "本沙箱监听在非回环地址上，此接口需要请求头 X-Sandbox-Token"
                                             "（令牌见启动横幅）{detail}"),
    "internal": EnvelopeCode(1099, 500, "接收方内部错误，请稍后重试"),
}
