"""Chinese texts of the fault layer: the answers a faulty role gives."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

FAULT_TEXTS: Mapping[str, str] = MappingProxyType({
    "record_rejected": "模拟故障「{name}」：该条记录被拒收",
    "record_partial": "模拟故障「{name}」：该条记录部分数据保存失败",
    "batch_rejected": "模拟故障「{name}」：整批报文被拒收",
    "http_error_body": "<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1>"
                       "<p>模拟故障「{name}」：请求未被处理</p></body></html>",
    "non_json_body": "<html><head><title>系统维护</title></head><body><p>模拟故障「{name}」："
                     "系统维护中，请稍后再试</p></body></html>",
})
