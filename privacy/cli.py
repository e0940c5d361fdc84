"""`dispatch privacy …`: the retention job by hand (the workers also run it every
`position_retention_every_s`)."""

from __future__ import annotations

import asyncio

import typer

from core.config import get_settings

privacy_app = typer.Typer(
    help="Personal information: retention of responders' positions.", no_args_is_help=True
)


@privacy_app.command("retention")
def retention(
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would be erased; change nothing"),
    batch: int = typer.Option(1000, min=1, max=100_000, help="rows erased per transaction"),
) -> None:
    """Erase the positions kept in incident timelines past `position_retention_days`."""
    from core.db import Database
    from privacy.retention import erase_past_retention

    async def run() -> None:
        settings = get_settings()
        db = Database(settings.database_url, pool_size=1)
        try:
            report = await erase_past_retention(
                db, settings.position_retention_days, dry_run=dry_run, batch=batch
            )
        finally:
            await db.dispose()
        verb = "would be erased" if report.dry_run else "erased"
        print(
            f"positions older than {report.cutoff:%Y-%m-%d %H:%M:%S} UTC "
            f"({settings.position_retention_days:g} days) {verb}: "
            f"{report.alerts} alerts (where the responder accepted), {report.events} incident events"
        )

    asyncio.run(run())
