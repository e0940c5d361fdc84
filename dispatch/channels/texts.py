"""What an SMS and a voice call say about an alert (pure).

Built from `dispatch.frames.alert_frame`, so they say exactly what the app shows before accept:
the kind of emergency, distance, ETA and, for an AED runner, the AED's place name (for someone
not yet decided who may be asked to bring one, that AED's, said as a maybe), never the
patient's exact place or address (anyone holding the phone reads an SMS). The SMS ends with the
one-time link that opens this one alert in the app; the voice call cannot carry a link, so it
asks the person to open the SMS or the app.

Length: an SMS with any Chinese character is UCS-2, 70 characters in one message, 67 per part of
a longer one; an ASCII one is 160/153. Decided: the words are kept short enough that the Chinese
words and a 【signature】 fit one message; the link (about 100 characters: the alert id and a code
long enough to stay secret) makes the Chinese SMS three parts and the English one two, billed as
such; the phone joins them into one message. Shortening the link is the way to one part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from dispatch.frames import AlertView, alert_frame

Language = Literal["zh", "en"]

CATEGORIES: dict[str, dict[Language, str]] = {
    "cardiac_arrest": {"zh": "心脏骤停", "en": "cardiac arrest"},
    "unconscious": {"zh": "意识丧失", "en": "unconscious person"},
    "choking": {"zh": "气道梗阻", "en": "choking"},
    "severe_bleeding": {"zh": "严重出血", "en": "severe bleeding"},
    "other_medical": {"zh": "急症", "en": "medical emergency"},
}
AED_NAME_MAX = 16  # characters of the AED's place name kept in an SMS (the app shows it whole)
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True, slots=True)
class Facts:
    """The few things an SMS or a call says, formatted for one language."""

    category: str
    distance: str
    eta: str
    aed: str | None  # the AED's place name, for an AED runner
    aed_option: str | None = None  # the AED an undecided responder may be asked to bring


def category_name(category: str, language: Language) -> str:
    names = CATEGORIES.get(category)
    return names[language] if names else category.replace("_", " ")


def distance_text(metres: float, language: Language) -> str:
    """`350米` / `350 m` (to 10 m), `1.2公里` / `1.2 km` from a kilometre on."""
    if metres < 1000:
        value, unit = f"{max(10, round(metres, -1)):.0f}", ("米", " m")
    else:
        value, unit = f"{metres / 1000:.1f}", ("公里", " km")
    return value + (unit[0] if language == "zh" else unit[1])


def eta_text(seconds: float, language: Language) -> str:
    """Whole minutes, rounded up (a promise of 2 minutes that takes 2:40 is a broken one)."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes}分钟" if language == "zh" else f"{minutes} min"


def _shorten(name: str, limit: int = AED_NAME_MAX) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def facts(view: AlertView, language: Language) -> Facts:
    frame: dict[str, Any] = alert_frame(view)
    aed, option = frame.get("aed"), frame.get("aed_option")
    return Facts(
        category=category_name(frame["category"], language),
        distance=distance_text(frame["distance_m"], language),
        eta=eta_text(frame["eta_s"], language),
        aed=_shorten(aed["name"]) if aed and aed.get("name") else None,
        aed_option=_shorten(option["name"]) if option and option.get("name") else None,
    )


def sms_text(view: AlertView, link: str | None, language: Language = "zh") -> str:
    f = facts(view, language)
    if language == "zh":
        go = f"先取AED（{f.aed}）再赶往，约{f.eta}" if f.aed else f"约{f.eta}可到"
        if f.aed_option:
            go += f"，或需先取AED（{f.aed_option}）"
        text = f"急救呼叫：附近有人{f.category}，距您{f.distance}，{go}。"
        return text + (f"接受或拒绝：{link}" if link else "请打开应用接受或拒绝。")
    go = f"Fetch the AED at {f.aed} first, about {f.eta}" if f.aed else f"About {f.eta} away"
    if f.aed_option:
        go += f"; you may be asked to bring the AED at {f.aed_option}"
    text = f"Rescue alert: {f.category} {f.distance} from you. {go}."
    return text + (f" Accept or decline: {link}" if link else " Open the app to accept or decline.")


def voice_text(view: AlertView, language: Language = "zh") -> str:
    """Said twice by the provider's text-to-speech: no link, no abbreviations a voice misreads."""
    f = facts(view, language)
    if language == "zh":
        go = f"请先去{f.aed}取除颤仪，再赶往现场，约{f.eta}" if f.aed else f"约{f.eta}可到"
        return (
            f"这里是急救呼叫。您附近有人{f.category}，距您{f.distance}，{go}。"
            "请打开急救短信或应用，接受或拒绝。"
        )
    go = f"Please fetch the defibrillator at {f.aed} first, about {f.eta}" if f.aed else f"About {f.eta}"
    return (
        f"This is a rescue alert. A {f.category} {f.distance} from you. {go}. "
        "Please open the alert text message or the app to accept or decline."
    )


def sms_params(view: AlertView, link: str, language: Language = "zh", *, with_aed: bool = False) -> list[str]:
    """Tencent SMS template parameters: category, distance, ETA, [the AED's place,] link.

    A mainland SMS may only say what an approved template says, so the words live in the template
    (see the README) and only these values travel; `with_aed` for the AED runners' template.
    """
    f = facts(view, language)
    return [f.category, f.distance, f.eta, *([f.aed or ""] if with_aed else []), link]


def voice_params(view: AlertView, language: Language = "zh") -> list[str]:
    """Tencent voice (TTS) template parameters: category, distance, ETA."""
    f = facts(view, language)
    return [f.category, f.distance, f.eta]


def sms_parts(text: str) -> int:
    """How many SMS messages `text` takes (7-bit if ASCII, else UCS-2; the few ASCII characters
    that take two 7-bit places, such as `{}[]~`, are not in our texts)."""
    single, part = (GSM7_SINGLE, GSM7_PART) if text.isascii() else (UCS2_SINGLE, UCS2_PART)
    return 1 if len(text) <= single else math.ceil(len(text) / part)
