"""The installable responder app in Chromium: manifest and icons, the service worker controlling
/responder, a Web Push shown as a notification that stays, its Accept action answering the alert
with no page open, the receipt sent from the worker, and the page opening from its cache with no
network at all.

A headless browser has no push service (Chromium's is Google's, out of reach) and no system tray.
So `pushManager.subscribe` answers with a subscription of the local push service stand-in
(tests/support/push_service.py), the server's ladder pushes there, the stand-in decrypts the message
with the subscription's keys as the browser would, and the test hands it to the worker through the
DevTools protocol (`ServiceWorker.deliverPushMessage`). The notification's buttons are pressed by
calling the worker's own click handler (`self.onNotificationClick`, the function its
`notificationclick` listener runs) inside the worker, with the notification the push put up: an
event dispatched from a script is untrusted, and its `waitUntil` throws.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, BrowserContext, Page, Worker, expect
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from dispatch.channels import codes
from dispatch.frames import alert_frame
from dispatch.models import Alert
from dispatch.service import alert_views
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, console_errors
from tests.browser.test_story import remote_spot, sign_in
from tests.support.db import fetch
from tests.support.people import bearer, on_duty_at
from tests.support.push_service import PushService
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]

T = TypeVar("T")
SCOPE = "/responder"
NOTIFICATIONS_JS = """async (tag) => {
    const reg = await navigator.serviceWorker.getRegistration('/responder');
    const shown = await reg.getNotifications(tag ? { tag } : {});
    return shown.map((n) => ({
        title: n.title, body: n.body, tag: n.tag, requireInteraction: n.requireInteraction,
        renotify: n.renotify, vibrate: [...n.vibrate], actions: n.actions.map((a) => [a.action, a.title]),
    }));
}"""


# the browser's pushManager for a headless Chromium without a push service: it remembers the VAPID
# key it was given and answers with the subscription this test made
FAKE_SUBSCRIBE_JS = """((sub) => {
    const made = { ...sub, toJSON: () => sub, options: {}, unsubscribe: async () => true };
    PushManager.prototype.subscribe = async function (options) {
        window.__pushKey = btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey)));
        made.options = options;
        return made;
    };
    PushManager.prototype.getSubscription = async () => null;
})(SUBSCRIPTION);"""


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from a sync Playwright test (its loop is marked running in this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def pushed_payload(database_url: str, alert_id: str) -> str:
    """What the push channel sends for this alert: `alert_frame` of the alert as stored."""

    async def build() -> str:
        engine = create_async_engine(database_url)
        try:
            async with AsyncSession(engine) as session:
                [view] = await alert_views(session, [uuid.UUID(alert_id)])
        finally:
            await engine.dispose()
        return json.dumps(alert_frame(view))

    return run_async(build)


def issue_code(database_url: str, alert_id: str, channel: str = "sms") -> str:
    """The alert's one-time code, as the SMS step makes it for the link it sends."""

    async def make() -> str:
        engine = create_async_engine(database_url)
        try:
            async with AsyncSession(engine) as session:
                alert = await session.get(Alert, uuid.UUID(alert_id))
                assert alert is not None
                code = codes.issue(session, alert, channel)
                await session.commit()
        finally:
            await engine.dispose()
        return code

    return run_async(make)


def stored_alert(database_url: str, alert_id: str) -> dict[str, Any]:
    rows = run_async(lambda: fetch(database_url, "SELECT * FROM alerts WHERE id = $1", uuid.UUID(alert_id)))
    return dict(rows[0])


def wait_for(check: Callable[[], T | None], what: str, timeout_s: float = 20.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def controlled_phone(context: BrowserContext, url: str, token: str) -> Page:
    """/responder signed in and controlled by the service worker."""
    page = context.new_page()
    page.goto(f"{url}/responder")
    sign_in(page, token)
    expect(page.locator("#connection")).to_have_text("Online")
    # polled from here: a predicate polled inside the page is an eval, which the CSP refuses
    wait_for(lambda: page.evaluate("!!navigator.serviceWorker.controller"), "the worker in control")
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == f"{url}/responder-sw.js"
    return page


def deliver_push(page: Page, origin: str, payload: str) -> None:
    """Hand a push message to the /responder worker as the browser's push service would."""
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 15
    ours = [r for r in registrations if r["scopeURL"] == origin + SCOPE and not r["isDeleted"]]
    while not ours and time.monotonic() < deadline:
        page.wait_for_timeout(100)  # lets the session's events in
        ours = [r for r in registrations if r["scopeURL"] == origin + SCOPE and not r["isDeleted"]]
    assert ours, f"no service worker registration for {SCOPE}: {registrations}"
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": ours[-1]["registrationId"], "data": payload},
    )


