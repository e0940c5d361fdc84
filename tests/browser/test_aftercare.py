"""After the alarm in the browser (issue 22): the dispatcher records a closed incident's outcome in
the console; the responder's phone asks its debrief when the incident ends; a coordinator sees the
follow-up on /coordinator and marks it done.

Incidents and acceptances are seeded through the real API; the pages talk to the real server.
"""

from __future__ import annotations

import secrets

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, console_errors
from tests.browser.test_story import console_signed_in, offset, remote_spot, sign_in
from tests.support.people import bearer, on_duty_at

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def accepted_incident(http: httpx.Client, admin: dict[str, str], desk: dict[str, str], **person: str) -> dict:
    """An open incident whose alert a responder on duty beside it has accepted (over HTTP)."""
    lat, lng = remote_spot()
    responder = on_duty_at(http, admin, lat, lng, **person)
    body = {"lat": offset(lat, lng, 90, 0)[0], "lng": lng, "category": "cardiac_arrest"}
    r = http.post("/v1/incidents", json={**body, "address": f"Gate of {person['name']}"}, headers=desk)
    assert r.status_code == 201, r.text
    incident = r.json()
    alert_id = next(a["alert_id"] for a in incident["alerts"] if a["responder_id"] == responder["id"])
    r = http.post(
        f"/v1/alerts/{alert_id}/answer", json={"response": "accept"}, headers=bearer(responder["token"])
    )
    assert r.status_code == 200, r.text
    return {"incident": incident, "alert_id": alert_id, "responder": responder}


def choose(page: Page, label: str, option: str) -> None:
    page.locator("#outcome").get_by_label(label, exact=True).select_option(label=option)


def test_dispatcher_records_the_outcome_of_a_closed_incident(
    live_server, http, admin_headers, token_for, new_context, shot
) -> None:
    desk_headers = token_for("dispatcher", "desk 7")
    name = f"Zhou Lan {secrets.token_hex(3)}"
    story = accepted_incident(http, admin_headers, desk_headers, name=name)
    incident_id = story["incident"]["id"]
    desk = new_context().new_page()
    errors = console_errors(desk)
    console_signed_in(desk, live_server.url, desk_headers["Authorization"].removeprefix("Bearer "))
    desk.locator("#open-list").get_by_role("button", name=f"Gate of {name}").click()
    expect(desk.locator("#outcome")).to_be_hidden()  # open: nothing to record yet
    desk.get_by_role("button", name="Close incident").click()
    outcome = desk.locator("#outcome")
    expect(outcome).to_be_visible()
    expect(outcome.locator("#outcome-recorded")).to_contain_text("No outcome recorded yet")

    choose(desk, "Collapse seen by", "a bystander")
    choose(desk, "CPR by bystanders before our responders", "yes")
    choose(desk, "AED pads attached", "no")
    choose(desk, "Shock delivered", "yes")  # contradicts the pads: refused, naming the field
    desk.get_by_role("button", name="Save outcome").click()
    expect(desk.locator("#error")).to_contain_text("shock_delivered: true needs aed_attached not false")
    assert http.get(f"/v1/incidents/{incident_id}/outcome", headers=desk_headers).status_code == 404

    choose(desk, "AED pads attached", "yes")
    choose(desk, "Any return of circulation (ROSC)", "yes")
    choose(desk, "Alive at hospital admission", "yes")
    outcome.get_by_label("Note").fill("pads on at the fountain")
    desk.get_by_role("button", name="Save outcome").click()
    expect(desk.locator("#status")).to_have_text("Outcome saved.")
    expect(desk.locator("#error")).to_have_text("")  # the refusal is gone
    expect(outcome.locator('dd[data-field="rosc"]')).to_have_text("yes")
    expect(outcome.locator('dd[data-field="survived_discharge"]')).to_have_text("not known")
    expect(outcome.locator("#outcome-recorded")).to_contain_text("dispatcher:desk 7")
    shot(desk, "outcome-recorded")
    stored = http.get(f"/v1/incidents/{incident_id}/outcome", headers=desk_headers).json()
    assert {
        k: stored[k] for k in ("witnessed", "bystander_cpr", "aed_attached", "shock_delivered", "rosc")
    } == {
        "witnessed": "bystander",
        "bystander_cpr": True,
        "aed_attached": True,
        "shock_delivered": True,
        "rosc": True,
    }
    assert stored["survived_admission"] is True and stored["survived_discharge"] is None
    assert stored["note"] == "pads on at the fountain"

    # later, on a fresh console: the incident is among the recently closed, its outcome in the form
    desk.reload()
    expect(desk.locator("#live")).to_have_text("Live feed: on")
    desk.locator("#closed-list").get_by_role("button", name=f"Gate of {name}").click()
    expect(outcome.locator('dd[data-field="witnessed"]')).to_have_text("a bystander")
    expect(outcome.get_by_label("Collapse seen by", exact=True)).to_have_value("bystander")
    expect(outcome.get_by_label("Note")).to_have_value("pads on at the fountain")
    shot(desk, "outcome-shown-later")
    assert errors == []


