"""What an alert SMS and call say, and the numbers they go to (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.channels import texts
from dispatch.channels.phone import e164
from dispatch.frames import AedInfo, AlertView

ADDRESS = "深南大道6008号 3栋1201"
LINK = "https://rescue.example.cn/responder?alert=3f6b0e9c-8a51-4d0e-9d0b-2a3c4e5f6a7b&code=k3J9xQ2mV7pL4sT8wZ1nB5cD"


def view(
    role: str = "cpr",
    *,
    aed: AedInfo | None = None,
    option: AedInfo | None = None,
    distance_m: float = 347,
    eta_s: float = 151,
) -> AlertView:
    return AlertView(
        alert_id="3f6b0e9c-8a51-4d0e-9d0b-2a3c4e5f6a7b",
        incident_id="9d0b2a3c-4e5f-6a7b-3f6b-0e9c8a514d0e",
        responder_id="r1",
        role=role,
        status="sent",
        eta_s=eta_s,
        distance_m=distance_m,
        expires_at=datetime.now(UTC) + timedelta(minutes=2),
        category="cardiac_arrest",
        lat=22.5431234,
        lng=114.0579876,
        address=ADDRESS,
        note="3rd floor, ring twice",
        aed=aed,
        aed_option=option,
    )


AED = AedInfo("a1", "市民中心地铁站B出口", 22.5410, 114.0596, "售票机旁")


def test_chinese_sms_says_category_distance_eta_and_link_and_nothing_exact() -> None:
    text = texts.sms_text(view(), LINK)
    assert text == f"急救呼叫：附近有人心脏骤停，距您350米，约3分钟可到。接受或拒绝：{LINK}"
    for secret in (ADDRESS, "22.543", "114.057", "ring twice"):
        assert secret not in text


def test_chinese_words_fit_one_sms_with_a_signature_and_the_link_makes_it_three() -> None:
    """The decision in texts.py: words + 【signature】 in one 70-character SMS; the ~100-character
    link makes it 3 parts (67 each)."""
    for v in (view(), view("fetch_aed", aed=AED), view("undecided", option=AED)):
        words = texts.sms_text(v, None).removesuffix("请打开应用接受或拒绝。")
        assert texts.sms_parts("【急救呼叫】" + words + "接受或拒绝：") == 1, words
        assert texts.sms_parts("【急救呼叫】" + texts.sms_text(v, LINK)) <= 3


def test_aed_runner_is_told_where_the_aed_is() -> None:
    text = texts.sms_text(view("fetch_aed", aed=AED, eta_s=241), LINK)
    assert "先取AED（市民中心地铁站B出口）再赶往，约5分钟" in text
    long_name = AedInfo(
        "a2", "Civic Center Metro Station, exit B, beside the ticket machines", 22.5, 114.0, None
    )
    text = texts.sms_text(view("fetch_aed", aed=long_name), LINK, "en")
    assert "Fetch the AED at Civic Center Me… first" in text


def test_someone_not_yet_decided_is_told_they_may_be_asked_to_bring_the_aed() -> None:
    """Roles are decided at the accept: before it, the AED is a maybe, and the plain Tencent
    template (no AED) is the one for them."""
    text = texts.sms_text(view("undecided", option=AED), LINK)
    assert "约3分钟可到，或需先取AED（市民中心地铁站B出口）。" in text
    english = texts.sms_text(view("undecided", option=AED), LINK, "en")
    assert "About 3 min away; you may be asked to bring the AED at 市民中心地铁站B出口." in english
    assert texts.sms_text(view("undecided"), LINK) == texts.sms_text(view(), LINK)
    assert texts.sms_params(view("undecided", option=AED), LINK) == texts.sms_params(view(), LINK)


def test_english_fallback_words_fit_one_sms_and_with_the_link_two() -> None:
    text = texts.sms_text(view(distance_m=1234, eta_s=301), LINK, "en")
    assert (
        text == f"Rescue alert: cardiac arrest 1.2 km from you. About 6 min away. Accept or decline: {LINK}"
    )
    assert texts.sms_parts(text.removesuffix(LINK)) == 1 and texts.sms_parts(text) == 2


def test_voice_text_has_no_link_and_asks_to_open_the_sms_or_app() -> None:
    zh = texts.voice_text(view())
    assert (
        zh == "这里是急救呼叫。您附近有人心脏骤停，距您350米，约3分钟可到。请打开急救短信或应用，接受或拒绝。"
    )
    en = texts.voice_text(view("fetch_aed", aed=AED), "en")
    assert "http" not in zh + en and "open the alert text message or the app" in en
    assert "defibrillator at 市民中心地铁站B出口" in en


def test_template_parameters() -> None:
    assert texts.sms_params(view(), LINK) == ["心脏骤停", "350米", "3分钟", LINK]
    assert texts.sms_params(view("fetch_aed", aed=AED), LINK, with_aed=True) == [
        "心脏骤停", "350米", "3分钟", "市民中心地铁站B出口", LINK,
    ]  # fmt: skip
    assert texts.voice_params(view(distance_m=4), "en") == ["cardiac arrest", "10 m", "3 min"]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("+86 138 0013 8000", "+8613800138000"),
        ("13800138000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("86 13800138000", "+8613800138000"),
        ("0755-8888 1234", "+8675588881234"),
        ("+86 0755 88881234", "+8675588881234"),
        ("+852 9123 4567", "+85291234567"),
        ("+44 (20) 7946 0958", "+442079460958"),
        ("12345", None),
        ("23800138000", None),
        ("+86 138 0013 800a", None),
        ("", None),
        (None, None),
        ("+1234567890123456", None),
    ],
)
def test_e164(raw: str | None, want: str | None) -> None:
    assert e164(raw) == want


def test_sms_parts_counts_ucs2_and_7bit() -> None:
    assert (
        texts.sms_parts("字" * 70) == 1
        and texts.sms_parts("字" * 71) == 2
        and texts.sms_parts("字" * 135) == 3
    )
    assert texts.sms_parts("a" * 160) == 1 and texts.sms_parts("a" * 161) == 2
