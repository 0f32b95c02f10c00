"""`sandbox generate`: write synthetic hop-1 messages, DICOM studies and PDF reports to a folder.

The same arguments give byte-identical output (see sandbox.synth.dataset for the layout).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sandbox.config import Institution, Settings, load_settings
from sandbox.spec.index_profiles import PROFILES
from sandbox.synth.exams import Exam, ExamFactory
from sandbox.synth.images import ImageSpec
from sandbox.synth.institutions import synth_center, synth_hospitals
from sandbox.synth.regions import REGIONS


class UsageError(Exception):
    """A command-line value that cannot be used; the text is the one-line Chinese reason."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="生成合成检查数据 / generate synthetic exams",
                       description="生成第一跳报文（data 不超过 40000 字符）、DICOM 影像和 PDF 报告；相同种子输出逐字节相同。")
    p.add_argument("--count", type=int, default=10, help="检查数量（默认 10）")
    p.add_argument("--seed", type=int, help="随机种子（默认取配置 seed）")
    p.add_argument("--out", type=Path, required=True, help="输出目录")
    p.add_argument("--config", type=Path, help="TOML 配置文件")
    p.add_argument("--institution", help="只用这家医疗机构（fixmedinsCode）；默认配置中的全部医疗机构轮流")
    p.add_argument("--region", choices=sorted(REGIONS), help="改用该医保区划的合成医疗机构与共享中心")
    p.add_argument("--hospitals", type=int, default=3, help="--region 时的医疗机构数量（默认 3）")
    p.add_argument("--file-url", "--base-url", dest="base_url", metavar="URL",
                   help="写入记录的文件链接（examRpotPdfI、imgInfoDcm）的前缀，如提供这些文件的服务器地址"
                        "（默认 http://host:hospital_port）")
    p.add_argument("--index-profile", choices=sorted(PROFILES), help="索引号编码规则（默认取配置）")
    p.add_argument("--no-dicom", action="store_true", help="不生成 DICOM 文件")
    p.add_argument("--no-pdf", action="store_true", help="不生成 PDF 报告")
    p.add_argument("--slices", type=int, default=20, help="CT/MR 每序列层数（默认 20）")
    p.add_argument("--matrix", type=int, default=256, help="CT/MR 图像矩阵（默认 256）")
    p.add_argument("--cid-font", action="store_true", help="PDF 用 STSong-Light CID 字体（不嵌入字体）")
    p.set_defaults(func=run)


def factories(settings: Settings, seed: int, institution: str | None, region: str | None,
              hospitals: int) -> list[ExamFactory]:
    """One exam factory per sending hospital."""
    if region:
        insts: tuple[Institution, ...] = synth_hospitals(region, hospitals, seed)
        center = synth_center(region, seed)
    else:
        insts, center = settings.hospitals, settings.center
    if institution:
        insts = tuple(i for i in insts if i.code == institution)
        if not insts:
            raise UsageError(f"没有编号为 {institution} 的医疗机构")
    if not insts:
        raise UsageError("配置中没有医疗机构（role=hospital）")
    return [ExamFactory(i, center.uscc, seed, index_profile=settings.index_profile) for i in insts]


def run(args: argparse.Namespace) -> int:
    from sandbox.synth.dataset import generate_dataset  # pydicom, numpy and reportlab: only for this command

    err = Console(stderr=True, highlight=False)
    try:
        if args.count < 1:
            raise UsageError("--count 至少为 1")
        if not 1 <= args.slices <= 500 or not 16 <= args.matrix <= 1024:
            raise UsageError("--slices 应在 1–500，--matrix 应在 16–1024")
        settings = load_settings(args.config, seed=args.seed, index_profile=args.index_profile)
        seed = settings.seed
        facs = factories(settings, seed, args.institution, args.region, args.hospitals)
    except (UsageError, OSError, ValueError) as exc:
        err.print(f"sandbox generate: {exc}")
        return 2
    spec = ImageSpec(slices=args.slices, matrix=args.matrix)
    base_url = args.base_url or settings.url(settings.hospital_port)
    progress = Progress(TextColumn("生成检查"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        TextColumn("{task.description}"), console=err, transient=not err.is_terminal)
    with progress:
        task = progress.add_task("", total=args.count)

        def step(exam: Exam) -> None:
            progress.update(task, advance=1, description=f"{exam.modality} {exam.item_name}")

        summary = generate_dataset(facs, args.count, args.out, base_url=base_url, dicom=not args.no_dicom,
                                   pdf=not args.no_pdf, spec=spec, embedded_font=not args.cid_font, progress=step)
    out = Console(highlight=False)
    table = Table(title=f"已生成到 {args.out}（种子 {seed}，索引号规则 {settings.index_profile}）")
    table.add_column("项目")
    table.add_column("数量", justify="right")
    table.add_row("检查", str(summary.exams))
    table.add_row("第一跳报文", str(summary.messages))
    table.add_row("DICOM 文件", f"{summary.dicom_files}（{summary.dicom_bytes / 2**20:.1f} MB）")
    table.add_row("PDF 报告", f"{summary.pdf_files}（{summary.pdf_bytes / 2**20:.1f} MB）")
    for modality, n in sorted(summary.modalities.items()):
        table.add_row(f"  {modality}", str(n))
    out.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace()))