def test_debrief_on_the_phone_then_the_coordinator_follows_up(
    live_server, http, admin_headers, token_for, new_context, shot
) -> None:
    desk_headers = token_for("dispatcher")
    coordinator = token_for("coordinator", "Ms Chen")["Authorization"].removeprefix("Bearer ")
    name = f"Huang Lei {secrets.token_hex(3)}"  # the database is shared with earlier runs
    story = accepted_incident(
        http,
        admin_headers,
        desk_headers,
        name=name,
        phone="13900139000",
        team="shenzhen/nanshan/yuehai",
    )
    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    phone_errors = console_errors(phone)
    phone.goto(f"{live_server.url}/responder")
    sign_in(phone, story["responder"]["token"])
    expect(phone.locator("#connection")).to_have_text("Online")
    expect(phone.locator("#mission")).to_be_visible()  # the accepted incident, on the way
    expect(phone.locator("#debrief")).to_be_hidden()

    r = http.post(f"/v1/incidents/{story['incident']['id']}/close", json={}, headers=desk_headers)
    assert r.status_code == 200, r.text
    card = phone.locator("#debrief")
    expect(card).to_be_visible()  # asked at the `cancel`
    expect(card.get_by_role("heading")).to_have_text("How are you after the rescue?")
    expect(card).to_contain_text("Thank you for going to help (cardiac arrest")
    shot(phone, "debrief-asked")
    card.get_by_role("button", name="Send").click()
    expect(phone.locator("#error")).to_have_text("Please choose how it went for you.")
    card.get_by_label("It was hard").check()
    card.get_by_label("I would like to talk to someone about it").check()
    card.get_by_label("Anything you would like to tell us (optional)").fill("I keep thinking about it")
    card.get_by_role("button", name="Send").click()
    expect(phone.locator("#status")).to_have_text(
        "Thank you. A programme coordinator will get in touch with you soon."
    )
    expect(card).to_be_hidden()
    expect(phone.locator("#error")).to_have_text("")
    shot(phone, "debrief-sent")

    office = new_context().new_page()
    office_errors = console_errors(office)
    office.goto(f"{live_server.url}/coordinator")
    sign_in(office, coordinator)
    row = office.locator("#rows tr", has_text=name)
    expect(row).to_contain_text("13900139000")
    expect(row).to_contain_text("shenzhen/nanshan/yuehai")
    expect(row).to_contain_text("would like to talk")
    expect(row).to_contain_text("I keep thinking about it")
    shot(office, "follow-ups-open")
    row.get_by_label("What was done").fill("Called him; talk with the psychologist booked")
    row.get_by_role("button", name="Mark done").click()
    expect(office.locator("#status")).to_have_text(f"Follow-up with {name} marked done.")
    expect(row).to_have_count(0)
    office.get_by_label("Show").select_option("done")
    done = office.locator("#rows tr", has_text=name)
    expect(done).to_contain_text("Done by coordinator:Ms Chen")
    expect(done).to_contain_text("Called him; talk with the psychologist booked")
    shot(office, "follow-ups-done")
    assert phone_errors == [] and office_errors == []


def test_the_coordinator_page_in_chinese(live_server, token_for, new_context) -> None:
    page = new_context(locale="zh-CN").new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/coordinator")
    expect(page.locator("h1")).to_have_text("5分钟救援圈 — 急救员回访跟进")
    page.get_by_label("协调员令牌").fill(token_for("coordinator")["Authorization"].removeprefix("Bearer "))
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#who")).to_be_visible()
    page.locator("#help-button").click()
    expect(page.locator("#help")).to_contain_text("回访")
    assert errors == []
