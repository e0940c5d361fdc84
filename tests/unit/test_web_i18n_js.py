"""lib/i18n.js's pure parts run by Node against the real catalogues: the language chosen from the
browser, the city's 24-hour clock whatever the machine's zone, distances, durations, a typed city
time read as an instant, and the API's refusals said in Chinese with the field's label."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from dispatch.web.router import STATIC_DIR

NODE = shutil.which("node")  # the set-up installs Node for npm; the pages need no build step

# Stand-ins for the browser globals i18n.js reads; fetch serves the catalogue files from disk.
HARNESS = """
import { readFile } from "node:fs/promises";
const [lang, languages] = JSON.parse(process.argv[1]);
const store = new Map(lang ? [["rescue-circle.lang", lang]] : []);
globalThis.localStorage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
Object.defineProperty(globalThis, "navigator", { value: { languages, language: languages[0] } });
globalThis.document = { documentElement: {} };
const fromDisk = async (path) => JSON.parse(await readFile(STATIC + path.replace("/static", ""), "utf8"));
globalThis.fetch = async (path) => ({ ok: true, json: () => fromDisk(path) });
const i18n = await import(STATIC + "/lib/i18n.js");
await i18n.loadLanguage();
i18n.useTimeZone("Asia/Shanghai");
const at = "2026-11-30T05:39:26Z";
console.log(JSON.stringify({
  lang: document.documentElement.lang,
  clock: i18n.clock(at),
  near: i18n.distance(350), far: i18n.distance(1234), none: i18n.distance(null),
  short: i18n.duration(42), eta: i18n.duration(200), whole: i18n.duration(300),
  typed: i18n.cityTimeToIso("2026-11-30T08:00"),
  field: i18n.refusal(422, "lat: must be within [-90, 90]; note: too long"),
  token: i18n.refusal(401, "invalid or revoked token"),
  busy: i18n.refusal(429, ""), down: i18n.refusal(0, "Failed to fetch"),
  broken: i18n.refusal(502, "bad gateway"),
  category: i18n.term("category", "cardiac_arrest"), unknown: i18n.term("category", "new_kind"),
}));
"""


def run(picked: str | None, languages: list[str], zone: str = "Europe/Berlin") -> dict[str, str]:
    if NODE is None:
        pytest.fail("node is missing: scripts/setup.sh installs it (npm needs it)")
    script = HARNESS.replace("STATIC + ", f"{json.dumps(str(STATIC_DIR))} + ")
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, json.dumps([picked, languages])],
        capture_output=True, text=True, timeout=30, env={"TZ": zone, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_chinese_browser_gets_chinese_words_and_shenzhens_clock() -> None:
    said = run(None, ["zh-TW", "en"])  # any zh* -> the Simplified catalogue
    assert said["lang"] == "zh-CN"
    assert said["clock"] == "13:39:26"  # 05:39 UTC in Shenzhen, although this machine is in Berlin
    assert (said["near"], said["far"], said["none"]) == ("350 米", "1.2 公里", "—")
    assert (said["short"], said["eta"], said["whole"]) == ("42 秒", "3 分 20 秒", "5 分钟")
    assert said["typed"] == "2026-11-30T00:00:00.000Z"  # 08:00 in the city, not in Berlin
    assert said["field"] == "输入有误（422）：纬度: must be within [-90, 90]; 备注: too long"
    assert said["token"] == "令牌无效或已撤销，请重新登录（401：invalid or revoked token）"
    assert said["busy"] == "请求过于频繁，请稍后再试（429）"
    assert said["down"] == "无法连接服务（Failed to fetch）。请检查网络连接。"
    assert said["broken"] == "服务暂时不可用，请稍后再试（502：bad gateway）"
    assert (said["category"], said["unknown"]) == ("心脏骤停", "new kind")


def test_english_keeps_the_apis_field_names_and_a_24_hour_clock() -> None:
    said = run(None, ["en-US"], zone="America/New_York")
    assert said["lang"] == "en"
    assert said["clock"] == "13:39:26"
    assert (said["near"], said["far"], said["eta"]) == ("350 m", "1.2 km", "3 min 20 s")
    assert said["field"] == "Rejected (422): lat: must be within [-90, 90]; note: too long"
    assert said["token"] == "Not signed in (401): invalid or revoked token"


def test_the_choice_made_on_a_page_beats_the_browsers_language() -> None:
    assert run("en", ["zh-CN"])["lang"] == "en"
    assert run("zh-CN", ["de-DE"])["lang"] == "zh-CN"
    assert run(None, ["de-DE", "zh-CN"])["lang"] == "en"  # the browser's first language decides
