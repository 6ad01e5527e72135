"""The review app over HTTP: every action, the queue, escaping, and the safety checks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from review_fixtures import CASE_ID, EXPECTED_QUEUE, SCRIPT, report_data, write_report

from pipeline.commands import review as review_commands
from pipeline.errors import ReportError
from pipeline.labels import LabelStore
from pipeline.review import create_app, load_case, uncertainty

LOCAL = "http://127.0.0.1"
CASE = f"/cases/{CASE_ID}"


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    return write_report(tmp_path / "reports")


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite")


def _client(report_dir: Path, store: LabelStore, **options: object) -> TestClient:
    return TestClient(create_app([report_dir], store=store, **options), base_url=LOCAL)


@pytest.fixture
def client(report_dir: Path, store: LabelStore) -> TestClient:
    client = _client(report_dir, store, reviewer="ann")
    assert client.get("/").status_code == 200  # receives the CSRF cookie
    return client


def csrf_of(client: TestClient) -> str:
    """The CSRF token a page gives this client's session, read as review.js reads it."""
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/").text).group(1)


def post(client: TestClient, path: str, *, json_reply: bool = False, **data: str) -> object:
    headers = {"Accept": "application/json"} if json_reply else {}
    data.setdefault("csrf_token", csrf_of(client))
    return client.post(path, data=data, headers=headers, follow_redirects=False)


def unchanged(store: LabelStore) -> bool:
    return store.labels() == [] and store.history() == []


# --- pages ----------------------------------------------------------------------------


def test_index_lists_cases_with_progress(client: TestClient) -> None:
    page = client.get("/").text
    assert "Second US-DPRK summit, Hanoi" in page
    assert f'href="{CASE}"' in page
    assert "0 / 4" in page


def test_case_page_shows_both_sides_in_context(client: TestClient) -> None:
    page = client.get(CASE).text
    # the claim, marked, between its neighbouring sentences of the same turn
    assert (
        '<blockquote class="context">We had a very productive time with Chairman Kim. Basically, '
        "<mark>they wanted the sanctions lifted "
    ) in page
    assert "couldn&#39;t do that.</mark> Sometimes you have to walk" in page
    # ... and never across into the next speaker's turn
    assert (
        "do that. <mark>Sometimes you have to walk, and this was just one of those times.</mark></blockquote>"
    ) in page
    assert "<mark>We asked for <strong class=\"diff\">partial</strong> lifting of sanctions" in page
    assert "Donald J. Trump" in page and "Ri Yong Ho" in page
    assert "us-press-conference" in page and 'href="https://example.org/dprk-press-conference"' in page
    assert 'id="progress" data-reviewed="0" data-total="4"' in page
    assert "Nothing matching from US:" in page  # the omission's silent side
    # flags in queue order, the most uncertain first
    positions = [page.index(f'id="d-{d}"') for d in EXPECTED_QUEUE]
    assert positions == sorted(positions)


def test_differing_words_are_highlighted(client: TestClient) -> None:
    page = client.get(CASE).text
    assert '<mark>they wanted the sanctions lifted <strong class="diff">in their entirety</strong>, and we' in page
    assert '<mark>We asked for <strong class="diff">partial</strong> lifting of sanctions, <strong class="diff">not all of them</strong>' in page
    assert '<strong class="diff">&lt;script&gt;alert(1)&lt;/script&gt;</strong>' in page


def test_topic_ids_are_shown_by_name(tmp_path: Path) -> None:
    data = report_data()
    data["topics"] = {"t8": "sanctions · United States · asked"}
    data["divergences"][-1]["topic"] = "t8"
    case = load_case(write_report(tmp_path, data))
    assert case.divergence("div-sanctions").topic == "sanctions · United States · asked"
    assert case.divergence("div-walk").topic == "Who ended the talks"  # not in the table: shown as is