def notifications(page: Page, tag: str | None = None) -> list[dict[str, Any]]:
    return page.evaluate(NOTIFICATIONS_JS, tag)


def the_worker(context: BrowserContext) -> Worker:
    workers = [w for w in context.service_workers if w.url.endswith("/responder-sw.js")]
    assert workers, "the responder service worker is not running"
    return workers[-1]


def test_manifest_and_icons_make_an_installable_app(
    live_server, http: httpx.Client, browser: Browser, new_context
) -> None:
    r = http.get("/responder.webmanifest")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/manifest+json")
    manifest = r.json()
    assert "救援" in manifest["name"] and "Rescue" in manifest["name"]
    assert "救援" in manifest["short_name"] and "Rescue" in manifest["short_name"]
    assert (manifest["start_url"], manifest["display"]) == ("/responder", "standalone")
    sizes = set()
    for icon in manifest["icons"]:
        got = http.get(icon["src"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/png", icon
        width, height = png_size(got.content)
        assert icon["sizes"] == f"{width}x{height}"
        sizes.add((width, icon["purpose"]))
    assert {(192, "any"), (512, "any"), (192, "maskable"), (512, "maskable")} <= sizes

    sw = http.get("/responder-sw.js")
    assert sw.status_code == 200 and "javascript" in sw.headers["content-type"]
    assert sw.headers["cache-control"] == "no-cache"

    page = new_context(viewport=PHONE).new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/responder")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    cdp = page.context.new_cdp_session(page)
    parsed = cdp.send("Page.getAppManifest")
    assert parsed["url"] == f"{live_server.url}/responder.webmanifest"
    assert parsed["errors"] == [], parsed["errors"]  # Chromium read it whole
    expect(page.get_by_role("heading", name="Install the app and allow alerts")).to_be_visible()
    page.get_by_text("How to install (Android, iPhone)").click()
    expect(page.locator("#install-help")).to_contain_text("Add to Home Screen")
    expect(page.locator("#install-help")).to_contain_text("Install app")
    assert errors == []

    # Chromium's own verdict; a Playwright context counts as incognito, where nothing installs
    with tempfile.TemporaryDirectory() as profile:
        kept = browser.browser_type.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = kept.new_page()
            page.goto(f"{live_server.url}/responder")
            wait_for(lambda: page.evaluate("!!navigator.serviceWorker.controller"), "the worker in control")
            verdict = kept.new_cdp_session(page).send("Page.getInstallabilityErrors")
            assert verdict["installabilityErrors"] == []
        finally:
            kept.close()


def test_push_shows_a_sticky_notification_whose_accept_answers_with_no_page_open_and_the_app_opens_offline(
    app_env, admin_headers, token_for, new_context, shot
) -> None:
    """The whole way: the page subscribes (with the local push service's subscription, as a browser
    would get one from its vendor), the server's ladder pushes the alert to that push service, which
    decrypts it as the browser would, and the decrypted message is handed to the worker."""
    # this test takes the network away at the end; push endpoints on loopback are the stand-in's
    own = ServerProcess(env={**app_env, "DISPATCH_PUSH_ALLOW_HTTP_LOOPBACK": "1"}).start()
    database_url = app_env["DATABASE_URL"]
    try:
        with PushService() as service:
            http = httpx.Client(base_url=own.url, timeout=30.0)
            lat, lng = remote_spot()
            person = on_duty_at(http, admin_headers, lat + 0.002, lng, name="Zhao Min")
            vapid = http.get("/v1/push/vapid-public-key", headers=bearer(person["token"])).json()[
                "public_key"
            ]
            device = service.subscribe(vapid)
            context = new_context(viewport=PHONE)
            context.grant_permissions(["notifications"], origin=own.url)
            context.add_init_script(
                FAKE_SUBSCRIBE_JS.replace("SUBSCRIPTION", json.dumps(device.subscription()))
            )

            # sign in once and allow notifications: the page registers the worker, keeps the token for
            # it and subscribes; then it is closed (no socket: the ladder pushes at once)
            phone = controlled_phone(context, own.url, person["token"])
            expect(phone.locator("#notify-state")).to_contain_text("Notifications are on for this phone")
            errors = console_errors(phone)
            phone.close()
            bystander = context.new_page()  # not /responder: no socket, not a client of the worker
            bystander.goto(f"{own.url}/healthz")

            desk = token_for("dispatcher")
            opened = http.post(
                "/v1/incidents",
                json={"lat": lat, "lng": lng, "category": "cardiac_arrest", "address": "No. 8 Lotus Road"},
                headers=desk,
            )
            assert opened.status_code == 201, opened.text
            [alert] = [a for a in opened.json()["alerts"] if a["responder_id"] == person["id"]]
            alert_id = alert["alert_id"]
            [pushed] = wait_for(lambda: service.received(device), "the ladder's push at the push service")
            assert pushed.payload["alert_id"] == alert_id  # decrypted with the device's keys
            payload = json.dumps(pushed.payload)
            assert "Lotus" not in payload  # the exact place is not pushed

            deliver_push(bystander, own.url, payload)
            [shown] = wait_for(lambda: notifications(bystander, alert_id), "the alert's notification")
            assert shown["title"].startswith("Cardiac arrest — ") and "from you" in shown["title"]
            assert "min away" in shown["body"] and "Do CPR" in shown["body"]
            assert "Lotus" not in shown["title"] + shown["body"]
            assert shown["requireInteraction"] and shown["renotify"] and shown["vibrate"]
            assert shown["actions"] == [["accept", "Accept"], ["decline", "Decline"]]

            # the receipt, sent by the worker itself: delivered, and reached by push
            wait_for(
                lambda: stored_alert(database_url, alert_id)["status"] == "delivered",
                "the receipt from the worker",
            )
            assert stored_alert(database_url, alert_id)["delivered_via"] == "push"

            # Accept on the notification, with no /responder page open anywhere
            assert not [p for p in context.pages if p.url.startswith(f"{own.url}/responder")]
            titles = the_worker(context).evaluate(
                """async (tag) => {
                    const [n] = await registration.getNotifications({ tag });
                    await self.onNotificationClick(n, 'accept');
                    return (await registration.getNotifications({ tag })).map((x) => x.title);
                }""",
                alert_id,
            )
            assert titles == ["Go now: No. 8 Lotus Road"]  # the exact place, now that it is accepted
            assert stored_alert(database_url, alert_id)["status"] == "accepted"

            # the app opens again and shows the mission; then with no network at all it opens from its cache
            phone = context.new_page()
            errors = console_errors(phone)
            phone.goto(f"{own.url}/responder")
            expect(phone.locator("#mission-where")).to_have_text("No. 8 Lotus Road")
            expect(phone.locator("#who")).to_contain_text("Zhao Min")
            own.stop()
            context.set_offline(True)
            phone.reload()
            expect(phone.locator("body")).to_have_attribute("data-ready", "true")
            expect(phone.locator("#status")).to_contain_text("No network: showing what was known at")
            expect(phone.locator("#mission-where")).to_have_text("No. 8 Lotus Road")
            expect(phone.locator("#who")).to_contain_text("Zhao Min")
            expect(phone.locator("#connection")).to_contain_text("Offline")
            expect(phone.locator("#signin")).to_be_hidden()
            shot(phone, "offline-last-known-state")
            assert errors == []
            context.set_offline(False)
    finally:
        own.stop()


def test_allow_notifications_subscribes_this_browser_for_the_responder(
    live_server, http: httpx.Client, admin_headers, new_context
) -> None:
    """The button asks for permission, subscribes with the server's VAPID key and registers the
    subscription. Headless Chromium has no push service to subscribe at, so the browser's
    `pushManager.subscribe` is played by a stand-in that records the key it was given and answers
    with a subscription whose keys this test made, as a browser would."""
    browser_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    p256dh = browser_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    subscription = {
        "endpoint": f"https://fcm.googleapis.com/fcm/send/{secrets.token_hex(8)}",  # an allowed host
        "expirationTime": None,
        "keys": {"p256dh": b64url(p256dh), "auth": b64url(secrets.token_bytes(16))},
    }
    person = on_duty_at(http, admin_headers, *remote_spot())
    context = new_context(viewport=PHONE)
    context.add_init_script(FAKE_SUBSCRIBE_JS.replace("SUBSCRIPTION", json.dumps(subscription)))
    page = controlled_phone(context, live_server.url, person["token"])
    expect(page.locator("#notify-state")).to_contain_text("Notifications are off")
    context.grant_permissions(["notifications"], origin=live_server.url)  # the person answers Allow
    page.get_by_role("button", name="Allow notifications").click()
    expect(page.locator("#notify-state")).to_contain_text("Notifications are on for this phone")
    expect(page.get_by_role("button", name="Allow notifications")).to_be_hidden()

    me = {"Authorization": f"Bearer {person['token']}"}
    listed = http.get(f"/v1/responders/{person['id']}/push-subscriptions", headers=me).json()
    assert [s["endpoint"] for s in listed] == [subscription["endpoint"]]
    vapid = http.get("/v1/push/vapid-public-key", headers=me).json()["public_key"]
    assert b64url_to_std(vapid) == page.evaluate("window.__pushKey")  # subscribed with the server's key


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_to_std(text: str) -> str:
    return base64.b64encode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))).decode()


