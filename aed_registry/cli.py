"""`dispatch aed …`: bulk imports straight into the database, through the same service as the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aed_registry.importers import ColumnMapping, ImportFileError, ImportReport, parse_csv, parse_geojson
from aed_registry.schemas import ImportFormat
from geo.crs import Crs

aed_app = typer.Typer(help="AED registry.", no_args_is_help=True)
console = Console(stderr=True)


@aed_app.command("import")
def import_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or GeoJSON file"),
    format: ImportFormat | None = typer.Option(None, help="csv or geojson (default: from the extension)"),
    crs: Crs = typer.Option(Crs.wgs84, help="datum of the file's coordinates"),
    map: list[str] = typer.Option([], "--map", help="field:Column, repeatable (e.g. --map 'name:Site Name')"),
    delimiter: str = typer.Option(",", help="CSV delimiter"),
    source: str | None = typer.Option(None, help="stored on rows that name no source"),
    show_errors: int = typer.Option(20, help="how many bad rows to list"),
) -> None:
    """Import (upsert) AEDs from FILE; bad rows are listed by line, good rows are kept."""
    fmt = format or (
        ImportFormat.geojson if file.suffix.lower() in (".json", ".geojson") else ImportFormat.csv
    )
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    columns = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    try:
        with columns as progress:
            report = _parse(text, fmt, crs, map, delimiter, progress)
            task = progress.add_task("writing", total=len(report.records))
            report = asyncio.run(_write(report, source, lambda n: progress.update(task, completed=n)))
            progress.update(task, completed=len(report.records))
    except ImportFileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=2) from exc
    _summary(report, show_errors)


def _parse(
    text: str, fmt: ImportFormat, crs: Crs, items: list[str], delimiter: str, progress: Progress
) -> ImportReport:
    if fmt is ImportFormat.geojson:
        progress.add_task("reading", total=None)
        return parse_geojson(text, crs=crs)
    task = progress.add_task("reading", total=max(text.count("\n"), 1))
    mapping = ColumnMapping.parse(items)
    report = parse_csv(
        text, crs=crs, mapping=mapping, delimiter=delimiter,
        on_row=lambda n: progress.update(task, completed=n) if n % 500 == 0 else None,
    )  # fmt: skip
    progress.update(task, completed=report.rows, total=report.rows)
    return report


async def _write(report: ImportReport, source: str | None, on_written: Callable[[int], None]) -> ImportReport:
    from aed_registry.service import import_records
    from core.config import get_settings
    from core.db import Database

    db = Database(get_settings().database_url, pool_size=1)
    try:
        async with db.sessions() as session:
            done = await import_records(
                session, report, "cli:dispatch aed import", source=source, on_progress=on_written
            )
            await session.commit()
            return done
    finally:
        await db.dispose()


def _summary(report: ImportReport, show_errors: int) -> None:
    out = Console()
    out.print(
        f"rows {report.rows}: created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, bad {len(report.errors)}, duplicates {len(report.duplicates)}, "
        f"hours unknown {len(report.hours_flagged)}"
    )
    if report.errors and show_errors > 0:
        table = Table("line", "field", "rule", title="bad rows (left out)")
        for e in report.errors[:show_errors]:
            table.add_row(str(e.line), e.field, e.rule)
        out.print(table)
