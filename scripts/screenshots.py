"""The README's pictures, taken from a running `make run` (the demo city, Shenzhen) with Debian's
Chromium: the console with a cardiac arrest opened next to a moving demo worker, that worker's
phone ringing, the planner's coverage of the programme's workforce on shift, and the planner's
Programme section (the last 30 days by district: the demo's duty hours and the incidents opened).

    make run    # in one terminal; it prints the tokens
    .venv/bin/python scripts/screenshots.py --dispatcher T1 --planner T2 --responder T3

Why a script and not a test: the pictures show the live demo (8,000 workers moving), which the
tests do not run; the pages themselves are tested in tests/browser (in both languages).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
DESK = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


def signed_in(browser: Browser, url: str, token: str, lang: str, viewport: dict[str, int]) -> Page:
    """A page of the given screen, signed in (the language as a browser of that locale chooses it)."""
    page = browser.new_context(viewport=viewport, locale=lang, timezone_id="Asia/Shanghai").new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.locator("#token").fill(token)
    page.locator("#signin button[type=submit]").click()
    expect(page.locator("#who")).to_be_visible()
    return page


def where_is(url: str, dispatcher: str, responder: str) -> tuple[float, float]:
    """The demo worker's live position, as the dispatcher's map has it."""
    with httpx.Client(base_url=url, timeout=30) as http:
        me = http.get("/v1/web/session", headers={"Authorization": f"Bearer {responder}"}).json()
        live = http.get("/v1/responders/live", headers={"Authorization": f"Bearer {dispatcher}"}).json()
    (lng, lat), *_ = [
        f["geometry"]["coordinates"] for f in live["features"] if f["properties"]["id"] == me["responder_id"]
    ]
    return lat, lng


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--dispatcher", required=True)
    parser.add_argument("--planner", required=True)
    parser.add_argument("--responder", required=True)
    parser.add_argument("--lang", default="zh-CN")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        phone = signed_in(browser, f"{args.url}/responder", args.responder, args.lang, PHONE)
        desk = signed_in(browser, f"{args.url}/", args.dispatcher, args.lang, DESK)
        lat, lng = where_is(args.url, args.dispatcher, args.responder)
        north = lat + 120 / 111_195.0  # the patient 120 m north of the worker
        desk.locator("#lat").fill(f"{north:.6f}")
        desk.locator("#lng").fill(f"{lng + 60 / (111_195.0 * math.cos(math.radians(lat))):.6f}")
        desk.locator("#open-incident").click()
        expect(desk.locator("#incident")).to_be_visible()
        expect(phone.locator("#alert")).to_be_visible(timeout=60_000)
        time.sleep(3)  # the map settles, the alerts table fills
        desk.screenshot(path=str(args.out / "console.png"))
        phone.screenshot(path=str(args.out / "responder.png"), full_page=False)
        desk.once("dialog", lambda d: d.accept())
        desk.locator("#close-incident").click()

        planner = signed_in(browser, f"{args.url}/planner", args.planner, args.lang, DESK)
        planner.locator("#resolution").select_option("8")
        planner.locator("#source").select_option("shift")
        planner.locator("#run-coverage").click()
        expect(planner.locator("#summary table").first).to_be_visible(timeout=300_000)
        time.sleep(2)
        planner.screenshot(path=str(args.out / "planner.png"))
        programme = planner.locator("#programme")  # the last 30 days by district, under the map
        expect(programme).to_have_attribute("data-state", "shown")
        programme.screenshot(path=str(args.out / "programme.png"))
        browser.close()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
