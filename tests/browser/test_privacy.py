"""The responder app's "Your data": download my data, and delete my account after a confirmation
step, in both languages, against the real app (Debian's Chromium, headless)."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, console_errors, sign_in_as
from tests.browser.test_languages import WORDS
from tests.browser.test_story import remote_spot
from tests.support.people import bearer, on_duty_at

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_download_my_data_then_delete_my_account_after_confirming(
    live_server, http: httpx.Client, admin_headers: dict[str, str], new_context, shot, lang: str
) -> None:
    words = WORDS[lang]
    person = on_duty_at(http, admin_headers, *remote_spot(), phone="13900139000")
    context = new_context(viewport=PHONE, locale=lang, accept_downloads=True)
    page = context.new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/responder")
    sign_in_as(page, words, "responder", person["token"])
    card = page.locator("#privacy-card")
    expect(card.get_by_role("heading", name=words["privacy.heading"])).to_be_visible()
    expect(card).to_contain_text(words["privacy.what"])
    shot(page, "signed-in")

    # the download: one JSON file, named for the person, holding their profile and no token
    with page.expect_download() as caught:
        card.get_by_role("button", name=words["privacy.download"]).click()
    download = caught.value
    assert download.suggested_filename == f"responder-{person['id']}-data.json"
    saved = download.path()
    assert saved is not None
    text = saved.read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["profile"]["id"] == person["id"] and document["profile"]["phone"] == "13900139000"
    assert document["profile"]["on_duty"] is True and document["live_position"] is not None
    assert person["token"] not in text
    expect(page.locator("#status")).to_have_text(words["privacy.downloaded"])

    # delete: a confirmation step first, and "keep" changes nothing
    card.get_by_role("button", name=words["privacy.erase"]).click()
    dialog = page.get_by_role("alertdialog", name=words["privacy.confirm_text"])
    expect(dialog).to_be_visible()
    expect(card.get_by_role("button", name=words["privacy.erase"], exact=True)).to_be_hidden()
    shot(page, "confirm")
    dialog.get_by_role("button", name=words["privacy.confirm_no"]).click()
    expect(dialog).to_be_hidden()
    me = bearer(person["token"])
    assert http.get(f"/v1/responders/{person['id']}", headers=me).status_code == 200

    card.get_by_role("button", name=words["privacy.erase"], exact=True).click()
    dialog.get_by_role("button", name=words["privacy.confirm_yes"]).click()
    expect(page.locator("#status")).to_have_text(words["privacy.erased"])
    expect(page.get_by_role("button", name=words["signin.button"], exact=True)).to_be_visible()
    expect(card).to_be_hidden()
    expect(page.locator("#duty-card")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('rescue-circle.token.responder')") is None
    expect(page.locator("#error")).to_have_text("")  # the socket's close after the revocation is no error
    shot(page, "erased")

    assert http.get(f"/v1/responders/{person['id']}", headers=me).status_code == 401
    gone = http.get(f"/v1/responders/{person['id']}", headers=admin_headers)
    assert gone.status_code == 410, gone.text
    assert errors == []