def test_transcript_markup_is_escaped(client: TestClient) -> None:
    response = client.get(CASE)
    page = response.text
    assert SCRIPT not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "script-src 'self'" in response.headers["content-security-policy"]
    topic_page = client.get(CASE, params={"view": "topic"}).text
    assert SCRIPT not in topic_page and "Extra demands &lt;script&gt;" in topic_page


def test_topic_view_groups_flags(client: TestClient) -> None:
    page = client.get(CASE, params={"view": "topic"}).text
    for topic in ("Sanctions", "Yongbyon", "Who ended the talks"):
        assert f'<h2 class="topic">{topic} <small>1 flag</small></h2>' in page
    assert client.get(CASE, params={"view": "nonsense"}).status_code == 400


def test_queue_puts_uncertain_unreviewed_flags_first(client: TestClient) -> None:
    assert [d["id"] for d in client.get(f"/api{CASE}").json()["queue"]] == EXPECTED_QUEUE
    post(client, f"{CASE}/divergences/div-sanctions", decision="accept")
    queue = client.get(f"/api{CASE}").json()
    assert [d["id"] for d in queue["queue"]] == [*EXPECTED_QUEUE[1:], "div-sanctions"]
    assert queue["queue"][-1]["review"]["decision"] == "accept"
    assert queue["progress"] == {"reviewed": 1, "total": 4}


def test_uncertainty_prefers_probabilities_over_score() -> None:
    assert uncertainty(score=0.9) == pytest.approx(0.1)
    assert uncertainty(score=0.9, evidence={"probs": {"a": 0.5, "b": 0.5}}) == pytest.approx(1.0)
    assert uncertainty(score=0.1, evidence={"probs": {"a": 1.0, "b": 0.0}}) == pytest.approx(0.0)
    assert uncertainty(score=None) == 1.0


def test_history_page_shows_before_and_after(client: TestClient) -> None:
    post(client, f"{CASE}/divergences/div-walk", decision="accept")
    post(client, f"{CASE}/divergences/div-walk", decision="correct", type="contradiction", reviewer="bob")
    table = client.get(f"{CASE}/history").text.split("<tbody>")[1]
    assert "accepted as attribution" in table and "corrected to contradiction" in table
    assert table.index("<td>bob</td>") < table.index("<td>ann</td>")  # newest first


# --- actions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "extra", "stored_decision", "stored_type"),
    [
        ("accept", {}, "accept", "scope"),
        ("reject", {}, "reject", None),
        ("correct", {"type": "quantity"}, "correct", "quantity"),
        ("correct", {"type": "scope"}, "accept", "scope"),
        ("unrelated", {}, "unrelated", "unrelated"),
    ],
)
def test_flag_actions_store_labels(
    client: TestClient, store: LabelStore, decision: str, extra: dict, stored_decision: str, stored_type: str | None
) -> None:
    response = post(client, f"{CASE}/divergences/div-sanctions", decision=decision, **extra)
    assert response.status_code == 303
    assert response.headers["location"] == f"{CASE}#d-div-sanctions"
    (label,) = store.labels()
    assert (label.decision, label.type, label.reviewer) == (stored_decision, stored_type, "ann")
    assert (label.predicted_type, label.topic, label.score) == ("scope", "Sanctions", 0.55)
    assert [c.id for c in label.claims] == ["us-1", "kp-1"]
    assert label.claims[0].text.startswith("they wanted the sanctions lifted")
    assert f"{stored_decision}" in json.dumps(store.reviews_for(CASE_ID)["div-sanctions"])


def test_json_reply_updates_the_page_in_place(client: TestClient) -> None:
    reply = post(client, f"{CASE}/divergences/div-yongbyon", json_reply=True, decision="correct", type="scope")
    assert reply.status_code == 200
    body = reply.json()
    assert body["review"]["type"] == "scope" and body["progress"] == {"reviewed": 1, "total": 4}
    assert body["text"].startswith("corrected to scope by ann, ")


