"""`sandbox load --target URL`: load-test a sharing center with the sandbox's hospitals as Locust users.

This process only orchestrates (Locust and gevent never load here): it starts a Locust master and
`--workers` local worker processes running `sandbox/load/locustfile.py` (or `--locustfile`), optionally the
sandbox's own center and province (`--serve`), waits, then reads Locust's CSV and the workers' counts and
prints the sandbox's summary, with the end-to-end check when the province is known.

Exit status: 0 every record answered succFlag 1 (and, when checked, every acknowledged exam indexed);
1 otherwise; 2 the load could not run (one-line Chinese reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from sandbox.common.ports import free_port
from sandbox.config import load_settings
from sandbox.load.plan import (
    DATA_OPTIONS,
    PlanError,
    add_data_options,
    load_hospitals,
    parse_modalities,
    parse_range,
)
from sandbox.load.run import (
    LOCUSTFILE,
    LoadError,
    Options,
    Summary,
    end_to_end,
    locust_missing,
    read_summary,
    run_locust,
    serve_sandbox,
    target_config,
)
from sandbox.spec.formats import china_now
from sandbox.synth.regions import REGIONS

RUN_TIME = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$")
MISSING_LOCUST = ("未安装 Locust（sandbox load 用它产生负载）。请安装可选依赖：pip install -e '.[load]'"
                  "（make setup 安装的 .[dev] 已包含）")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("load", help="用 Locust 对共享中心压测 / load-test a center with Locust",
                       description="以沙箱的医疗机构为 Locust 用户，对共享中心发送第一跳报文并提供文件下载；"
                                   "结束后输出 Locust 的 CSV/HTML 报告与沙箱的汇总（含端到端核对）。")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target", help="被测共享中心地址，如 http://10.0.0.5:8701（只取协议、主机与端口）")
    target.add_argument("--serve", action="store_true",
                        help="在本机启动沙箱自己的共享中心与省级模块（空闲端口、临时数据目录）并对它压测，结束后做端到端核对")
    p.add_argument("--users", type=int, default=10, help="并发用户数（每个用户是一家医疗机构，默认 10）")
    p.add_argument("--spawn-rate", type=float, help="每秒启动的用户数（默认一次全部启动）")
    p.add_argument("--run-time", default="60s", help="运行时长，如 30s、5m、1h30m（默认 60s）")
    p.add_argument("--headless", action="store_true",
                   help="不等网页操作：立即开始，到 --run-time 后停止并退出（否则在 Locust 网页中开始与停止）")
    p.add_argument("--workers", type=int, default=1, help="在本机启动的 Locust 负载进程数（默认 1）")
    p.add_argument("--remote-workers", type=int, default=0,
                   help="另外等待几台其他机器上的负载进程连入（见 README「压测」）")
    p.add_argument("--hospitals", type=int,
                   help="生成多少家医疗机构（默认：有 --config 时用其中的医疗机构，否则与 --users 相同）")
    p.add_argument("--config", type=Path, help="TOML 配置文件：医疗机构与密钥、共享中心、索引号规则、种子")
    p.add_argument("--seed", help="随机种子（默认配置 seed）；对同一中心再压一次请换种子，否则检查与上次相同")
    add_data_options(p)
    p.add_argument("--file-host", default="127.0.0.1",
                   help="共享中心访问本机负载进程文件服务所用的地址（写进记录的链接，默认 127.0.0.1）")
    p.add_argument("--file-bind", default="", help="文件服务监听地址（默认同 --file-host；多机时可用 0.0.0.0）")
    p.add_argument("--file-port-base", type=int, default=0,
                   help="文件服务端口：第 i 个本机负载进程用 此值+i-1（默认 0：各自任选空闲端口）")
    p.add_argument("--master-bind", default="127.0.0.1", help="Locust 主控监听地址（其他机器的负载进程连入时用 0.0.0.0）")
    p.add_argument("--master-port", type=int, help="Locust 主控端口（默认任选空闲端口；有 --remote-workers 时默认 5557）")
    p.add_argument("--web-port", type=int, help="Locust 网页端口（默认任选空闲端口，打印在开始时）")
    p.add_argument("--stop-timeout", type=int, default=30, help="停止时等待进行中的报文完成的秒数（默认 30）")
    p.add_argument("--locustfile", type=Path, help="自己扩展的 locustfile（继承 sandbox.load.users.HospitalUser）")
    p.add_argument("--province", help="沙箱的省级模块地址：结束后核对每个已确认的检查都已建立索引")
    p.add_argument("--out", type=Path, help="报告目录（默认 out/load-日期-时间）")
    p.add_argument("--print-config", action="store_true", help="只打印目标共享中心需要的配置（机构、密钥、取文件地址）")
    p.add_argument("--json", action="store_true", help="以 JSON 输出汇总")
    p.set_defaults(func=run)


def base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PlanError(f"--target 应为 http(s)://主机:端口，而不是「{url}」")
    return f"{parts.scheme}://{parts.netloc}"


def check(args: argparse.Namespace) -> None:
    if args.users < 1 or args.workers < 1 or args.remote_workers < 0:
        raise PlanError("--users 与 --workers 至少为 1，--remote-workers 不能为负数")
    if not RUN_TIME.match(args.run_time) or not args.run_time:
        raise PlanError(f"--run-time 应写作 30s、5m、1h30m，而不是「{args.run_time}」")
    if args.spawn_rate is not None and args.spawn_rate <= 0:
        raise PlanError("--spawn-rate 应大于 0")
    if args.region not in REGIONS:
        raise PlanError(f"--region 不认识「{args.region}」，可选：{'、'.join(sorted(REGIONS))}")
    if args.pool < 1 or args.slices < 1 or args.matrix < 8:
        raise PlanError("--pool、--slices 至少为 1，--matrix 至少为 8")
    if args.think < 0 or args.stop_timeout < 0:
        raise PlanError("--think 与 --stop-timeout 不能为负数")
    if args.locustfile is not None and not args.locustfile.is_file():
        raise PlanError(f"--locustfile 文件不存在：{args.locustfile}")
    parse_range(args.records, "--records")
    parse_modalities(args.modalities)
    if args.target is not None:
        base_url(args.target)


def print_summary(s: Summary, out: Path) -> None:
    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f} ms"

    print(f"共享中心 {s.target}：{s.users} 个用户（医疗机构），{s.workers} 个负载进程，用时 {s.seconds:.1f} 秒")
    cut = s.exams_sent - sum(s.flags.values())
    print(f"  报文 {s.requests} 个已应答（失败 {s.failed_requests}），检查 {s.exams_sent} 条已发送，"
          f"{s.acknowledged} 条已确认（succFlag 1 或 0）" + (f"，{cut} 条在停止时尚无结果" if cut > 0 else ""))
    print(f"  已确认检查 {s.exams_per_s:.1f} 条/秒；每个报文 p50 {ms(s.p50)} · p95 {ms(s.p95)} · p99 {ms(s.p99)}")
    print("  succFlag：" + ("，".join(f"{k} → {v}" for k, v in sorted(s.flags.items())) or "（无应答）"))
    for kind, n in s.kinds.items():
        print(f"    {kind} ×{n}")
    sizes = ""
    if s.pool_pdf_bytes and s.pool_dicom_bytes:
        sizes = (f"；PDF 约 {sum(s.pool_pdf_bytes) / len(s.pool_pdf_bytes) / 1e3:.0f} KB，"
                 f"DICOM {min(s.pool_dicom_bytes) / 1e6:.2f}–{max(s.pool_dicom_bytes) / 1e6:.2f} MB/检查")
    print(f"  文件服务：{s.files} 个文件，{s.file_bytes / 1e6:.1f} MB（文件池 {s.pool_exams} 个检查/负载进程{sizes}）")
    cpu = "、".join(f"{c:.0f}%" for c in s.worker_cpu)
    print(f"  负载进程 CPU（发送期间平均，占一个核）：{cpu or '—'}"
          + ("；负载端接近饱和（或出现 Locust CPU 警告）：速率可能受负载端限制，请增加 --workers 或负载机"
             if s.client_bound else "；负载端未饱和，速率由共享中心决定"))
    for error in s.errors:
        print(f"  ✗ {error}")
    if s.e2e is not None:
        e = s.e2e
        mark = "✓" if e["ok"] else "✗"
        print(f"  {mark} 端到端：已确认 {e['acknowledged']} 条，省级模块已建立索引 {e['indexed']} 条，"
              f"共享中心保存 {e['centerStored']} 条、已转发 {e['centerForwarded']} 条"
              + (f"；缺少 {e['missingCount']} 条，如 {e['missing'][0]}" if e["missingCount"] else ""))
    print(f"报告：{out}/locust.html、{out}/locust_stats.csv、{out}/sandbox-summary.json")


def run(args: argparse.Namespace) -> int:
    def fail(text: str) -> int:
        print(f"sandbox load: {text}", file=sys.stderr)
        return 2

    try:
        check(args)
        settings = load_settings(args.config)
        seed: Any = args.seed if args.seed is not None else settings.seed
        count = args.hospitals if args.hospitals is not None else (None if args.config else args.users)
        hospitals = load_hospitals(settings, count, args.region, seed)
    except (PlanError, ValueError, ValidationError, OSError) as exc:
        return fail(str(exc))
    fetch_hosts = ([f"{args.file_host}:{args.file_port_base + i}" for i in range(args.workers)]
                   if args.file_port_base else [f"{args.file_host}:*"])
    config_text = target_config(hospitals, settings.center, fetch_hosts)
    if args.print_config:
        print(config_text)
        return 0
    if locust_missing():
        return fail(MISSING_LOCUST)
    out = args.out or Path("out") / f"load-{china_now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "target.toml").write_text(config_text, encoding="utf-8")
    locust_args = ["--sandbox-seed", str(seed), "--sandbox-hospitals", str(count or 0)]
    for name, *_ in DATA_OPTIONS:
        locust_args += [f"--sandbox-{name}", str(getattr(args, name))]
    if args.config:
        locust_args += ["--sandbox-config", str(args.config.resolve())]
    master_port = args.master_port or (5557 if args.remote_workers else free_port(args.master_bind
                                       if args.master_bind not in ("0.0.0.0", "*") else "127.0.0.1"))
    options = Options(
        target="", users=args.users, spawn_rate=args.spawn_rate or float(args.users), run_time=args.run_time,
        headless=args.headless, workers=args.workers, remote_workers=args.remote_workers, out=out.resolve(),
        locustfile=(args.locustfile or LOCUSTFILE).resolve(), locust_args=locust_args, file_host=args.file_host,
        file_bind=args.file_bind, file_port_base=args.file_port_base, master_bind=args.master_bind,
        master_port=master_port, web_host="127.0.0.1", web_port=args.web_port or free_port(),
        stop_timeout=args.stop_timeout, province=args.province)
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    try:
        if args.serve:
            with serve_sandbox(config_text, options.out) as served:
                options.target, options.province = served.center, served.province
                say(f"沙箱的共享中心 {served.center}，省级模块 {served.province}（日志 {served.log}）")
                summary = load(options, say, fresh=True)
        else:
            options.target = base_url(args.target)
            say(f"目标共享中心需要登记 {len(hospitals)} 家医疗机构并允许从 {'、'.join(fetch_hosts)} 取文件："
                f"见 {out / 'target.toml'}")
            summary = load(options, say, fresh=False)
    except (LoadError, PlanError) as exc:
        return fail(str(exc))
    (out / "sandbox-summary.json").write_text(json.dumps(summary.as_json(), ensure_ascii=False, indent=2) + "\n",
                                              encoding="utf-8")
    if args.json:
        print(json.dumps(summary.as_json(), ensure_ascii=False, indent=2))
    else:
        print_summary(summary, out)
    ok = (not summary.errors and summary.acknowledged > 0 and set(summary.flags) == {"1"}
          and (summary.e2e is None or summary.e2e["ok"]))
    return 0 if ok else 1


def load(o: Options, say: Any, *, fresh: bool) -> Summary:
    say(f"负载：{o.users} 个用户，{o.workers} 个本机负载进程" + (f" + {o.remote_workers} 个远程负载进程"
                                                      if o.remote_workers else "")
        + (f"，运行 {o.run_time}" if o.headless else "，在 Locust 网页中开始与停止（Ctrl-C 结束）"))
    if o.remote_workers:
        say(f"其他机器上的负载进程：locust -f {o.locustfile} --worker --master-host 本机地址 --master-port {o.master_port} "
            + " ".join(o.locust_args) + " --sandbox-file-host 该机地址")
    code = run_locust(o, say)
    if code not in (0, 1):
        raise LoadError(f"Locust 主控进程退出码 {code}，见 {o.out / 'locust-output.log'}")
    summary = read_summary(o)
    if o.province:
        summary.e2e = end_to_end(o.target, o.province, summary.indexes, fresh=fresh)
    return summary
