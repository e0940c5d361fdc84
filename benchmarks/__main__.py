"""Run the benchmarks and write docs/BENCHMARKS.md (`make bench`, or `python -m benchmarks geo`)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "BENCHMARKS.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return (
        f"- Machine: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}\n"
        f"- Python {platform.python_version()}; commit {commit.stdout.strip() or '?'}; "
        f"run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        "- Command: `make bench` runs them all; `python -m benchmarks NAME …` re-runs some"
        f" (last: `{' '.join(sys.argv[1:]) or 'all'}`); each section names the run that wrote it\n"
        "- The machines are shared and noisy: compare ratios within one run, not numbers across runs."
    )


def provenance(name: str) -> str:
    """Under each section: which run wrote it (sections re-run alone keep the others' lines)."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return (
        f"Section written by `python -m benchmarks {name}` at commit {commit.stdout.strip() or '?'},"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
    )


def _written_sections() -> dict[str, str]:
    """The sections already in docs/BENCHMARKS.md, kept when only some benchmarks are re-run."""
    sections: dict[str, str] = {}
    if not OUT.exists():
        return sections
    current: list[str] = []
    title = None
    for line in OUT.read_text().splitlines():
        if line.startswith("<!-- bench:"):
            title = line.split(":", 1)[1].strip(" ->")
            current = []
        elif line.startswith("<!-- /bench") and title:
            sections[title] = "\n".join(current)
            title = None
        elif title:
            current.append(line)
    return sections


def main(names: list[str]) -> None:
    modules = pkgutil.iter_modules([str(Path(__file__).parent)])
    available = sorted(m.name.removeprefix("bench_") for m in modules if m.name.startswith("bench_"))
    chosen = names or available
    unknown = set(chosen) - set(available)
    if unknown:
        raise SystemExit(f"unknown benchmarks {sorted(unknown)}; available: {available}")
    fresh: dict[str, str] = {}
    for name in chosen:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.bench_{name}")
        fresh[name] = f"{module.run().strip()}\n\n_{provenance(name)}_"
        print(f"   done in {time.perf_counter() - t0:.1f} s", flush=True)
    # Re-read only now: another section may have been rewritten while these ran (shared checkout).
    sections = {**(_written_sections() if names else {}), **fresh}
    OUT.parent.mkdir(exist_ok=True)
    body = [f"# Benchmarks\n\n{machine()}\n"]
    for name in available:
        if name in sections:
            body.append(f"<!-- bench: {name} -->\n{sections[name]}\n<!-- /bench -->\n")
    OUT.write_text("\n".join(body))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
