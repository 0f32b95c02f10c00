"""`sandbox conform ROLE --url URL`: test an outside hospital, center or province against the document.

Exit status: 0 when every required check passes, 1 otherwise, 2 when the system could not be reached (or the
options or catalogue are unusable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from sandbox.common.loop import run as run_loop
from sandbox.conform.html import write_html
from sandbox.conform.kit import KitError, Options
from sandbox.conform.model import ROLES, CatalogueError, Role, load_catalogue
from sandbox.conform.report import print_report, result_line, write_json, write_junit
from sandbox.conform.runner import run_kit
from sandbox.spec.index_profiles import DEFAULT_PROFILE, PROFILES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "conform", help="一致性测试：按文档检验外部的医疗机构、共享中心或省级模块 / conformance kit",
        description="把本工具当作对端，逐条检验被测系统是否符合文档（每条检查注明文档出处或勘误编号），"
                    "输出终端表格，并可写 JUnit、JSON、HTML 报告。退出码：0 必须项全部通过，1 有必须项未通过，"
                    "2 被测系统无法连接。")
    p.add_argument("role", nargs="?", choices=ROLES, metavar="ROLE",
                   help="被测角色：center（共享中心）、province（省级模块）、hospital（医疗机构，被动等待其报文）")
    p.add_argument("--url", help="被测系统的接口地址（center：saveExamRpotImgInfo 的完整 URL；"
                                 "province：saveExamRpotImgIndx 的完整 URL；hospital 不需要）")
    p.add_argument("--list", action="store_true", help="打印检查目录（可与 ROLE 一起只列一个角色）")
    p.add_argument("--mode", choices=("strict", "lenient"), default="strict",
                   help="文档示例异写（勘误）的判定：strict 报错，lenient 记为提示（默认 strict）")
    p.add_argument("--index-profile", "--profile", dest="profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES),
                   help="医保影像云索引号编码规则")
    p.add_argument("--only", action="extend", nargs="+", metavar="ID|TAG", default=[],
                   help="只运行这些检查：编号、编号前缀（以 - 结尾）、通配（C-HOP1-*）或标签；可重复")
    p.add_argument("--skip", action="extend", nargs="+", metavar="ID|TAG", default=[], help="跳过这些检查；写法同 --only")
    p.add_argument("--timeout", type=float, default=10.0, help="单次请求的超时秒数（默认 10）")
    p.add_argument("--wait", type=float, default=30.0, help="等待被测系统主动行为（如转发）的最长秒数（默认 30）")
    p.add_argument("--institution", metavar="CODE", help="被测系统的机构编码（其发送或被识别的 infCode）")
    p.add_argument("--key", help="被测系统的密钥（key）")
    p.add_argument("--as-code", dest="sender_code", metavar="CODE",
                   help="本工具扮演医疗机构或共享中心时使用的机构编码（被测系统须认识它）")
    p.add_argument("--as-key", dest="sender_key", metavar="KEY", help="本工具扮演对端时使用的密钥")
    p.add_argument("--as-uscc", dest="sender_uscc", metavar="USCC",
                   help="province：本工具扮演共享中心时的统一社会信用代码（记录的 stogInsUscc，被测系统须认识它）")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="本工具自己的服务（文件服务、模拟省级模块或共享中心）监听的地址；端口 0 表示任取空闲端口")
    p.add_argument("--public-host", metavar="HOST", help="被测系统访问本工具时使用的主机名或 IP（默认同 --listen）")
    p.add_argument("--messages", type=int, metavar="N", help="hospital：收到 N 条报文后结束（否则按 Ctrl-C 结束）")
    p.add_argument("--enforce", action="store_true", help="hospital：判为不合格的报文也按严格中心的方式拒收")
    p.add_argument("--probe-retries", dest="probe_retries", action="append", choices=("5xx", "stall"), default=[],
                   help="hospital：对新报文的第一次请求应答 HTTP 503（5xx）或不应答（stall），检查重发是否保持 msgid 与报文体；"
                        "可重复，依次用于第 1、2…个新报文")
    p.add_argument("--stall", type=float, default=60.0, metavar="S",
                   help="hospital：stall 探测最多不应答的秒数（应长于被测系统的超时，默认 60）")
    p.add_argument("--allow-fetch-host", dest="fetch_hosts", action="append", default=[], metavar="HOST:PORT",
                   help="hospital：本工具的共享中心可以取文件的主机与端口（可重复；默认本机回环地址的任意端口）")
    p.add_argument("--seed", type=int, default=20251008, help="合成数据的随机种子")
    p.add_argument("--json", type=Path, metavar="FILE", help="把结果写成 JSON")
    p.add_argument("--junit", type=Path, metavar="FILE", help="把结果写成 JUnit XML")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="把结果写成一个独立的 HTML 页面（结论、统计、逐项结果，证据折叠），可直接发给项目经理")
    p.set_defaults(func=run)


def list_catalogue(roles: tuple[Role, ...]) -> None:
    for role in roles:
        reqs = load_catalogue(role)
        print(f"■ {role}（{len(reqs)} 项）")
        for r in reqs:
            level = "必须" if r.severity == "required" else "建议"
            tags = f"  [{', '.join(r.tags)}]" if r.tags else ""
            print(f"  {r.id:<22} {level}  {r.title.zh} / {r.title.en}\n  {'':<22}       出处：{r.source}{tags}")


def options_of(args: argparse.Namespace) -> Options:
    host, _, port = args.listen.rpartition(":")
    return Options(url=args.url, mode=args.mode, profile=args.profile, timeout=args.timeout, wait=args.wait,
                   institution=args.institution, key=args.key, sender_code=args.sender_code,
                   sender_key=args.sender_key, sender_uscc=args.sender_uscc,
                   listen_host=host.strip("[]") or "127.0.0.1", listen_port=int(port),
                   public_host=args.public_host, messages=args.messages, enforce=args.enforce, seed=args.seed,
                   extra={k: v for k in ("probe_retries", "stall", "fetch_hosts") if (v := getattr(args, k, None))})


def run(args: argparse.Namespace) -> int:
    try:
        if args.list:
            list_catalogue((args.role,) if args.role else ROLES)
            return 0
        if args.role is None:
            print("请指定被测角色：center、province 或 hospital（或用 --list 查看检查目录）", file=sys.stderr)
            return 2
        if args.role != "hospital" and not args.url:
            print(f"conform {args.role} 需要 --url：被测系统的接口地址", file=sys.stderr)
            return 2
        if args.sender_code and not args.sender_key:
            print("--as-code 需要同时给出 --as-key：本工具以该机构身份发送时使用的密钥", file=sys.stderr)
            return 2
        if not args.listen.rpartition(":")[2].isdigit():
            print(f"--listen 应为 主机:端口，收到「{args.listen}」", file=sys.stderr)
            return 2
        options = options_of(args)
        report = run_loop(run_kit(args.role, options, args.only, args.skip,
                                  on_result=lambda r: print(result_line(r), flush=True)))
    except CatalogueError as e:
        print(f"检查目录有误：{e}", file=sys.stderr)
        return 2
    except KitError as e:
        print(f"{e.prefix}：{e}", file=sys.stderr)
        return 2
    print_report(report, Console())
    if args.json:
        write_json(report, args.json)
    if args.junit:
        write_junit(report, args.junit)
    if args.html:
        write_html(report, args.html)
    return 0 if report.passed else 1
