"""The pages in Simplified Chinese and in English: the language comes from the browser, each page says
what it is (the ? help), a switch changes it and keeps the person signed in, the responder's alert
reads at a glance (category, distance, ETA) and so does its notification, the API's refusals are said
in the page's language, and times are Shenzhen's 24-hour clock even on a browser set to Berlin.

Expected words are read from the catalogues themselves, so the tests check that each page shows the
right message in the right place, not a second copy of the translation. One screenshot per page and
language (and its help) is kept in `test-artifacts/browser/<test>/`, and each page in each language
under a stable name in `test-artifacts/screenshots/<page>-<lang>.png`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from dispatch.web.router import STATIC_DIR
from tests.browser.conftest import DESK, PHONE, SCREENSHOTS, console_errors, sign_in_as
from tests.browser.test_app import deliver_push, notifications, pushed_payload, wait_for
from tests.browser.test_story import offset, remote_spot
from tests.support.people import on_duty_at, register

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LANGUAGES = ("zh-CN", "en")
CITY = ZoneInfo("Asia/Shanghai")  # the server's `timezone` (the default Settings)
ELSEWHERE = "Europe/Berlin"  # the browser's own zone: 6-7 hours off Shenzhen, so a slip shows
WORDS = {
    lang: json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES
}
PAGES = {"console": ("/", DESK), "responder": ("/responder", PHONE), "planner": ("/planner", DESK)}


def city_clock(iso: str) -> str:
    """An instant as the pages must show it: Shenzhen's wall clock, 24-hour."""
    return datetime.fromisoformat(iso).astimezone(CITY).strftime("%H:%M:%S")


def token_of(screen: str, http: httpx.Client, admin_headers: dict[str, str], token_for) -> str:  # type: ignore[no-untyped-def]
    if screen == "responder":
        return register(http, admin_headers, name="Chen Jing")["token"]
    role = "dispatcher" if screen == "console" else "planner"
    return token_for(role)["Authorization"].removeprefix("Bearer ")


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("screen", list(PAGES))
def test_each_page_speaks_the_browsers_language_and_says_what_it_shows(
    live_server, http, admin_headers, token_for, new_context, shot, screen: str, lang: str
) -> None:
    path, viewport = PAGES[screen]
    words = WORDS[lang]
    page = new_context(viewport=viewport, locale=lang, timezone_id=ELSEWHERE).new_page()
    errors = console_errors(page)
    page.goto(live_server.url + path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page).to_have_title(words[f"{screen}.title"])
    expect(page.locator("h1")).to_have_text(words[f"{screen}.heading"])
    expect(page.locator(f'.lang-switch button[data-lang="{lang}"]')).to_have_attribute("aria-pressed", "true")
    sign_in_as(page, words, screen, token_of(screen, http, admin_headers, token_for))
    if screen != "responder":  # the picture once the districts are drawn and the map has settled
        expect(page.locator("#map .leaflet-overlay-pane path").first).to_be_visible()
        expect(page.locator("#map .leaflet-zoom-anim")).to_have_count(0)
        page.wait_for_timeout(400)  # the last tiles' and outlines' fade-in (CSS, no event to wait on)
    shot(page, f"{screen}-{lang}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{screen}-{lang}.png"), full_page=True)

    help_panel = page.locator("#help")
    expect(help_panel).to_be_hidden()
    page.get_by_role("button", name=words["help.open"]).click()
    lines = words[f"help.{screen}"].split("\n")
    assert 3 <= len(lines) <= 6
    expect(help_panel.locator("li")).to_have_text(lines)
    shot(page, f"{screen}-{lang}-help")
    help_panel.get_by_role("button", name=words["help.close"]).click()
    expect(help_panel).to_be_hidden()
    assert errors == []


