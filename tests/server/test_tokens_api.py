"""``/api/tokens`` over a real server (SQLite and PostgreSQL): an admin makes, lists and
revokes its organisation's tokens; the text is shown once and never listed; another
organisation's tokens are neither listed nor revocable, nor made.
"""

from __future__ import annotations

import pytest

from tests.server.conftest import MARKER, Served


def make(served: Served, who: str, **body: object) -> dict[str, object]:
    answer = served.call(who, "POST", "/api/tokens", json=body)
    assert answer.status_code == 201, answer.text
    made: dict[str, object] = answer.json()
    return made


def test_a_made_token_works_at_once_with_its_role_and_is_listed_without_its_text(
    served: Served,
) -> None:
    made = make(served, "admin", role="operator", name="ci deploys", expires="30d")
    text = str(made["token"])
    assert text.startswith("pdg_") and (made["org"], made["role"]) == ("acme", "operator")
    assert made["expires_at"] is not None and made["status"] == "active"

    served.tokens["made"] = text
    assert served.call("made", "GET", "/api/runs").status_code == 200
    assert served.call("made", "DELETE", "/api/workflows/none").status_code == 403  # not admin

    listing = served.call("admin", "GET", "/api/tokens")
    assert listing.status_code == 200
    tokens = listing.json()["tokens"]
    mine = next(t for t in tokens if t["id"] == made["id"])
    assert mine["name"] == "ci deploys" and "token" not in mine and "token_hash" not in mine
    assert text not in listing.text and text[4:] not in listing.text  # nor a part of it
    assert {t["org"] for t in tokens} == {"acme"}
    assert MARKER not in listing.text  # the rival's token is named after the marker


def test_a_revoked_token_is_refused_and_listed_as_revoked(served: Served) -> None:
    made = make(served, "admin", role="viewer", name="short-lived")
    served.tokens["doomed"] = str(made["token"])
    assert served.call("doomed", "GET", "/api/runs").status_code == 200

    answer = served.call("admin", "DELETE", f"/api/tokens/{made['id']}")
    assert answer.status_code == 200 and answer.json() == {"revoked": made["id"]}
    refused = served.call("doomed", "GET", "/api/runs")
    assert refused.status_code == 401
    assert f"token {made['id']} was revoked" in refused.json()["error"]["message"]
    listed = served.call("admin", "GET", "/api/tokens").json()["tokens"]
    assert next(t for t in listed if t["id"] == made["id"])["status"] == "revoked"


def test_another_organisations_token_is_not_found_and_stays_valid(served: Served) -> None:
    [rival] = [t for t in served.store.list_tokens("rival") if t.name == MARKER]
    answer = served.call("admin", "DELETE", f"/api/tokens/{rival.token_id}")
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == (
        f"there is no token {rival.token_id!r} in your organisation"
    )
    assert served.call("rival", "GET", "/api/runs").status_code == 200


def test_an_admin_cannot_make_a_token_for_another_organisation(served: Served) -> None:
    before = len(served.store.list_tokens("rival"))
    answer = served.call("admin", "POST", "/api/tokens", json={"role": "admin", "org": "rival"})
    assert answer.status_code == 403
    message = answer.json()["error"]["message"]
    assert "makes tokens for it only" in message and "pdg_" not in answer.text
    assert len(served.store.list_tokens("rival")) == before
    same = make(served, "admin", role="viewer", org="acme")  # its own, named: fine
    assert same["org"] == "acme"


@pytest.mark.parametrize("who", ["viewer", "operator", "approver", None])
def test_only_admins_manage_tokens(served: Served, who: str | None) -> None:
    expected = 401 if who is None else 403
    assert served.call(who, "GET", "/api/tokens").status_code == expected
    assert served.call(who, "POST", "/api/tokens", json={"role": "viewer"}).status_code == expected
    assert served.call(who, "DELETE", "/api/tokens/tok_x").status_code == expected


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (
            {"role": "root"},
            422,
            "role: Input should be 'viewer', 'operator', 'approver' or 'admin'",
        ),
        ({"role": "viewer", "expires": "soon"}, 400, "expires 'soon' is not a duration"),
        ({"role": "viewer", "expires": "-1d"}, 400, "give a duration above 0"),
        ({"role": "viewer", "token_hash": "0" * 64}, 422, "token_hash: Extra inputs"),
    ],
)
def test_a_bad_token_request_says_what_is_wrong(
    served: Served, body: dict[str, str], status: int, words: str
) -> None:
    before = len(served.store.list_tokens("acme"))
    answer = served.call("admin", "POST", "/api/tokens", json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]["message"]
    assert len(served.store.list_tokens("acme")) == before
