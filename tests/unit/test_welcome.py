"""`make run`'s start-up block: the pages, a token per role, what to try, how to stop."""

from __future__ import annotations

from dispatch.welcome import DemoResponder, startup_block

URL = "http://127.0.0.1:8000"


def test_the_demo_block_names_every_page_and_a_token_for_each_role() -> None:
    tokens = {"dispatcher": "d-token", "planner": "p-token", "coordinator": "c-token", "admin": "a-token"}
    responder = DemoResponder("Sanitation Worker 00012", "futian", "r-token")
    block = startup_block(URL, tokens, responder, demo=True, workers=1)
    lines = block.splitlines()
    assert lines[0].startswith("┌─ The 5-minute rescue circle is running") and lines[-1].startswith("└")
    assert all(line.startswith("│") for line in lines[1:-1])
    for page in ("/", "/responder", "/planner", "/coordinator"):
        assert any(line.endswith(f"{URL}{page}") for line in lines), page
    for role, token in [*tokens.items(), ("responder", "r-token")]:
        assert any(line.split()[1:3] == [role, token] for line in lines), role
    assert "Sanitation Worker 00012, team futian: on duty" in block
    assert "(1 API worker)" in block and "Ctrl-C" in block and "mover" in block


def test_without_the_demo_it_says_how_to_make_a_token() -> None:
    block = startup_block(URL, {}, None, demo=False, workers=4)
    assert "token create --role dispatcher" in block and "(4 API workers)" in block
    assert "responder app," not in block and "mover" not in block


def test_no_line_is_wider_than_the_frame_but_tokens() -> None:
    block = startup_block(URL, {"dispatcher": "x" * 43}, None, demo=True, workers=1)
    assert max(len(line) for line in block.splitlines()) <= 80
