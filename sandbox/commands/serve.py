"""`sandbox serve`: the hospital, the sharing center and the provincial index module in one process.

Configuration: defaults ← `--config FILE` (TOML) ← flags. A role given an external URL (`--center-url`,
`--province-url`) is not started here; the emulated senders post to that URL instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sandbox.app import ROLES, SandboxError
from sandbox.common.logs import setup_logging
from sandbox.common.loop import run as run_loop
from sandbox.config import load_settings
from sandbox.spec.formats import china_now
from sandbox.spec.index_profiles import PROFILES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="在一个进程中运行三个角色 / run the whole chain in one process",
                       description="启动医疗机构、地方影像云数据共享中心、医保影像云索引共享模块（各自端口、文档路径）。")
    p.add_argument("--config", type=Path, help="TOML 配置文件（机构与密钥、端口、模式等）")
    p.add_argument("--roles", help=f"只启动这些角色，逗号分隔（默认 {','.join(ROLES)}）")
    p.add_argument("--center-url", help="外部共享中心的地址：不在本进程启动共享中心，医疗机构发往此地址")
    p.add_argument("--province-url", help="外部省级模块的地址：不在本进程启动省级模块，共享中心转发到此地址")
    p.add_argument("--public-base-url", help="第二跳三个链接的前缀（默认共享中心自身地址）")
    p.add_argument("--host", help="监听地址（默认 127.0.0.1；非回环地址需要 --allow-remote）")
    p.add_argument("--allow-remote", action="store_true", default=None,
                   help="允许监听非回环地址（如 0.0.0.0）：启用控制令牌 X-Sandbox-Token，令牌打印在启动横幅中")
    p.add_argument("--hospital-port", type=int, help="医疗机构端口（默认 8700）")
    p.add_argument("--center-port", type=int, help="共享中心端口（默认 8701）")
    p.add_argument("--province-port", type=int, help="省级模块端口（默认 8702）")
    p.add_argument("--dicom-port", type=int, help="共享中心 DICOM 端口（C-ECHO/C-STORE/C-FIND/C-GET/C-MOVE/存储确认，默认 11112）")
    p.add_argument("--dicom-ae-title", help="共享中心的 AE 标题（默认 IMGCLOUD；被叫 AE 标题不符的关联被拒绝）")
    p.add_argument("--dicom-calling-aet", action="append", metavar="AE",
                   help="只接受这些主叫 AE 标题的关联（可重复；默认接受任何主叫）")
    p.add_argument("--dicom-destination", action="append", metavar="AE=HOST:PORT",
                   help="C-MOVE 目的地与存储确认回报地址（可重复），例如 STORESCP=127.0.0.1:11113")
    p.add_argument("--dashboard-port", type=int, help="培训看板端口（默认 8703）")
    p.add_argument("--no-dashboard", action="store_true", help="不启动培训看板")
    p.add_argument("--data-dir", type=Path, help="数据目录（默认 ./data）")
    p.add_argument("--seed", type=int, help="随机种子")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--strict", action="store_const", const="strict", dest="mode", help="严格模式")
    mode.add_argument("--lenient", action="store_const", const="lenient", dest="mode", help="宽松模式（默认）")
    p.add_argument("--response-style", choices=("per-record", "summary"), help="逐条应答或文档示例的汇总应答")
    p.add_argument("--index-profile", choices=sorted(PROFILES), help="索引号编码规则")
    p.add_argument("--allow-fetch-host", action="append", metavar="HOST:PORT",
                   help="共享中心允许取文件的主机与端口（可重复；HOST:* 任意端口；给出后替换默认的医疗机构文件服务 hospital_port）")
    p.add_argument("--scenario", help="启动后加载场景库中的这个场景（其配置与故障）")
    p.add_argument("--demo", action="store_true", help="演示：医疗机构持续少量上传合成检查")
    p.add_argument("--demo-interval", type=float, default=5.0, help="演示每批间隔秒数（默认 5）")
    p.add_argument("--demo-batch", type=int, default=3, help="演示每批检查数（默认 3）")
    p.set_defaults(func=run)


def roles_of(args: argparse.Namespace) -> tuple[str, ...]:
    if args.roles:
        wanted = [r.strip() for r in args.roles.split(",") if r.strip()]
        unknown = [r for r in wanted if r not in ROLES]
        if unknown:
            raise SandboxError(f"未知的角色：{'、'.join(unknown)}；可选：{'、'.join(ROLES)}")
        if args.center_url and "center" in wanted:
            raise SandboxError("给了 --center-url 就不能同时在本进程启动 center")
        if args.province_url and "province" in wanted:
            raise SandboxError("给了 --province-url 就不能同时在本进程启动 province")
    else:
        wanted = list(ROLES)
        if args.center_url:
            wanted.remove("center")
        if args.province_url:
            wanted.remove("province")
    if not wanted:
        raise SandboxError("没有要启动的角色")
    return tuple(r for r in ROLES if r in wanted)


def run(args: argparse.Namespace) -> int:
    from sandbox.serve import ServeOptions, serve

    overrides: dict[str, Any] = {
        "center_url": args.center_url, "province_url": args.province_url, "public_base_url": args.public_base_url,
        "host": args.host, "allow_remote": args.allow_remote, "hospital_port": args.hospital_port, "center_port": args.center_port,
        "province_port": args.province_port, "dicom_port": args.dicom_port, "data_dir": args.data_dir,
        "dashboard_port": args.dashboard_port,
        "seed": args.seed, "mode": args.mode, "response_style": args.response_style,
        "index_profile": args.index_profile,
        "allowed_fetch_hosts": tuple(args.allow_fetch_host) if args.allow_fetch_host else None,
        "dicom_ae_title": args.dicom_ae_title,
        "dicom_calling_aets": tuple(args.dicom_calling_aet) if args.dicom_calling_aet else None,
        "dicom_destinations": tuple(args.dicom_destination) if args.dicom_destination else None,
    }
    try:
        settings = load_settings(args.config, **overrides)
        if args.demo and settings.exam_base_date is None:
            # a demo's exams are dated today, so a trainer's quality report shows on-time uploads
            settings = settings.model_copy(update={"exam_base_date": china_now().date()})
        roles = roles_of(args)
        options = ServeOptions(roles=roles, demo=args.demo, demo_interval=args.demo_interval,
                               demo_batch=args.demo_batch, scenario=args.scenario, dashboard=not args.no_dashboard)
        setup_logging()
        return run_loop(serve(settings, options))
    except FileNotFoundError as exc:
        print(f"sandbox serve: 配置文件不存在：{exc.filename}", file=sys.stderr)
    except ValidationError as exc:
        problems = "；".join(f"{'.'.join(str(p) for p in e['loc'])}：{e['msg']}" for e in exc.errors())
        print(f"sandbox serve: 配置有误：{problems}", file=sys.stderr)
    except SandboxError as exc:
        print(f"sandbox serve: {exc}", file=sys.stderr)
    return 2