def test_sms_link_opens_the_alert_to_answer_without_signing_in(
    live_server, http: httpx.Client, admin_headers, token_for, new_context, shot
) -> None:
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, lat, lng + 0.002, name="Sun Li")
    opened = http.post(
        "/v1/incidents",
        json={"lat": lat, "lng": lng, "category": "choking", "address": "Gate 3, Lychee Park"},
        headers=token_for("dispatcher"),
    )
    assert opened.status_code == 201, opened.text
    [alert] = [a for a in opened.json()["alerts"] if a["responder_id"] == person["id"]]
    alert_id = alert["alert_id"]
    database_url = live_server.env["DATABASE_URL"]
    code = issue_code(database_url, alert_id)

    page = new_context(viewport=PHONE).new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/responder?alert={alert_id}&code={code}")
    expect(page.locator("#alert")).to_be_visible()
    expect(page.locator("#alert-title")).to_contain_text("choking")
    expect(page.locator("#alert")).not_to_contain_text("Lychee")  # not before accept
    expect(page.locator("#signin")).to_be_visible()  # nobody signed in
    wait_for(lambda: stored_alert(database_url, alert_id)["status"] == "delivered", "the receipt")
    assert stored_alert(database_url, alert_id)["delivered_via"] == "sms"
    shot(page, "sms-link-alert")

    page.get_by_role("button", name="Accept — I'm going").click()
    expect(page.locator("#mission-where")).to_have_text("Gate 3, Lychee Park")
    expect(page.locator("#mission-state")).to_contain_text("Sign in to report en route")
    assert stored_alert(database_url, alert_id)["status"] == "accepted"
    shot(page, "sms-link-accepted")
    assert errors == []


