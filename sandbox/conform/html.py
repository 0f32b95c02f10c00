"""The conformance report as one self-contained HTML page (inline CSS, no script, no outside asset), in Chinese with
the English titles beside: for the project manager deciding go-live (the verdict, the counts, what must be fixed)
and for the vendor fixing it (per requirement the document's source, what was expected and observed, and every
exchange folded under it).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from sandbox.app import ROLE_TITLES
from sandbox.conform.model import VERDICT_ZH, Exchange, Report, Result

CSS = """
:root { --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --mute:#6e7781; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.55 -apple-system, "Segoe UI", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
       color: #1f2328; margin: 0; padding: 24px 32px 48px; max-width: 1280px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.en { color: var(--mute); font-size: 12px; }
.verdict { border-radius: 8px; padding: 14px 18px; margin: 16px 0; font-size: 18px; font-weight: 600; }
.verdict.go { background: #dafbe1; color: var(--ok); border: 1px solid #aceebb; }
.verdict.nogo { background: #ffebe9; color: var(--bad); border: 1px solid #ffcecb; }
.verdict small { display: block; font-size: 13px; font-weight: 400; color: #1f2328; margin-top: 4px; }
.meta { border-collapse: collapse; margin: 8px 0; }
.meta th { text-align: left; color: var(--mute); font-weight: 400; padding: 2px 16px 2px 0; vertical-align: top; }
.meta td { padding: 2px 0; word-break: break-all; }
.counts { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.count { border: 1px solid var(--line); border-radius: 8px; padding: 8px 16px; min-width: 96px; background: var(--bg); }
.count b { display: block; font-size: 22px; }
.count.pass b { color: var(--ok); } .count.fail b, .count.error b { color: var(--bad); }
.count.warn b { color: var(--warn); } .count.skip b { color: var(--mute); }
.fix li { margin: 2px 0; }
table.results { border-collapse: collapse; width: 100%; table-layout: fixed; }
col.c-mark { width: 36px; } col.c-id { width: 170px; } col.c-title { width: 200px; } col.c-source { width: 230px; }
col.c-sev { width: 64px; }
table.results th { text-align: left; background: var(--bg); border-bottom: 1px solid var(--line); padding: 6px 8px;
                   font-weight: 600; white-space: nowrap; }
table.results td { border-bottom: 1px solid var(--line); padding: 6px 8px; vertical-align: top; }
td.mark { font-size: 18px; text-align: center; width: 32px; }
tr.pass td.mark { color: var(--ok); } tr.fail td.mark, tr.error td.mark { color: var(--bad); }
tr.warn td.mark { color: var(--warn); } tr.skip td.mark { color: var(--mute); }
tr.fail, tr.error { background: #fff8f7; } tr.warn { background: #fffbeb; }
td.id { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
.sev { font-size: 12px; border-radius: 10px; padding: 1px 8px; white-space: nowrap; }
.sev.required { background: #ddf4ff; color: #0550ae; } .sev.recommended { background: #eaeef2; color: var(--mute); }
details { margin-top: 6px; }
summary { cursor: pointer; color: #0969da; font-size: 13px; }
.evidence { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin-top: 6px; }
.evidence h4 { margin: 8px 0 2px; font-size: 13px; }
pre { white-space: pre-wrap; word-break: break-all; font: 12px/1.45 ui-monospace, Menlo, Consolas, monospace;
      margin: 2px 0 6px; background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px;
      max-height: 360px; overflow: auto; }
.ex { border-top: 1px dashed var(--line); padding-top: 6px; margin-top: 6px; }
.ex .status { font-weight: 600; } .ex .err { color: var(--bad); }
footer { margin-top: 32px; color: var(--mute); font-size: 12px; }
@media print { details { display: block; } details > summary { display: none; } body { padding: 0; } }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _readable(body: str) -> str:
    """A JSON body with its Chinese shown as characters (not \\u escapes), indented; other text as it is."""
    try:
        return json.dumps(json.loads(body), ensure_ascii=False, indent=2)
    except ValueError:
        return body


def _exchange(i: int, ex: Exchange) -> str:
    arrow = "本工具 → 被测系统" if ex.direction == "sent" else "被测系统 → 本工具"
    head = (f'<div class="ex"><div>交互 {i}（{arrow}）<code>{_e(ex.method)} {_e(ex.url)}</code> '
            f'<span class="en">{_e(ex.at)} · {ex.seconds:.3f} 秒</span></div>')
    parts = [head]
    if ex.request_body:
        parts.append(f"<h4>请求 <span class=\"en\">request</span></h4><pre>{_e(_readable(ex.request_body))}</pre>")
    if ex.error:
        parts.append(f'<div class="err">错误：{_e(ex.error)}</div>')
    else:
        parts.append(f'<h4>应答 <span class="en">answer</span> <span class="status">HTTP {_e(ex.status)}</span></h4>'
                     f"<pre>{_e(_readable(ex.response_body))}</pre>")
    parts.append("</div>")
    return "".join(parts)


def _row(r: Result) -> str:
    req = r.requirement
    severity = "必须" if req.severity == "required" else "建议"
    evidence = [f"<h4>预期 <span class=\"en\">expected</span></h4><div>{_e(req.expected.zh)}</div>",
                f"<div class=\"en\">{_e(req.expected.en)}</div>",
                f"<h4>实际 <span class=\"en\">observed</span></h4><div>{_e(r.observed)}</div>"]
    if r.detail:
        evidence.append(f"<h4>明细 <span class=\"en\">detail</span></h4><pre>{_e(r.detail)}</pre>")
    evidence += [_exchange(i, ex) for i, ex in enumerate(r.exchanges, 1)]
    folded = (f"<details><summary>证据（{len(r.exchanges)} 次交互）</summary>"
              f"<div class=\"evidence\">{''.join(evidence)}</div></details>")
    return (f'<tr class="{r.verdict}" id="{_e(req.id)}"><td class="mark" title="{_e(VERDICT_ZH[r.verdict])}">'
            f"{_e(r.mark)}</td><td class=\"id\">{_e(req.id)}</td>"
            f"<td>{_e(req.title.zh)}<div class=\"en\">{_e(req.title.en)}</div></td>"
            f"<td>{_e(req.source)}</td><td><span class=\"sev {req.severity}\">{severity}</span></td>"
            f"<td>{_e(VERDICT_ZH[r.verdict])}：{_e(r.observed)}{folded}</td></tr>")


def render_html(report: Report) -> str:
    """The whole page."""
    counts = report.counts()
    blocking = [r for r in report.results if r.blocking]
    warnings = [r for r in report.results if r.verdict == "warn"]
    role = f"{ROLE_TITLES[report.role]}（{report.role}）"
    if report.passed:
        verdict = (f'<div class="verdict go">✓ 可以上线：全部必须项通过'
                   f"<small>{len(warnings)} 项建议项未满足（不影响上线，建议厂商修复）。"
                   f"<span class=\"en\">Go-live ready: every required check passed.</span></small></div>")
    else:
        verdict = (f'<div class="verdict nogo">✗ 暂不能上线：{len(blocking)} 项必须项未通过'
                   f"<small>须由厂商修复下列各项后重新测试。"
                   f"<span class=\"en\">Not ready for go-live: {len(blocking)} required check(s) failed.</span>"
                   f"</small></div>")
    meta_rows = [("被测角色", role), ("被测地址", report.target or "（本工具等待被测系统发来报文）"),
                 ("开始时间", report.started), ("用时", f"{report.seconds:.1f} 秒"),
                 ("检查项数", str(len(report.results)))]
    meta_rows += [(f"选项 {k}", str(v)) for k, v in report.options.items() if k != "url"]
    meta = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in meta_rows)
    boxes = "".join(f'<div class="count {k}"><b>{v}</b>{_e(VERDICT_ZH[k])}</div>' for k, v in counts.items())
    fix = ""
    todo = blocking + warnings
    if todo:
        items = "".join(f'<li>{_e(r.mark)} <a href="#{_e(r.requirement.id)}">{_e(r.requirement.id)}</a> '
                        f"{_e(r.requirement.title.zh)}（{'必须' if r.requirement.severity == 'required' else '建议'}）"
                        f"：{_e(r.observed)}</li>" for r in todo)
        fix = f'<h2>需要修复 <span class="en">to fix</span></h2><ul class="fix">{items}</ul>'
    rows = "".join(_row(r) for r in report.results)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>一致性测试报告 · {_e(role)}</title>
<style>{CSS}</style></head>
<body>
<h1>一致性测试报告 · {_e(role)}</h1>
<div class="en">Conformance report · {_e(report.role)} · 《影像检查数据上传服务接口文档》</div>
{verdict}
<table class="meta">{meta}</table>
<div class="counts">{boxes}</div>
{fix}
<h2>逐项结果 <span class="en">results, in catalogue order</span></h2>
<table class="results"><colgroup><col class="c-mark"><col class="c-id"><col class="c-title"><col class="c-source">
<col class="c-sev"><col></colgroup><thead><tr><th></th><th>编号</th><th>要求</th><th>出处</th><th>级别</th><th>实际</th></tr></thead>
<tbody>{rows}</tbody></table>
<footer>由 sandbox conform {_e(report.role)} 生成 · 时间均为北京时间（+08:00）· ✓ 通过 ✗ 不通过 ⚠ 建议项未满足 — 未检查
</footer>
</body></html>
"""


def write_html(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
