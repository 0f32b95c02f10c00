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
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from rich.console import Console
from rich.table import Table

from sandbox.common.loop import run as run_loop
from sandbox.common.ports import free_port
from sandbox.config import Settings, load_settings
from sandbox.hospital.app import create_app
from sandbox.hospital.domain import NO_ANSWER, Hospital, SendReport
from sandbox.hospital.errors import HospitalError
from sandbox.synth.images import ImageSpec
from sandbox.typedefs import HOSPITAL

LAST_SEND = "last-send.json"
FLAG_TITLES = {"1": "成功", "0": "部分数据失败", "-1": "全部数据失败", NO_ANSWER: "未获应答或报文被拒"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("send", help="作为医疗机构向共享中心上传 / send hop 1 to a center",
                       description="生成检查并以医疗机构身份调用 saveExamRpotImgInfo；发送期间在本机端口提供 DICOM 与 PDF 文件下载。")
    p.add_argument("--to", required=True, help="共享中心地址，如 http://127.0.0.1:8701（自动补全 /mie/api/mie/saveExamRpotImgInfo）")
    p.add_argument("--count", type=int, default=10, help="检查数量（默认 10）")
    p.add_argument("--seed", type=int, help="随机种子（默认取配置 seed）")
    p.add_argument("--offset", type=int, default=0,
                   help="从第几个检查开始（从 0 数；同一种子再发一次时用它发送新的检查，如 --offset 25）")
    p.add_argument("--resend", action="store_true",
                   help="原样重发上一次发送的报文（同一 msgid、同一报文体，共享中心按 msgid 返回首次应答，不重复保存），"
                        "文件仍在上一次的地址提供")
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


def last_send_path(settings: Settings) -> Path:
    """Where `sandbox send` keeps what it sent last (for --resend and for the second-run hint)."""
    return settings.data_dir / "hospital" / LAST_SEND


def read_last_send(settings: Settings) -> dict[str, Any] | None:
    path = last_send_path(settings)
    try:
        last = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return last if isinstance(last, dict) else None


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the file server binds (TIME_WAIT is fine)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def second_run_hint(last: dict[str, Any] | None, settings: Settings, args: argparse.Namespace) -> str | None:
    """A send of exams this data folder sent before (same seed, overlapping numbers) without --resend."""
    if last is None or args.resend or last.get("seed") != settings.seed:
        return None
    start, end = int(last.get("offset", 0)), int(last.get("offset", 0)) + int(last.get("count", 0))
    if args.offset >= end or args.offset + args.count <= start:
        return None
    return (f"提示：种子 {settings.seed} 的第 {max(start, args.offset)}–{min(end, args.offset + args.count) - 1} 号检查"
            f"上次已发送（{last.get('to')}）。同一检查再发一次：共享中心对内容相同的记录答 1（已存在，不重复保存），"
            f"对文件链接等内容不同的记录答 -1 索引号重复。原样重发上次的报文用 --resend；发送新的检查用 --offset {end}")


async def send(args: argparse.Namespace, settings: Settings) -> tuple[SendReport, Hospital]:
    """Serve the files, generate, send; the file server stops when the send is over."""
    host = args.file_host or settings.host
    last = read_last_send(settings)
    port = settings.hospital_port if args.file_port is None else args.file_port
    if args.resend:
        if last is None or not last.get("messages"):
            raise ValueError(f"没有上一次发送的记录（{last_send_path(settings)}），无法 --resend")
        port = urlsplit(str(last["base_url"])).port or port
    elif port == 0:
        # the port this data folder's last send used, when it is free: a second run writes the same links
        previous = last.get("port") if last is not None else None
        port = previous if isinstance(previous, int) and port_free(host, previous) else free_port(host)
    shown = f"[{host}]" if ":" in host else host
    base_url = args.file_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}"
    if args.resend:
        base_url = str(last["base_url"]) if last is not None else base_url
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
        if args.resend:
            assert last is not None
            return await hospital.resend(list(last["messages"]), args.to), hospital
        exams = await hospital.generate_exams(args.count, args.offset)
        report = await hospital.send(exams, args.to, max_records=args.max_records)
        last_send_path(settings).write_text(json.dumps({
            "to": report.url, "seed": settings.seed, "offset": args.offset, "count": args.count, "port": port,
            "base_url": base_url, "messages": [b.message for b in report.batches if b.sent and b.msgid],
        }, ensure_ascii=False), encoding="utf-8")
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
        hint = second_run_hint(read_last_send(settings), settings, args)
        if hint is not None:
            print(hint, file=sys.stderr)
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