def test_undo_withdraws_the_label(client: TestClient, store: LabelStore) -> None:
    post(client, f"{CASE}/divergences/div-walk", decision="reject")
    reply = post(client, f"{CASE}/divergences/div-walk/clear", json_reply=True)
    assert reply.json() == {"review": None, "text": "not reviewed", "progress": {"reviewed": 0, "total": 4}}
    assert store.labels() == []
    assert [e.action for e in store.history()] == ["set", "clear"]


def test_omission_flag_can_be_accepted_or_rejected_only(client: TestClient, store: LabelStore) -> None:
    assert post(client, f"{CASE}/divergences/div-measure", decision="accept").status_code == 303
    assert store.labels()[0].type == "omission" and store.labels()[0].claims[0].id == "kp-3"
    refused = post(client, f"{CASE}/divergences/div-measure", json_reply=True, decision="correct", type="scope")
    assert refused.status_code == 422 and "one claim" in refused.json()["error"]
    assert store.labels()[0].decision == "accept"


def test_missed_link_and_omission(client: TestClient, store: LabelStore) -> None:
    response = post(client, f"{CASE}/missed", claim_a="us-2", claim_b="kp-4", type="attribution")
    assert response.status_code == 303 and response.headers["location"] == f"{CASE}#missed"
    assert post(client, f"{CASE}/missed", claim_a="us-3", type="omission").status_code == 303
    link, omission = store.labels(decision="missed")
    assert ([c.id for c in link.claims], link.type, link.divergence_id) == (["us-2", "kp-4"], "attribution", None)
    assert ([c.id for c in omission.claims], omission.type) == (["us-3"], "omission")
    page = client.get(CASE).text
    assert "Missed divergences (2)" in page
    # removing a missed label
    assert post(client, f"{CASE}/missed/clear", claim_a="kp-4", claim_b="us-2").status_code == 303
    assert [c.id for c in store.labels(decision="missed")[0].claims] == ["us-3"]


def test_reviewer_name_is_remembered(report_dir: Path, store: LabelStore) -> None:
    client = _client(report_dir, store)  # no default reviewer
    client.get("/")
    refused = post(client, f"{CASE}/divergences/div-walk", json_reply=True, decision="accept")
    assert refused.status_code == 422 and "reviewer's name is required" in refused.json()["error"]
    assert post(client, "/reviewer", reviewer="  Jana Čech  ", next=CASE).headers["location"] == CASE
    post(client, f"{CASE}/divergences/div-walk", decision="accept")
    assert store.labels()[0].reviewer == "Jana Čech"  # non-Latin-1 names survive the cookie
    assert 'value="Jana Čech"' in client.get(CASE).text


# --- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data", "status", "message"),
    [
        (f"{CASE}/divergences/div-walk", {"decision": "correct", "type": "bogus"}, 422, "unknown type 'bogus'"),
        (f"{CASE}/divergences/div-walk", {"decision": "correct"}, 422, "needs its new type"),
        (f"{CASE}/divergences/div-walk", {"decision": "maybe"}, 422, "unknown decision 'maybe'"),
        (f"{CASE}/divergences/div-walk", {"decision": "accept", "reviewer": "   "}, 422, "reviewer's name is required"),
        (f"{CASE}/divergences/no-such-flag", {"decision": "accept"}, 404, "unknown divergence 'no-such-flag'"),
        ("/cases/no-such-case/divergences/div-walk", {"decision": "accept"}, 404, "unknown case 'no-such-case'"),
        (f"{CASE}/missed", {"claim_a": "us-1", "claim_b": "ghost", "type": "scope"}, 422, "unknown claim 'ghost'"),
        (f"{CASE}/missed", {"claim_a": "kp-1", "claim_b": "kp-2", "type": "scope"}, 422, "different sides"),
        (f"{CASE}/missed", {"claim_a": "us-1", "claim_b": "kp-1", "type": "scope"}, 409, "already flagged"),
        (f"{CASE}/missed", {"claim_a": "us-1", "type": "scope"}, 422, "only be marked as an omission"),
        (f"{CASE}/missed", {}, 422, "choose the claim"),
    ],
)
def test_invalid_labels_are_refused(
    client: TestClient, store: LabelStore, path: str, data: dict, status: int, message: str
) -> None:
    reply = post(client, path, json_reply=True, **data)
    assert reply.status_code == status
    assert message in reply.json()["error"]
    html = post(client, path, **data)  # a plain form post gets a page with the same message
    assert html.status_code == status and message.replace("'", "&#39;") in html.text
    assert unchanged(store)


