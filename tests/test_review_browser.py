"""The review app in a real browser: click to accept, keyboard to correct, labels to export.

Drives Debian's Chromium through Playwright against the app served by uvicorn on a
free loopback port, so the JavaScript, the CSP and the CSRF header are all exercised.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from review_fixtures import CASE_ID, write_report

from pipeline.labels import LabelStore
from pipeline.review import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, LabelStore]]:
    import uvicorn

    store = LabelStore(tmp_path / "labels.sqlite")
    app = create_app([write_report(tmp_path / "reports")], store=store)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_review_in_the_browser(served: tuple[str, LabelStore], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    import datasets

    base, store = served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda err: problems.append(str(err)))

            page.goto(f"{base}/cases/{CASE_ID}")
            # hostile transcript text is shown as text, never run or rendered
            assert page.locator("img").count() == 0
            assert "<script>alert(1)</script>" in page.locator("#d-div-measure .claim blockquote").first.inner_text()

            page.fill("#reviewer", "Dana")
            page.click("form.reviewer button")
            sync_api.expect(page.locator("form.reviewer .saved")).to_have_text("saved")

            # accept a flag by clicking
            page.locator("#d-div-walk button[value=accept]").click()
            walk_status = page.locator("#d-div-walk [data-status]")
            sync_api.expect(walk_status).to_contain_text("accepted as attribution by Dana")
            sync_api.expect(page.locator("#progress")).to_have_text("1 / 4")

            # correct another's type with the keyboard: back to the first card, t, then 2 = quantity
            sync_api.expect(page.locator("#d-div-measure")).to_have_class("flag current")
            page.keyboard.press("k")
            page.keyboard.press("k")
            sync_api.expect(page.locator("#d-div-sanctions")).to_have_class("flag current")
            page.keyboard.press("t")
            sync_api.expect(page.locator("#d-div-sanctions .type-hint")).to_be_visible()
            page.keyboard.press("2")
            sync_api.expect(page.locator("#d-div-sanctions [data-status]")).to_contain_text("corrected to quantity by Dana")
            sync_api.expect(page.locator("#progress")).to_have_text("2 / 4")

            # the reviews are server state: a reload shows them
            page.reload()
            sync_api.expect(page.locator("#d-div-walk")).to_have_class("flag reviewed")
            sync_api.expect(page.locator("#d-div-sanctions [data-status]")).to_contain_text("corrected to quantity")
            assert problems == []
        finally:
            browser.close()

    labels = {label.divergence_id: label for label in store.labels(case_id=CASE_ID)}
    assert set(labels) == {"div-walk", "div-sanctions"}
    assert (labels["div-walk"].decision, labels["div-walk"].type, labels["div-walk"].reviewer) == (
        "accept",
        "attribution",
        "Dana",
    )
    assert (labels["div-sanctions"].decision, labels["div-sanctions"].type) == ("correct", "quantity")

    out, rows = store.export(tmp_path / "labels-dataset", format="dataset")
    exported = {row["divergence_id"]: row for row in datasets.load_from_disk(str(out))}
    assert rows == 2
    assert exported["div-sanctions"]["type"] == "quantity"
    assert exported["div-sanctions"]["predicted_type"] == "scope"
    assert exported["div-sanctions"]["premise"].startswith("they wanted the sanctions lifted")
    assert exported["div-sanctions"]["hypothesis"].startswith("We asked for partial lifting")
    assert exported["div-walk"]["type"] == "attribution" and exported["div-walk"]["reviewer"] == "Dana"
