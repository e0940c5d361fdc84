"""The `dispatch` command line against the real database."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.support.server import ROOT


def dispatch_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatch.cli", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_db_upgrade_is_idempotent(store_env: dict[str, str]) -> None:
    result = dispatch_cli("db", "upgrade", env=store_env)
    assert result.returncode == 0, result.stderr
    assert "head" in result.stdout


def test_token_create_prints_a_working_token(store_env: dict[str, str], http: httpx.Client) -> None:
    result = dispatch_cli("token", "create", "--role", "admin", "--label", "cli-test", env=store_env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    r = http.post("/v1/tokens", json={"role": "planner", "label": "via-cli-token"},
                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 201


def test_token_create_rejects_unknown_role(store_env: dict[str, str]) -> None:
    result = dispatch_cli("token", "create", "--role", "emperor", "--label", "x", env=store_env)
    assert result.returncode != 0
    assert "role must be one of" in result.stderr