def test_the_switch_changes_the_language_and_keeps_the_person_signed_in(
    live_server, token_for, new_context
) -> None:
    context = new_context(locale="en-GB")
    page = context.new_page()
    page.goto(live_server.url + "/")
    sign_in_as(page, WORDS["en"], "console", token_for("dispatcher")["Authorization"].removeprefix("Bearer "))
    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text(WORDS["zh-CN"]["console.heading"])
    expect(page.locator("#who")).to_be_visible()  # the token survived the reload
    expect(page.locator("#live")).to_have_text(WORDS["zh-CN"]["live.on"])
    other = context.new_page()  # the choice holds for the other pages of this browser
    other.goto(live_server.url + "/planner")
    expect(other.locator("h1")).to_have_text(WORDS["zh-CN"]["planner.heading"])
    other.get_by_role("button", name="English").click()
    expect(other.locator("h1")).to_have_text(WORDS["en"]["planner.heading"])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_alert_reads_at_a_glance_and_times_are_shenzhens_24_hour_clock(
    live_server, http, admin_headers, token_for, new_context, shot, lang: str
) -> None:
    words = WORDS[lang]
    lat, lng = remote_spot()
    person = on_duty_at(
        http, admin_headers, *offset(lat, lng, -120, 80), name="Wang Fang", category="city_inspector"
    )
    phone = new_context(viewport=PHONE, is_mobile=True, locale=lang, timezone_id=ELSEWHERE).new_page()
    phone.goto(f"{live_server.url}/responder")
    sign_in_as(phone, words, "responder", person["token"])
    expect(phone.locator("#connection")).to_have_text(words["connection.online"])
    expect(phone.locator("#who")).to_contain_text(words["responder_category.city_inspector"])

    desk = new_context(locale=lang, timezone_id=ELSEWHERE).new_page()
    desk.goto(live_server.url + "/")
    sign_in_as(desk, words, "console", token_for("dispatcher")["Authorization"].removeprefix("Bearer "))
    expect(desk.locator("#live")).to_have_text(words["live.on"])
    desk.get_by_label(words["field.lat"], exact=True).fill(f"{lat:.7f}")
    desk.get_by_label(words["field.lng"], exact=True).fill(f"{lng:.7f}")
    desk.get_by_label(words["field.category"], exact=True).select_option("cardiac_arrest")
    address = f"Lianhua Road {remote_spot()[0]:.4f}"
    desk.get_by_label(words["field.address"], exact=True).fill(address)
    desk.get_by_role("button", name=words["console.open_incident"]).click()
    row = desk.locator("#alerts tr", has_text="Wang Fang")
    expect(row).to_be_visible()

    # the phone: what, how far, how long — in the person's language
    expect(phone.locator("#alert")).to_be_visible()
    title = phone.locator("#alert-title")
    expect(title).to_contain_text(words["category.cardiac_arrest"])
    metres = words["unit.m"].replace("{n}", "")
    expect(title).to_contain_text(re.compile(rf"\d{re.escape(metres)}"))  # "144 米" / "144 m"
    eta = "|".join(
        re.escape(words[k]).replace(r"\{min\}", r"\d+").replace(r"\{s\}", r"\d+")
        for k in ("unit.min_s", "unit.s")
    )
    expect(phone.locator("#alert-facts")).to_contain_text(re.compile(eta))  # "1 分 43 秒"
    expect(phone.locator("#alert-role")).to_have_text(words["task.cpr"])
    shot(phone, f"alert-{lang}")

    # the desk: the opening time on Shenzhen's clock, not Berlin's, 24-hour
    [incident] = [i for i in http.get("/v1/incidents?status=open", headers=token_for("dispatcher")).json()
                  if i.get("address") == address]  # fmt: skip
    shown = city_clock(incident["created_at"])
    berlin = (
        datetime.fromisoformat(incident["created_at"]).astimezone(ZoneInfo(ELSEWHERE)).strftime("%H:%M:%S")
    )
    summary = desk.locator("#incident-summary")
    expect(summary).to_contain_text(shown)
    expect(summary).to_contain_text(words["category.cardiac_arrest"])
    assert berlin not in summary.inner_text() and not re.search(r"\b(AM|PM)\b", summary.inner_text())
    expect(desk.locator("#open-list")).to_contain_text(shown)
    expect(row.locator("td").nth(3)).to_contain_text(metres.strip())

    phone.get_by_role("button", name=words["alert.accept"]).click()
    expect(phone.locator("#mission-title")).to_have_text(words["mission.role_cpr"])
    expect(phone.locator("#mission-where")).to_have_text(address)
    expect(row.locator("td").nth(4)).to_have_text(words["alert_status.accepted"])
    expect(desk.locator("#events li").last).to_contain_text(re.compile(r"^\d\d:\d\d:\d\d "))
    shot(phone, f"accepted-{lang}")
    shot(desk, f"console-incident-{lang}")
    desk.get_by_role("button", name=words["console.close_incident"]).click()
    expect(summary).to_contain_text(words["incident_status.closed"])