def test_post_without_csrf_token_is_refused(client: TestClient, store: LabelStore) -> None:
    path = f"{CASE}/divergences/div-walk"
    assert client.post(path, data={"decision": "accept"}).status_code == 403
    assert client.post(path, data={"decision": "accept", "csrf_token": "x" * 43}).status_code == 403
    stranger = TestClient(client.app, base_url=LOCAL)  # no cookie: a forged cross-site form
    assert stranger.post(path, data={"decision": "accept", "csrf_token": "x" * 43}).status_code == 403
    assert unchanged(store)
    token = csrf_of(client)
    reply = client.post(path, data={"decision": "accept"}, headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert reply.status_code == 303
    assert len(store.labels()) == 1


def test_cross_origin_post_is_refused(client: TestClient, store: LabelStore) -> None:
    reply = client.post(
        f"{CASE}/divergences/div-walk",
        data={"decision": "accept", "csrf_token": csrf_of(client)},
        headers={"Origin": "http://evil.example"},
    )
    assert reply.status_code == 403 and unchanged(store)


def test_csrf_is_checked_before_the_case_is_looked_up(client: TestClient) -> None:
    """An unknown case must not be told apart from a known one without a valid token."""
    for path in ("/cases/no-such-case/divergences/x", f"{CASE}/divergences/no-such-flag", f"{CASE}/missed"):
        assert client.post(path, data={"decision": "accept"}).status_code == 403, path


def test_every_route_and_its_methods(client: TestClient) -> None:
    from pipeline.review.routes import labels, pages

    routes = {(r.path, m, r.name) for router in (pages.router, labels.router) for r in router.routes for m in r.methods}
    assert routes == {
        ("/", "GET", "index"), ("/cases/{case_id}", "GET", "case"), ("/cases/{case_id}/history", "GET", "history"),
        ("/api/cases/{case_id}", "GET", "case_api"),
        ("/cases/{case_id}/divergences/{divergence_id}", "POST", "label"),
        ("/cases/{case_id}/divergences/{divergence_id}/clear", "POST", "clear"),
        ("/cases/{case_id}/missed", "POST", "missed"), ("/cases/{case_id}/missed/clear", "POST", "clear_missed"),
        ("/reviewer", "POST", "set_reviewer"),
    }
    for path, _, name in routes:  # each is served by the app
        params = {p: "x" for p in ("case_id", "divergence_id") if "{" + p + "}" in path}
        assert client.app.url_path_for(name, **params) == path.format(**params)


def test_routes_take_the_store_and_cases_from_dependencies(report_dir: Path, store: LabelStore,
                                                            tmp_path: Path) -> None:
    from pipeline.review.deps import get_cases, get_store

    other = LabelStore(tmp_path / "other.sqlite")
    app = create_app([report_dir], store=store, reviewer="ann")
    app.dependency_overrides[get_store] = lambda: other
    client = TestClient(app, base_url=LOCAL)
    client.get("/")
    assert post(client, f"{CASE}/divergences/div-walk", decision="accept").status_code == 303
    assert store.labels() == [] and [label.divergence_id for label in other.labels()] == ["div-walk"]
    app.dependency_overrides[get_cases] = lambda: {}
    assert client.get(CASE).status_code == 404 and "No reports loaded" in client.get("/").text


def test_redirect_target_stays_on_site(client: TestClient) -> None:
    reply = post(client, f"{CASE}/divergences/div-walk", decision="accept", next="//evil.example/")
    assert reply.headers["location"] == f"{CASE}#d-div-walk"


def test_without_token_only_loopback_hosts_are_served(report_dir: Path, store: LabelStore) -> None:
    app = create_app([report_dir], store=store)
    assert TestClient(app, base_url="http://localhost").get("/").status_code == 200
    assert TestClient(app, base_url="http://rebound.example").get("/").status_code == 400


def test_token_is_required_on_every_request(report_dir: Path, store: LabelStore) -> None:
    app = create_app([report_dir], store=store, token="s3cret-token", reviewer="ann")
    anonymous = TestClient(app, base_url="http://10.0.0.5:8765")
    for path in ("/", CASE, f"/api{CASE}", "/static/review.js"):
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.get("/", params={"token": "wrong"}).status_code == 401
    assert anonymous.get("/", params={"token": "s3crét"}).status_code == 401
    assert anonymous.post(f"{CASE}/divergences/div-walk", data={"decision": "accept"}).status_code == 401

    assert anonymous.get("/", headers={"X-Divergence-Token": "s3cret-token"}).status_code == 200

    browser = TestClient(app, base_url="http://10.0.0.5:8765")
    entry = browser.get(CASE, params={"token": "s3cret-token", "view": "topic"}, follow_redirects=False)
    assert entry.status_code == 303 and entry.headers["location"] == f"{CASE}?view=topic"  # token off the URL
    assert browser.get(CASE).status_code == 200  # the cookie carries it from now on
    reply = post(browser, f"{CASE}/divergences/div-walk", decision="accept")
    assert reply.status_code == 303 and store.labels()[0].reviewer == "ann"


# --- report folders -------------------------------------------------------------------


def test_bad_report_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not a report folder"):
        load_case(tmp_path)
    data = report_data()
    data["divergences"][0]["claims"] = ["us-2", "ghost"]
    folder = write_report(tmp_path / "broken", data)
    with pytest.raises(ReportError, match="refers to unknown claim 'ghost'") as err:
        load_case(folder)
    assert str(err.value).startswith(f"{folder / 'report.json'}: ")
    (folder / "report.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ReportError, match="malformed report.json"):
        load_case(folder)


def test_two_folders_with_one_case_are_refused(tmp_path: Path, store: LabelStore) -> None:
    a = write_report(tmp_path / "a")
    b = write_report(tmp_path / "b")
    with pytest.raises(ReportError, match="also the case of"):
        create_app([a, b], store=store)


def test_context_falls_back_when_offsets_do_not_match(tmp_path: Path) -> None:
    data = report_data()
    data["claims"][0]["start"] += 3  # offsets no longer point at the claim text
    case = load_case(write_report(tmp_path, data))
    context = case.context("us-1")
    assert (context.before, context.after) == ("", "")
    assert context.claim.text.startswith("they wanted")


def test_review_command_names_a_bad_report_folder(tmp_path: Path) -> None:
    app = typer.Typer()
    review_commands.register(app)
    result = CliRunner().invoke(app, ["review", str(tmp_path), "--db", str(tmp_path / "labels.sqlite")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {tmp_path}: not a report folder (no report.json): run `divergence run CASE_DIR` to make one [E015]"
    )


def test_report_with_only_the_contract_fields_renders(tmp_path: Path, store: LabelStore) -> None:
    """CONTRACTS §3 alone (no text, sentences, speaker, score or evidence) is enough to review."""
    data = report_data()
    for doc in data["documents"]:
        for key in ("text", "turns", "sentences", "date", "source"):
            doc.pop(key)
    for claim in data["claims"]:
        claim.pop("speaker")
    for divergence in data["divergences"]:
        divergence.pop("evidence")
        divergence.pop("score")
    client = _client(write_report(tmp_path / "minimal", data), store, reviewer="ann")
    page = client.get(CASE).text
    assert "<mark>they wanted the sanctions lifted in their entirety" in page
    assert "uncertainty 1.00" in page and "confidence n/a" in page
    assert post(client, f"{CASE}/divergences/div-walk", decision="accept").status_code == 303
    assert store.labels()[0].score is None
