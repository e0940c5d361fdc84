"""The pages' two languages, read from the files: both catalogues say the same things (same keys, same
{placeholders}), every key the pages ask for exists, and no word on a page escapes the catalogues
(a text node of the HTML outside `data-i18n`, or a literal sentence the JS puts on screen)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.config import Settings
from dispatch.schemas import IncidentCategory
from dispatch.web import router as web
from responders.schemas import ResponderCategory

STATIC = web.STATIC_DIR
LANGUAGES = ("en", "zh-CN")
PAGES = sorted(STATIC.glob("*.html"))
SCRIPTS = sorted([*STATIC.glob("*.js"), *STATIC.glob("lib/*.js")])
PLACEHOLDER = re.compile(r"\{(\w+)\}")
WORDS = re.compile(r"[A-Za-z\u4e00-\u9fff]")  # Latin letters or CJK ideographs: something to read
# attribute a person reads -> the data- attribute that must supply it
READ_ATTRIBUTES = {
    "placeholder": "data-i18n-placeholder",
    "title": "data-i18n-title",
    "aria-label": "data-i18n-label",
}


def catalogue(lang: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    en, zh = catalogue("en"), catalogue("zh-CN")
    assert set(en) == set(zh), f"only in en: {set(en) - set(zh)}; only in zh-CN: {set(zh) - set(en)}"
    names = lambda text: set(PLACEHOLDER.findall(text))  # noqa: E731
    differing = {k: (en[k], zh[k]) for k in en if names(en[k]) != names(zh[k])}
    assert differing == {}
    untranslated = [k for k in zh if not zh[k].strip()]
    assert untranslated == []


def test_every_incident_and_responder_category_has_words_in_both_languages() -> None:
    for lang in LANGUAGES:
        words = catalogue(lang)
        assert {f"category.{c.value}" for c in IncidentCategory} <= set(words)
        assert {f"responder_category.{c.value}" for c in ResponderCategory} <= set(words)
    assert catalogue("zh-CN")["category.cardiac_arrest"] == "心脏骤停"
    assert catalogue("zh-CN")["role_short.fetch_aed"] == "取AED"


def keys_asked_for() -> set[str]:
    """Every literal key the pages ask for: t("…") in the JS, data-i18n*="…" in the HTML."""
    asked = set()
    for script in SCRIPTS:
        asked |= set(re.findall(r"\bt\(\s*\"([\w.]+)\"", script.read_text(encoding="utf-8")))
    for page in PAGES:
        asked |= set(re.findall(r"data-i18n(?:-[a-z]+)?=\"([\w.]+)\"", page.read_text(encoding="utf-8")))
    return asked


def test_every_key_the_pages_ask_for_is_in_the_catalogue() -> None:
    asked = keys_asked_for()
    assert len(asked) > 150  # the pattern still finds them
    assert asked - set(catalogue("en")) == set()


class UncoveredText(HTMLParser):
    """Text a person reads that no data-i18n attribute supplies. Rules: text with letters or CJK
    outside <script>/<style> must sit inside an element with data-i18n or data-i18n-html; an element
    marked translate="no" (codes such as a datum name, filled in by the script) is exempt; a read
    attribute (placeholder, title, aria-label) with letters needs its data-i18n-* twin."""

    VOID: ClassVar[set[str]] = {"meta", "link", "input", "br", "img", "hr", "source", "base", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        # (tag, covered: this element or an ancestor supplies its text)
        self.stack: list[tuple[str, bool]] = []
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for attribute, twin in READ_ATTRIBUTES.items():
            if WORDS.search(names.get(attribute) or "") and twin not in names:
                self.found.append(f"<{tag} {attribute}={names[attribute]!r}>")
        if tag in self.VOID:
            return
        inherited = bool(self.stack) and self.stack[-1][1]
        covered = inherited or tag in {"script", "style"} or names.get("translate") == "no"
        covered = covered or "data-i18n" in names or "data-i18n-html" in names
        self.stack.append((tag, covered))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and tag not in self.VOID:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if WORDS.search(data) and not (self.stack and self.stack[-1][1]):
            self.found.append(data.strip())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_text_on_a_page_escapes_the_catalogue(page: Path) -> None:
    parser = UncoveredText()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.found == []


def test_the_uncovered_text_rule_catches_a_bare_word() -> None:
    parser = UncoveredText()
    parser.feed('<p data-i18n="a">x <b>y</b></p><p>Open <span translate="no">WGS-84</span></p>')
    parser.feed('<input title="Go">')
    assert parser.found == ["Open", "<input title='Go'>"]


# A sentence literal the script puts on screen (status, error, badge, element text) instead of t(…).
SHOWN_LITERAL = re.compile(
    r"(?:textContent\s*=|\bsay\(|\bfail\(|setLive\([^,]+,|setConnection\([^,]+,)\s*[\"'`][A-Za-z]"
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_put_no_literal_sentence_on_screen(script: Path) -> None:
    lines = script.read_text(encoding="utf-8").splitlines()
    assert [line.strip() for line in lines if SHOWN_LITERAL.search(line)] == []


def test_the_pages_are_told_the_city_time_zone() -> None:
    app = FastAPI()
    app.state.settings = Settings(timezone="Asia/Shanghai")
    web.install_web(app)
    assert TestClient(app).get("/v1/web/config").json()["timezone"] == "Asia/Shanghai"
