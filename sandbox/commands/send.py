"""`sandbox send --to URL`: play the hospital against a sharing center (the emulated one or a real one).

Generates the exams, serves their DICOM studies and PDF reports on the hospital's own port for the
duration of the send (so the center can fetch them), posts hop-1 messages in batches under the
40000-character limit, retries transient failures with the same msgid, and prints the answers.

Exit status: 0 every record got succFlag 1; 1 otherwise; 2 the center could not be reached or the
arguments cannot be used (one-line Chinese reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from rich.console import Console
from rich.table import Table

from sandbox.common.loop import run as run_loop
from sandbox.common.ports import free_port
from sandbox.config import Settings, load_settings
from sandbox.hospital.app import create_app
from sandbox.hospital.domain import NO_ANSWER, Hospital, SendReport
from sandbox.hospital.errors import HospitalError
from sandbox.synth.dicom import ImageSpec
from sandbox.typedefs import HOSPITAL

FLAG_TITLES = {"1": "成功", "0": "部分数据失败", "-1": "全部数据失败", NO_ANSWER: "未获应答或报文被拒"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("send", help="作为医疗机构向共享中心上传 / send hop 1 to a center",
                       description="生成检查并以医疗机构身份调用 saveExamRpotImgInfo；发送期间在本机端口提供 DICOM 与 PDF 文件下载。")
    p.add_argument("--to", required=True, help="共享中心地址，如 http://127.0.0.1:8701（自动补全 /mie/api/mie/saveExamRpotImgInfo）")
    p.add_argument("--count", type=int, default=10, help="检查数量（默认 10）")
    p.add_argument("--seed", type=int, help="随机种子（默认取配置 seed）")
    p.add_argument("--offset", type=int, default=0, help="从第几个检查开始（同一种子继续生成新检查）")
    p.add_argument("--config", type=Path, help="TOML 配置文件")
    p.add_argument("--institution", help="以哪家医疗机构发送（fixmedinsCode，默认配置中第一家）")
    p.add_argument("--file-port", type=int, help="文件服务端口（默认 hospital_port；0 表示任选空闲端口）")
    p.add_argument("--file-host", help="文件服务监听地址（默认配置 host）")
    p.add_argument("--file-url", help="记录中文件链接的前缀（共享中心访问本机所用地址，默认 http://host:port）")
    p.add_argument("--data-dir", type=Path, help="数据目录（默认配置 data_dir）")
    p.add_argument("--max-records", type=int, help="每个报文最多记录数（默认只受 40000 字符限制）")
    p.add_argument("--slices", type=int, default=20, help="CT/MR 每序列层数（默认 20）")
    p.add_argument("--matrix", type=int, default=256, help="CT/MR 图像矩阵（默认 256）")
    p.add_argument("--retries", type=int, help="每个报文最多尝试次数（默认配置 retry_max_attempts）")
    p.add_argument("--timeout", type=float, help="每次请求超时秒数（默认配置 send_timeout_s）")
    p.add_argument("--json", action="store_true", help="以 JSON 输出结果")
    p.set_defaults(func=run)


async def send(args: argparse.Namespace, settings: Settings) -> tuple[SendReport, Hospital]:
    """Serve the files, generate, send; the file server stops when the send is over."""
    host = args.file_host or settings.host
    port = settings.hospital_port if args.file_port is None else args.file_port
    if port == 0:
        port = free_port(host)
    shown = f"[{host}]" if ":" in host else host
    base_url = args.file_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}"
    institution = None
    if args.institution:
        institution = settings.institution(args.institution)
        if institution is None or institution.role != "hospital":
            raise HospitalError("no_hospital", code=args.institution)
    app = create_app(settings, institution=institution, seed=settings.seed, base_url=base_url,
                     image_spec=ImageSpec(slices=args.slices, matrix=args.matrix))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        hospital: Hospital = app[HOSPITAL]
        exams = await hospital.generate_exams(args.count, args.offset)
        report = await hospital.send(exams, args.to, max_records=args.max_records)
        return report, hospital
    finally:
        await runner.cleanup()


def summary(report: SendReport) -> dict[str, Any]:
    return {
        "url": report.url,
        "records": report.records,
        "messages": len(report.batches),
        "attempts": report.attempts,
        "retries": report.retries,
        "succFlag": dict(report.flag_counts()),
        "answers": [{"succFlag": f, "message": m, "count": n} for (f, m), n in report.message_counts().most_common()],
        "msgids": [b.msgid for b in report.batches if b.msgid],
    }


def print_summary(report: SendReport, console: Console) -> None:
    console.print(f"共享中心 {report.url}：{report.records} 条记录，{len(report.batches)} 个报文，"
                  f"请求 {report.attempts} 次（重试 {report.retries} 次）")
    flags = Table(title="succFlag 统计")
    flags.add_column("succFlag")
    flags.add_column("含义")
    flags.add_column("记录数", justify="right")
    for flag, n in sorted(report.flag_counts().items()):
        flags.add_row(flag, FLAG_TITLES.get(flag, "未定义"), str(n))
    console.print(flags)
    msgs = Table(title="应答信息")
    msgs.add_column("succFlag")
    msgs.add_column("message", overflow="fold")
    msgs.add_column("记录数", justify="right")
    for (flag, message), n in report.message_counts().most_common():
        msgs.add_row(flag, message, str(n))
    console.print(msgs)


def run(args: argparse.Namespace) -> int:
    def fail(text: str) -> int:
        print(f"sandbox send: {text}", file=sys.stderr)
        return 2

    try:
        if args.count < 1 or args.offset < 0:
            raise ValueError("--count 至少为 1，--offset 不能为负数")
        settings = load_settings(args.config, seed=args.seed, data_dir=args.data_dir,
                                 retry_max_attempts=args.retries, send_timeout_s=args.timeout)
        report, _ = run_loop(send(args, settings))
    except HospitalError as exc:
        return fail(exc.message)
    except OSError as exc:
        return fail(f"无法在本机启动文件服务：{exc.strerror or exc}")
    except ValueError as exc:
        return fail(str(exc))
    if report.unreachable:
        last = next(b.last for b in report.batches if b.last is not None)
        return fail(HospitalError("center_unreachable", url=report.url, detail=last.detail).message)
    if args.json:
        print(json.dumps(summary(report), ensure_ascii=False, indent=2))
    else:
        print_summary(report, Console(highlight=False))
    return 0 if report.all_ok else 1


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace()))