def test_common_refusals_are_said_in_chinese_with_the_field_named(
    live_server, token_for, new_context
) -> None:
    words = WORDS["zh-CN"]
    phone = new_context(viewport=PHONE, locale="zh-CN").new_page()
    phone.goto(f"{live_server.url}/responder")
    phone.get_by_label(words["responder.token"]).fill("not-a-real-token")
    phone.get_by_role("button", name=words["signin.button"], exact=True).click()
    expect(phone.locator("#error")).to_have_text(
        "令牌无效或已撤销，请重新登录（401：invalid or revoked token）"
    )

    desk = new_context(locale="zh-CN").new_page()
    desk.goto(live_server.url + "/")
    sign_in_as(desk, words, "console", token_for("dispatcher")["Authorization"].removeprefix("Bearer "))
    desk.get_by_label(words["field.lat"], exact=True).fill("95")
    desk.get_by_label(words["field.lng"], exact=True).fill("114.05")
    desk.get_by_role("button", name=words["console.open_incident"]).click()
    expect(desk.locator("#error")).to_have_text(re.compile(r"^输入有误（422）：纬度: .*90"))


def test_the_notification_speaks_the_language_of_the_page(
    live_server, http: httpx.Client, admin_headers, token_for, new_context
) -> None:
    words = WORDS["zh-CN"]
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, lat + 0.002, lng, name="Sun Li")
    context = new_context(viewport=PHONE, locale="zh-CN")
    context.grant_permissions(["notifications"], origin=live_server.url)
    phone = context.new_page()
    phone.goto(f"{live_server.url}/responder")
    sign_in_as(phone, words, "responder", person["token"])
    wait_for(lambda: phone.evaluate("!!navigator.serviceWorker.controller"), "the worker in control")
    phone.close()
    bystander = context.new_page()  # no /responder page open: the worker alone words the alert
    bystander.goto(f"{live_server.url}/healthz")
    opened = http.post(
        "/v1/incidents",
        json={"lat": lat, "lng": lng, "category": "cardiac_arrest"},
        headers=token_for("dispatcher"),
    )
    assert opened.status_code == 201, opened.text
    [alert] = [a for a in opened.json()["alerts"] if a["responder_id"] == person["id"]]
    deliver_push(
        bystander, live_server.url, pushed_payload(live_server.env["DATABASE_URL"], alert["alert_id"])
    )
    [shown] = wait_for(lambda: notifications(bystander, alert["alert_id"]), "the alert's notification")
    assert re.fullmatch(r"心脏骤停 — 距您 \d+ 米", shown["title"]), shown["title"]
    assert (
        shown["body"].startswith("约 ")
        and "分钟可到达" in shown["body"]
        and words["task.cpr"] in shown["body"]
    )
    assert shown["actions"] == [["accept", "接受"], ["decline", "拒绝"]]
