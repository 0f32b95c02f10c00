"""Every Chinese message of the sandbox, keyed by a machine-readable code. Never inline these elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Field-level problems found by the validator. Placeholders are filled with str.format.
PROBLEMS: Mapping[str, str] = MappingProxyType({
    "missing": "必填项缺失",
    "empty": "必填项为空",
    "type_string": "应为字符串，实际为{got}",
    "type_coerced": "应为字符串，实际为{got}，已按字符串「{value}」处理",
    "too_long": "长度 {length} 超过上限 {limit}",
    "control_char": "含控制字符 {chars}（NUL、转义等 C0/C1 控制字符或双向文本控制符会改变显示、可被用来伪装），请删除",
    "not_dict_code": "代码「{value}」不在字典【{dict}】中，可选值：{choices}",
    "erratum_dict_code": "代码「{value}」不是{dict}的取值（{choices}）；文档示例使用了此类文字（勘误 #{erratum}）",
    "external_code": "代码「{value}」不在{dict}常用代码中",
    "multi_separator": "多个取值应以单个半角空格分隔，实际为「{value}」",
    "date_format": "日期格式应为 yyyy-MM-dd，实际为「{value}」",
    "datetime_format": "时间格式应为 yyyy-MM-dd HH:mm:ss，实际为「{value}」",
    "date_only": "datetime 字段只给了日期「{value}」（勘误 #10），按 {value} 00:00:00 处理",
    "date_only_strict": "datetime 字段只给了日期「{value}」（勘误 #10），应为 yyyy-MM-dd HH:mm:ss",
    "decimal_type": "应为数值，实际为{got}",
    "decimal_string": "应为数值，实际为字符串「{value}」（勘误 #7）",
    "decimal_format": "「{value}」不是合法数值",
    "decimal_scale": "「{value}」小数位超过 {scale} 位",
    "decimal_precision": "「{value}」超过 {precision} 位有效数字（含 {scale} 位小数）",
    "decimal_negative": "「{value}」不能为负数",
    "idcard_checksum": "身份证号「{value}」校验位错误，应为「{expected}」（GB 11643）",
    "idcard_format": "「{value}」不是 18 位居民身份证号码",
    "idcard_15": "「{value}」为 15 位旧身份证号码，无校验位",
    "uscc_checksum": "统一社会信用代码「{value}」校验码错误，应为「{expected}」（GB 32100）",
    "uscc_format": "「{value}」不是 18 位统一社会信用代码",
    "fixmedins_format": "「{value}」不是 12 位定点医药机构代码（如 H51080200001）",
    "admdvs_format": "「{value}」不是 6 位医保区划代码（如 510800）",
    "exam_part_format": "「{value}」不是 9 位大写英文字母和数字组成的检查部位编码（WS/T 364.8-2023）",
    "postcode_format": "「{value}」不是 6 位邮政编码",
    "url_format": "「{value}」不是 http(s) 访问链接",
    "file_format": "应为文件下载链接 http(s)://…{dicom}，实际为「{value}」",
    "file_inline": "以内联 base64 传送文件（{size} 字节），宽松模式接受",
    "file_inline_strict": "严格模式不接受内联 base64 文件，应传文件下载链接",
    "file_inline_bad": "内联文件不是合法的 base64",
    "file_substitute": "缺少 {right}，示例报文用 {wrong} 代替（勘误 #{erratum}），按 {wrong} 的链接取文件",
    "index_format": "索引号「{value}」不符合编码规则「{profile}」：{rule}",
    "index_mismatch": "索引号中的{segment}「{got}」与 {field} 的值「{expected}」不一致",
    "variant_spelling": "字段名 {wrong} 是文档示例中的拼写（勘误 #{erratum}），表格定义为 {right}",
    "variant_spelling_strict": "字段名 {wrong} 不是表格定义的名称（勘误 #{erratum}），应为 {right}",
    "duplicate_key": "字段 {right} 与其异名 {wrong} 同时出现，以 {right} 为准",
    "foreign_field": "字段 {wrong} 属于另一交易（勘误 #{erratum}），本交易不使用，已忽略",
    "foreign_field_strict": "字段 {wrong} 属于另一交易（勘误 #{erratum}），本交易不接受",
    "unknown_field": "未定义的字段 {wrong}，已忽略",
    "unknown_field_strict": "未定义的字段 {wrong}，不接受",
    "record_type": "记录应为 JSON 对象，实际为{got}",
    "duplicate_in_batch": "索引号「{value}」在本批次第 {first} 条已出现",
    # Envelope
    "env_not_object": "报文应为 JSON 对象，实际为{got}",
    "env_missing": "报文头缺少必填字段",
    "env_empty": "报文头必填字段为空",
    "env_infno": "交易编号「{value}」不是本接口的交易编号 {expected}",
    "env_infno_variant": "交易编号「{value}」是文档示例中的拼写（勘误 #1），表格定义为 {expected}",
    "env_infno_variant_strict": "交易编号「{value}」不是表格定义的 {expected}（勘误 #1）",
    "env_msgid": "报文ID「{value}」应为 交易机构编号(12)+时间yyyyMMddHHmmss(14)+顺序号(4)，共 30 位（实际 {length} 位）",
    "env_msgid_time": "报文ID「{value}」第 13–26 位的时间「{time}」不是有效的 yyyyMMddHHmmss 时间（长度 30 位正确）",
    "env_msgid_inst": "报文ID 前 12 位「{got}」与交易机构编号「{expected}」不一致",
    "env_inftime": "交易时间「{value}」应为 yyyy-MM-dd HH:mm:ss",
    "env_infcode_from_msgid": "交易机构编号为空（勘误 #11），按报文ID前 12 位「{value}」处理",
    "env_data_type": "data 应为记录数组，实际为{got}",
    "env_data_string": "data 为 JSON 字符串（表格类型 String，勘误 #13），已按数组解析",
    "env_data_string_strict": "data 为字符串（勘误 #13），应为 JSON 数组",
    "env_data_object": "data 为单个对象，已按一条记录处理",
    "env_data_object_strict": "data 为单个对象，应为 JSON 数组",
    "env_data_bad_string": "data 字符串不是合法的 JSON 数组",
    "env_data_duplicate_key": "data 字符串中同一对象的键「{key}」出现了 {count} 次：解析器只保留最后一个值，"
                              "请去掉重复的键",
    "env_data_empty": "data 中没有记录",
    "env_data_too_long": "data 长度 {length} 字符超过上限 {limit}",
})

# Answers of the receivers, per record and per envelope.
RESULTS: Mapping[str, str] = MappingProxyType({
    "saved": "保存数据成功",
    "saved_partial": "保存数据成功，部分数据失败：{detail}",
    "saved_idempotent": "保存数据成功（相同记录已存在，未重复保存）",
    "advisory": "（提示：{detail}）",
    "invalid": "数据校验失败：{detail}",
    "duplicate_index": "索引号重复：{value} 已由其他记录使用",
    "duplicate_in_batch": "索引号重复：{value} 在本批次第 {first} 条已出现",
    "uscc_not_sender": "存储机构统一社会信用代码 {value} 不属于发送机构 {infcode}",
    "batch_ok": "成功",
    "batch_partial": "部分成功：{ok} 条成功，{partial} 条部分失败，{failed} 条失败",
    "batch_failed": "全部失败：{failed} 条记录均未保存",
})

# Why a record gets its succFlag (`sandbox validate` prints one per record).
OUTCOME_REASONS: Mapping[str, str] = MappingProxyType({
    "clean": "按原样保存",
    "noted": "完整保存，{count} 项规范化或提示（不影响保存）",
    "dropped": "已保存，但发送的 {fields} 未保存",
    "errors": "{count} 个错误，记录不保存",
    "duplicate": "批内索引号重复，记录不保存",
})

# Parameters of the query (调阅) endpoints.
QUERY: Mapping[str, str] = MappingProxyType({
    "unknown_param": "未定义的查询参数 {param}，可用参数：{known}",
    "repeated_param": "查询参数 {param} 重复出现",
    "too_long": "{param} 长度 {length} 超过上限 {limit}",
    "bad_date": "{param} 应为日期 yyyy-MM-dd，实际为「{value}」",
    "range_reversed": "起始日期 from「{start}」晚于截止日期 to「{end}」",
    "bad_int": "{param} 应为正整数，实际为「{value}」",
    "size_too_large": "每页条数 size 为 {value}，超过上限 {limit}",
})

# JSON type names as a Chinese reader sees them.
JSON_TYPE_NAMES: Mapping[str, str] = MappingProxyType({
    "str": "字符串", "int": "整数", "float": "小数", "bool": "布尔值",
    "NoneType": "null", "list": "数组", "dict": "对象",
})


def json_type(value: object) -> str:
    return JSON_TYPE_NAMES.get(type(value).__name__, type(value).__name__)

# The sharing center: fetching and checking the hop-1 files, the pushed studies, forwarding to the
# province, and the words its pages and status answers use.
CENTER: Mapping[str, str] = MappingProxyType({
    # fetching a file named by a URL
    "host_not_allowed": "主机 {host} 不在允许取文件的主机与端口列表 allowed_fetch_hosts（{allowed}）中，未访问「{url}」",
    "fetch_resolve": "无法解析主机名 {host}，未访问「{url}」",
    "forbidden_special": "主机 {host} 解析为 {address}（未指定、组播或链路本地地址，如云元数据服务），不允许取文件，未访问「{url}」",
    "forbidden_own": "主机 {host} 解析为本机地址 {address}，端口 {port} 是沙箱自己的服务，不允许从这里取文件，未访问「{url}」",
    "bad_url": "「{url}」不是可访问的 http(s) 地址",
    "fetch_timeout": "{seconds:g} 秒内未取完文件「{url}」",
    "fetch_connect": "无法连接「{url}」：{detail}",
    "fetch_status": "取文件「{url}」失败：HTTP {status}",
    "fetch_too_large": "文件超过上限 {limit} 字节（{url}）",
    "fetch_redirects": "取文件「{url}」重定向超过 {limit} 次",
    "fetch_bad_response": "「{url}」的应答不是合法的 HTTP/1.1 应答：{detail}",
    "inline_bad": "内联文件不是合法的 base64",
    # the report PDF
    "not_pdf": "不是 PDF 文件（{head}）",
    "pdf_unreadable": "PDF 无法解析（{detail}）",
    "pdf_no_pages": "PDF 没有任何页面",
    "pdf_failed": "检查报告 PDF（examRpotPdfI）未保存：{detail}",
    # DICOM
    "not_dicom": "不是 DICOM 文件（第 128 字节处没有 DICM 标识，{head}）",
    "dicom_unreadable": "DICOM 无法解析：{detail}",
    "dicom_missing_tags": "DICOM 缺少必需的元素：{tags}",
    "dicom_bad_uid": "DICOM 的 {tag}「{value}」不是合法的 UID",
    "dicom_truncated": "DICOM 像素数据不完整：应为 {expected} 字节，实际 {got} 字节",
    "dicom_inconsistent": "DICOM 元素 {tag} {keyword} 的值「{value}」不符合其 VR {vr}，无法一致地读取",
    "dicom_study_mismatch": "实例的 StudyInstanceUID「{got}」不是请求路径中的 {expected}",
    "dicom_conflict": "SOPInstanceUID {uid} 已存储且内容不同，未覆盖",
    "multipart_bad": "multipart/related 应答无法拆分：{detail}",
    "zip_bad": "zip 文件无法解压：{detail}",
    "zip_too_large": "zip 解压后超过上限 {limit} 字节（archive_max_bytes）",
    "zip_too_many": "zip 含 {count} 个文件，超过上限 {limit} 个（archive_max_members）",
    "zip_ratio": "zip 中的「{name}」压缩比超过上限 {limit:g} 倍（archive_max_ratio），疑似压缩炸弹，未解压",
    "quota_message": "本报文的文件合计超过上限 {limit} 字节（quota_message_bytes），其余文件未取",
    "quota_institution": "机构 {infcode} 在共享中心保存的文件合计超过上限 {limit} 字节（quota_institution_bytes），"
                         "未取文件；清理数据（POST /_sandbox/reset）或调高上限后重新发送",
    "no_instances": "没有 DICOM 实例",
    "changed_meanwhile": "记录在处理期间被清除，请重新发送",
    "not_pushed": "未找到经 C-STORE 推送的检查 StudyInstanceUID「{uid}」（请先推送到 {ae}@{host}:{port}）",
    "part_label": "第 {n} 部分",
    "dicom_partial": "影像（imgInfoDcm）{failed}/{total} 个实例未保存：{detail}",
    "dicom_none": "影像（imgInfoDcm）未能保存任何 DICOM 实例：{detail}",
    "failure_more": "另有 {more} 个",
    # DICOM against the record
    "disagree": "影像与记录不一致：{detail}",
    "disagree_name": "患者姓名 PatientName「{dicom}」与 psnName「{record}」不符",
    "disagree_id": "患者号 PatientID「{dicom}」与 patnId/certno/iptNo（{record}）均不符",
    "disagree_date": "检查日期 StudyDate「{dicom}」与 examDate「{record}」不符",
    "disagree_modality": "设备类型 Modality「{dicom}」与 imgExamType「{record}」（{title}）不符",
    "disagree_count": "（{count} 个实例）",
    "multi_study": "影像含 {count} 个检查（StudyInstanceUID），下载链接指向实例最多的 {uid}",
    # forwarding to the province (hop 2)
    "fw_batch_rejected": "省平台拒收整批报文（code {code}）：{message}",
    "fw_expired": "自首次发送起 {hours} 小时内（forward_horizon_s）转发 {attempts} 次均未成功，已放弃：{detail}；"
                  "修复后可调用 POST /api/forward/retry 重新发送",
    "fw_held": "省平台应答 HTTP {status}，批次已暂停（held），不自动重发；修正后调用 POST /api/forward/retry 重新发送：{detail}",
    "fw_never_tried": "省级模块不可达期间未轮到发送",
    "fw_not_envelope": "应答不是文档的报文格式（code 为 0/-1 却没有逐条结果 data）",
    "fw_no_answer": "省平台应答中没有该记录的结果",
    "fw_invalid": "第二跳记录校验失败：{detail}",
    "fw_too_large": "第二跳记录长度 {length} 超过 data 上限 {limit} 字符，无法发送",
    "fw_requeued": "已重新排入转发队列",
    "fw_bad_reason": "参数 reason「{value}」不可重新发送，可选：{choices}（省级逐条拒收 province_rejected 为最终结果，"
                     "同一报文ID重发只会得到同样的应答）",
    "fw_step_failed": "转发步骤出错，稍后重试",
    "fw_storage_down": "存储故障（{problem}）：转发暂停，每秒重试一次，恢复后自动继续（不再重复记录）",
    "fw_storage_back": "存储已恢复：转发继续",
    "fw_url_changed": "省级模块地址已由 {old} 改为 {new}：已把 {count} 个暂停或失败的批次重新排队",
    # states and words of the status API and the pages
    "state_pending": "等待转发",
    "state_sending": "转发中",
    "state_forwarded": "已转发",
    "state_warning": "已转发（省平台有提示）",
    "state_held": "已暂停（省平台应答 4xx，待修正后重新发送）",
    "state_failed": "转发失败",
    "state_expired": "转发失败（超过重试期限）",
    "exam_missing": "未找到检查「{key}」",
    "image_unsupported": "该图像的传输语法 {ts} 暂不支持预览，可下载 DICOM 查看",
    "no_pdf": "未保存检查报告 PDF",
    "study_deleted": "已删除检查 {uid} 的 {count} 个实例",
})

# The trainer's dashboard (sandbox.dashboard): its API answers and the upload-quality report.
DASHBOARD: Mapping[str, str] = MappingProxyType({
    "no_journal": "本沙箱未开启日志，看板没有数据",
    "not_found": "日志中没有第 {seq} 条交互",
    "bad_param": "参数 {name} 应为{kind}，实际为「{value}」",
    "bad_body": "请求体应为 JSON 对象：{detail}",
    "bad_name": "需要场景名称 name",
    "kind_int": "非负整数",
    "kind_hop": " 1 或 2",
    "kind_outcome": " ok、partial、failed、rejected、transport 之一",
    "started": "已开始运行场景「{name}」",
    "reset": "已清空全部数据、日志与故障",
    "not_json": "（不是 JSON）",
    # why an exam is not indexed at the province, by the furthest stage it reached
    "reason_hop1_transport": "未送达共享中心（{transport}）",
    "reason_hop1_envelope": "第一跳报文被整批拒收（code {code}）",
    "reason_hop1_rejected": "共享中心拒收（succFlag -1）",
    "reason_hop2_center": "共享中心未能转发（{reason}）",
    "reason_hop2_transport": "未送达省级模块（{transport}）",
    "reason_hop2_envelope": "第二跳报文被整批拒收（code {code}）",
    "reason_hop2_rejected": "省级模块拒收（succFlag -1）",
    "no_field": "（未指明字段）",
    "no_index": "（无索引号）第{position}条 {msgid}",
    # an exam's state in the exam list
    "state_indexed": "已建索引",
    "state_indexed_partial": "已建索引（部分数据失败）",
    "state_in_progress": "处理中",
    "state_failed": "未建索引",
    "total": "合计",
    "all_institutions": "全部机构",
    "no_day": "（无检查日期）",
    "ok": "成功",
    "port_taken": "看板无法监听 {host}:{port}：{error}（端口被占用？可用 --dashboard-port 换一个）",
    "not_started": "{reason}；本次不启动培训看板，三个角色照常运行",
    "internal": "看板内部错误，请稍后重试（详情见 sandbox serve 的日志）",
    "storage": "存储空间不足或数据目录不可写（{detail}），请稍后重试",
})

# Transport failures (journal `transport`) and the center's forwarding failure reasons, in Chinese.
TRANSPORT_TITLES: Mapping[str, str] = MappingProxyType({
    "timeout": "超时", "connection": "连接失败", "http_5xx": "HTTP 5xx", "http_4xx": "HTTP 4xx",
    "throttled": "限流或稍后重试（408/425/429）", "not_envelope": "应答不是文档的报文格式",
    "non_json": "应答不是 JSON", "truncated": "应答被截断", "dropped": "连接被断开",
    "aborted": "客户端中途断开",
})
FORWARD_REASONS: Mapping[str, str] = MappingProxyType({
    "unreachable": "省级模块不可达，重试次数用尽", "expired": "超过重试期限仍未送达", "http_rejected": "省平台应答 4xx，已暂停",
    "batch_rejected": "整批被拒收", "province_rejected": "省级拒收",
    "invalid_hop2": "第二跳记录校验失败", "too_large": "记录超过 data 长度上限", "no_answer": "应答中没有该记录",
    "bad_answer": "应答无法识别",
})

# The same in English (the dashboard's English mode and `/api/quality.csv?lang=en`).
REASONS_EN: Mapping[str, str] = MappingProxyType({
    "reason_hop1_transport": "not delivered to the sharing center ({transport})",
    "reason_hop1_envelope": "hop-1 message refused whole (code {code})",
    "reason_hop1_rejected": "refused by the sharing center (succFlag -1)",
    "reason_hop2_center": "the sharing center could not forward it ({reason})",
    "reason_hop2_transport": "not delivered to the provincial module ({transport})",
    "reason_hop2_envelope": "hop-2 message refused whole (code {code})",
    "reason_hop2_rejected": "refused by the provincial module (succFlag -1)",
    "no_field": "(no field named)",
})
TRANSPORT_TITLES_EN: Mapping[str, str] = MappingProxyType({
    "timeout": "timeout", "connection": "connection failed", "http_5xx": "HTTP 5xx", "http_4xx": "HTTP 4xx",
    "non_json": "answer not JSON", "truncated": "answer truncated", "dropped": "connection dropped",
})
FORWARD_REASONS_EN: Mapping[str, str] = MappingProxyType({
    "unreachable": "province unreachable, retries used up", "expired": "not delivered within the retry horizon",
    "http_rejected": "province answered 4xx, held", "batch_rejected": "batch refused whole",
    "province_rejected": "refused by the province", "invalid_hop2": "hop-2 record failed validation",
    "too_large": "record over the data length limit", "no_answer": "no answer for the record",
    "bad_answer": "answer not understood",
})

# Columns of the upload-quality report (page and CSV), Chinese and English.
QUALITY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("institution", "机构编码", "Institution code"),
    ("institutionName", "机构名称", "Institution"),
    ("day", "检查日期", "Exam date"),
    ("sent", "已发送检查", "Exams sent"),
    ("indexed", "已建索引", "Indexed"),
    ("inProgress", "处理中", "In progress"),
    ("failed", "失败", "Failed"),
    ("failedByReason", "失败原因", "Failures by reason"),
    ("topFields", "主要错误字段", "Top error fields"),
    ("onTime", "按时上传", "On time"),
    ("onTimeShare", "按时上传率", "On-time share"),
    ("medianDelayHours", "上传时延中位数（小时）", "Median delay (hours)"),
    ("radiology", "放射检查", "Radiology exams"),
    ("radiologyNotIndexed", "放射检查未上传", "Radiology not uploaded"),
    ("exposureYuan", "预计减收（元）", "Price-cut exposure (yuan)"),
)

# What the receivers' guard (sandbox.common.guard), the storage checks and the start-up gate say: log lines
# and refusals that are not an envelope code.
RECEIVER: Mapping[str, str] = MappingProxyType({
    "aborted": "客户端在请求完成前断开：{method} {path}（来自 {client}），已记入日志为 aborted",
    "body_timeout": "请求体未在 {seconds:g} 秒内到达：{method} {path}（来自 {client}），应答 408 并关闭连接",
    "too_many_connections": "来自 {client} 的并发连接已达上限 {limit} 个，新连接应答 503 并关闭",
    "storage_failed": "存储空间不足或数据目录不可写：{method} {path} 应答 507（{detail}）",
    "journal_failing": "交互日志写入失败（{detail}），{pending} 条待写，空间恢复后自动补写",
    "journal_recovered": "交互日志恢复写入，补写 {count} 条",
    "journal_dropped": "交互日志因磁盘持续不可写丢弃最早的 {count} 条（内存中最多保留 {limit} 条）",
    "journal_unwritten": "停止时交互日志仍不可写，{count} 条未写入",
    "not_ready": "沙箱正在启动，各角色尚未就绪，请稍后重试",
    "stopping": "沙箱正在停止，不再接受控制请求",
    "unwritable": "数据目录 {path} 不可写（{error}），请检查磁盘空间与权限，或用 --data-dir 指定其他目录",
    "orphans_removed": "共享中心启动：删除 {count} 个未提交请求遗留的文件（{size:.1f} MB）",
})

# Error Comment (0000,0902) of a failed C-STORE. A DIMSE command set has no Specific Character Set (PS3.7
# 6.3.1): its LO values are in the default repertoire and at most 64 characters, so these are ASCII; the
# Chinese reason is in the center's log.
DIMSE_COMMENTS: Mapping[str, str] = MappingProxyType({
    "not_dicom": "Not a DICOM data set",
    "dicom_unreadable": "Data set cannot be parsed",
    "dicom_missing_tags": "Required UID missing (SOP/Study/Series)",
    "dicom_bad_uid": "Invalid UID in {tag}",
    "dicom_truncated": "Pixel Data shorter than its length",
    "dicom_inconsistent": "Invalid {vr} value in {tag} {keyword}",
    "not_encodable": "Data set cannot be encoded",
    "conflict": "SOP Instance UID stored with other content",
    "out_of_resources": "Center could not store the instance",
})


def dimse_comment(code: str, **kw: object) -> str:
    """The Error Comment of a C-STORE failure, cut to LO's 64 characters."""
    text = DIMSE_COMMENTS.get(code, DIMSE_COMMENTS["dicom_unreadable"])
    try:
        text = text.format(**kw)
    except (KeyError, IndexError):
        pass
    return text.encode("ascii", "replace").decode()[:64]
