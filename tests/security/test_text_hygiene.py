"""Names, titles, tags and chat messages are visible text; quantities and prices are sane numbers.

Refused with 422 on the field: NUL and other control characters, bidi embedding/override/isolate
controls (which make a name display as something else), and text that is empty once Unicode spaces
and invisible (default-ignorable) characters are set aside. What the API accepts, the database validators accept.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.api.test_pipeline import assert_problem

BAD_LINE = ["\x00", "a\x00b", "\x1b[31mred", "a\x7fb", "a\x85b", "\u00a0", "\u200b", " \u3000\u200b\ufeff ", "\u2060",
            "evil\u202eexe.txt", "a\u2066b\u2069", "two\nlines", "tab\tinside", "a\u2028b"]
# Nothing but characters that display as nothing (Unicode's Default_Ignorable_Code_Point, and the blank
# Braille pattern): bidi marks, Hangul fillers, tag characters, variation selectors, invisible operators...
INVISIBLE = ["\u200f", "\u200e \u200f", "\u061c", "\u3164", "\u115f\u1160", "\uffa0", "\u2800", "\u00ad", "\u034f",
             "\u2062", "\u206a", "\ufff9", "\u180b", "\u17b4", "\ufe0f\ufe0e", "\U000e0041\U000e0042", "\U000e0100",
             "\U0001bca0", "\U0001d173"]
BAD_LINE += INVISIBLE
GOOD_LINE = ["Müller & Söhne", "  padded  ", "日本株", "😀", "family 👨\u200d👩\u200d👧", "x\u00a0y", "\u3000x",
             "❤\ufe0f", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "שלום\u200f", "می\u200cخواهم"]


@pytest.fixture
def user(make_user):
    return make_user()[1]


def routes(client, h):
    """(method, url, body builder, field) for every text field a user names things with."""
    portfolio = client.post("/api/v1/portfolios", json={"name": "hygiene"}, headers=h).json()["id"]
    return [
        ("post", "/api/v1/workspaces", lambda v: {"name": v}, "name"),
        ("post", "/api/v1/watchlists", lambda v: {"name": v}, "name"),
        ("post", "/api/v1/portfolios", lambda v: {"name": v}, "name"),
        ("patch", f"/api/v1/portfolios/{portfolio}", lambda v: {"name": v}, "name"),
        ("post", "/api/v1/users/me/api-keys", lambda v: {"name": v}, "name"),
        ("post", "/api/v1/notes", lambda v: {"body": "b", "title": v}, "title"),
        ("post", "/api/v1/notes", lambda v: {"body": "b", "tags": ["ok", v]}, "tags.1"),
        ("post", "/api/v1/ideas", lambda v: {"title": v}, "title"),
        ("post", "/api/v1/ideas", lambda v: {"title": "t", "tags": [v]}, "tags.0"),
        ("patch", "/api/v1/users/me/profile", lambda v: {"display_name": v}, "display_name"),
    ]


@pytest.mark.parametrize("value", BAD_LINE)
def test_names_titles_and_tags_refuse_invisible_or_control_text(client, user, value):
    for method, url, body, field in routes(client, user):
        r = getattr(client, method)(url, json=body(value), headers=user)
        problem = assert_problem(r, 422, "validation-error")
        assert problem["errors"][field] == ["Must be one line of visible text: no control or bidi characters, "
                                            "not only spaces"], (url, problem)


def test_admin_user_creation_checks_the_name_too(client, admin_headers):
    r = client.post("/api/v1/users", json={"email": "hygiene@example.com", "name": "\u00a0\u200b"}, headers=admin_headers)
    assert "name" in assert_problem(r, 422)["errors"]
    r = client.post("/api/v1/users", json={"email": "moc.elpmaxe\u202e@evil.example"}, headers=admin_headers)
    assert "email" in assert_problem(r, 422)["errors"]


@pytest.mark.parametrize("value", GOOD_LINE)
def test_visible_text_in_any_script_is_stored_as_sent(client, user, value):
    for method, url, body, _ in routes(client, user):
        r = getattr(client, method)(url, json=body(value), headers=user)
        assert r.status_code in (200, 201), (url, r.text)  # the database validators accept it too


@pytest.mark.parametrize("message", ["\x00", "hi\x00", "\x1b]0;title\x07", "\u200b\u00a0\n\t", "read \u202egnp.exe", "\x7f",
                                     "\u3164\n\u200f", "\U000e0049\U000e0067\U000e006e"])
def test_chat_messages_refuse_control_bidi_and_blank_text(client, user, message):
    for path in ("/api/v1/chat", "/api/v1/chat/stream"):
        r = client.post(path, json={"message": message}, headers=user)
        assert "message" in assert_problem(r, 422)["errors"]


def test_chat_messages_keep_line_breaks_and_tabs(client, user):
    r = client.post("/api/v1/chat", json={"message": "Quote AAPL\n\tand MSFT"}, headers=user)
    assert r.status_code == 200, r.text


# -- the API's patterns and the database's agree -------------------------------------------

def _pydantic_accepts(model, field, value) -> bool:
    from pydantic import ValidationError

    try:
        model.model_validate({field: value})
        return True
    except ValidationError:
        return False


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)
       | st.lists(st.sampled_from([" ", "\u00a0", "\u200b", "\u202e", "\n", "\x00", "a", "é", "\u2066", "\ufeff",
                                   "\u200f", "\u3164", "\U000e0041", "\ufe0f", "\u2800"]),
                  min_size=1, max_size=6).map("".join))
def test_what_the_api_accepts_the_database_validators_accept(value):
    from shared.data.schema import LINE_TEXT, TEXT
    from shared.schemas.chat import ChatRequest
    from shared.schemas.workspaces import WorkspaceCreate

    # pydantic runs the pattern with Rust's regex engine; the embedded store with Python's re, like MongoDB's PCRE.
    if _pydantic_accepts(WorkspaceCreate, "name", value):
        assert re.search(LINE_TEXT, value), repr(value)
    if _pydantic_accepts(ChatRequest, "message", value):
        assert re.search(TEXT, value), repr(value)


def test_the_store_refuses_what_the_api_refuses(core):
    """The validators are a second line: a repository write of an invisible name fails there too."""
    from shared.errors import ApiError

    user = core.repos.get_user_repository().insert_one({"email": "validator@example.com", "name": "v"})
    with pytest.raises(ApiError):
        core.repos.get_workspace_repository().insert_one(user["id"], {"name": "\u200b"})
    with pytest.raises(ApiError):
        core.repos.get_workspace_repository().insert_one(user["id"], {"name": "\u3164\U000e0041"})


# -- amounts ---------------------------------------------------------------------------------

@pytest.fixture
def positions(client, user):
    portfolio = client.post("/api/v1/portfolios", json={"name": "amounts"}, headers=user).json()["id"]
    return f"/api/v1/portfolios/{portfolio}/positions", user


@pytest.mark.parametrize("field,value", [("quantity", 1e-320), ("quantity", 0), ("quantity", -1), ("quantity", 1e13),
                                         ("cost_basis", 1e-320), ("cost_basis", 5e-10), ("cost_basis", -0.01),
                                         ("cost_basis", 1e13)])
def test_quantities_and_prices_out_of_bounds_are_422(client, positions, field, value):
    url, h = positions
    body = {"symbol": "AAPL", "quantity": 1, "cost_basis": 1, field: value}
    assert field in assert_problem(client.post(url, json=body, headers=h), 422)["errors"]
    created = client.post(url, json={"symbol": "MSFT", "quantity": 1, "cost_basis": 1}, headers=h).json()
    r = client.patch(f"{url}/{created['id']}", json={field: value}, headers=h)
    assert field in assert_problem(r, 422)["errors"]


@pytest.mark.parametrize("raw", [b"1e309", b"-1e309", b"NaN", b"Infinity"])
def test_non_finite_numbers_are_refused(client, positions, raw):
    url, h = positions
    body = b'{"symbol": "AAPL", "quantity": ' + raw + b', "cost_basis": 1}'
    r = client.post(url, content=body, headers={**h, "Content-Type": "application/json"})
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json")


def test_negative_zero_cost_basis_is_stored_as_zero(client, positions):
    url, h = positions
    r = client.post(url, content=b'{"symbol": "AAPL", "quantity": 2, "cost_basis": -0.0}',
                    headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 201 and b"-0" not in r.content and r.json()["cost_basis"] == 0
    assert b"-0" not in client.get(f"{url}/{r.json()['id']}", headers=h).content


def test_target_price_follows_the_same_rules(client, user):
    assert "target_price" in assert_problem(client.post("/api/v1/ideas", json={"title": "t", "target_price": 1e-320},
                                                        headers=user), 422)["errors"]
    r = client.post("/api/v1/ideas", json={"title": "t", "target_price": -0.0}, headers=user)
    assert r.status_code == 201 and r.json()["target_price"] == 0 and b"-0" not in r.content
