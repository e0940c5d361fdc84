"""The `dispatch` command line: serving, the database, tokens (and, from the domains, more)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from aed_registry.cli import aed_app
from core.config import get_settings
from privacy.cli import privacy_app
from simulator.cli import sim

app = typer.Typer(
    help="5-minute rescue circle: administration, imports and simulation.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(aed_app, name="aed")
app.add_typer(sim, name="sim")
app.add_typer(privacy_app, name="privacy")
console = Console()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8000, envvar="PORT", help="port to listen on"),
    workers: int = typer.Option(1, help="uvicorn worker processes"),
) -> None:
    """Serve the HTTP and websocket API."""
    import uvicorn

    uvicorn.run(
        "dispatch.app:create_app", factory=True, host=host, port=port, workers=workers, log_config=None
    )


@app.command()
def run(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8000, envvar="PORT", help="port to listen on"),
    workers: int = typer.Option(1, envvar="WORKERS", help="uvicorn worker processes"),
    demo: bool = typer.Option(True, "--demo/--no-demo", envvar="DEMO", help="load and animate the demo city"),
    seed: int = typer.Option(0, envvar="DEMO_SEED", help="the demo city's seed"),
    stores_env: str = typer.Option("run", envvar="STORES_ENV", help="scripts/stores.sh environment"),
    watch_pid: int = typer.Option(0, envvar="WATCH_PID", help="stop everything when this process ends"),
) -> None:
    """`make run`: start the stores, migrate, (demo), serve; restart what dies; stop it all together."""
    import logging

    from dispatch.run import RunOptions
    from dispatch.run import run as run_all

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the start-up block's requests: not news
    options = RunOptions(host, port, workers, demo, seed, stores_env, watch_pid or None)
    raise typer.Exit(code=run_all(options))


def _alembic_config():  # type: ignore[no-untyped-def]
    from pathlib import Path

    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    return cfg


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from alembic import command

    command.upgrade(_alembic_config(), revision)
    console.print(f"[green]database at {revision}[/green]")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="target revision, e.g. base or -1")) -> None:
    """Roll migrations back to REVISION."""
    from alembic import command

    command.downgrade(_alembic_config(), revision)
    console.print(f"[yellow]database at {revision}[/yellow]")


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., help="admin, dispatcher, planner or gateway"),
    label: str = typer.Option(..., help="who holds it"),
) -> None:
    """Issue a token and print it once."""
    from core.auth import Role, issue_token
    from core.db import Database

    async def run() -> str:
        db = Database(get_settings().database_url, pool_size=1)
        try:
            async with db.sessions() as session:
                _, plain = await issue_token(session, Role(role), label)
                await session.commit()
                return plain
        finally:
            await db.dispose()

    try:
        Role(role)
    except ValueError as exc:
        raise typer.BadParameter(f"role must be one of {[r.value for r in Role]}") from exc
    print(asyncio.run(run()))


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id."""
    import uuid

    from core.auth import revoke_token, take_revoked
    from core.db import Database
    from core.redis import Keys, connect_configured
    from core.revocation import announce_revoked

    async def run() -> bool:
        settings = get_settings()
        db = Database(settings.database_url, pool_size=1)
        redis = connect_configured(settings, max_connections=1)
        try:
            async with db.sessions() as session:
                ok = await revoke_token(session, uuid.UUID(token_id))
                await session.commit()
            # the running workers close the token's sockets now (else at their next re-check)
            await announce_revoked(redis, Keys(settings.redis_prefix), take_revoked(session))
            return ok
        finally:
            await redis.aclose()
            await db.dispose()

    if not asyncio.run(run()):
        raise typer.Exit(code=1)
    console.print("revoked")


if __name__ == "__main__":
    app()