def test_decline_from_the_notification_declines_and_clears_it(
    live_server, http: httpx.Client, admin_headers, token_for, new_context
) -> None:
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, lat, lng - 0.002, name="Qian Yu")
    context = new_context(viewport=PHONE)
    context.grant_permissions(["notifications"], origin=live_server.url)
    controlled_phone(context, live_server.url, person["token"]).close()
    bystander = context.new_page()
    bystander.goto(f"{live_server.url}/healthz")
    opened = http.post(
        "/v1/incidents",
        json={"lat": lat, "lng": lng, "category": "unconscious"},
        headers=token_for("dispatcher"),
    )
    assert opened.status_code == 201, opened.text
    [alert] = [a for a in opened.json()["alerts"] if a["responder_id"] == person["id"]]
    database_url = live_server.env["DATABASE_URL"]
    deliver_push(bystander, live_server.url, pushed_payload(database_url, alert["alert_id"]))
    [shown] = wait_for(lambda: notifications(bystander, alert["alert_id"]), "the alert's notification")
    assert shown["title"].startswith("Unconscious person — ")

    left = the_worker(context).evaluate(
        """async (tag) => {
            const [n] = await registration.getNotifications({ tag });
            await self.onNotificationClick(n, 'decline');
            return (await registration.getNotifications({ tag })).length;
        }""",
        alert["alert_id"],
    )
    assert left == 0  # answered: nothing left ringing
    assert stored_alert(database_url, alert["alert_id"])["status"] == "declined"
