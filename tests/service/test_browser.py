"""Debian's chromium, headless, drives the page: ask the STRIDE question by keyboard, see the answer highlighted.

Fails (does not skip) without chromium: CI installs it in .ci/run, a developer with `apt-get install chromium`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect, sync_playwright

from index.embedder import Embedder
from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.app import create_app
from tests.service.helpers import STRIDE, UNANSWERABLE, LiveServer, service_settings

pytestmark = [pytest.mark.model, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not found:
        pytest.fail(
            "chromium is not installed: the browser test needs Debian's chromium "
            "(`apt-get install -y chromium`; .ci/run installs it in CI)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A fresh page that may talk only to the live server: any other request is blocked and recorded."""
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    outside: list[str] = []
    problems: list[str] = []

    def only_loopback(route: Route, request: Request) -> None:
        if request.url.startswith(live_server.url):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    pg.route("**/*", only_loopback)
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    yield pg
    context.close()
    assert outside == [], f"the page tried to reach the network: {outside}"
    assert problems == [], f"console errors (CSP violations show here): {problems}"


def test_stride_question_shows_the_answer_highlighted_in_its_passage_and_source(
    page: Page, live_server: LiveServer, demo_pipeline: QAPipeline
) -> None:
    page.goto(live_server.url + "/")
    expect(page.locator("#index-info")).to_contain_text(f"{demo_pipeline.index.manifest.corpus.n_documents} abstracts")

    box = page.get_by_role("textbox", name="Question", exact=True)
    box.click()
    box.press_sequentially(STRIDE)
    box.press("Enter")

    first = page.locator("ol.answers > li").first
    mark = first.locator("mark")
    expect(mark).to_be_visible()
    expect(mark).to_have_text("16.43 months")
    expect(first.locator(".score")).to_contain_text("Score")
    link = first.get_by_role("link", name=re.compile(r"^abs-\d+, characters \d+–\d+$"))
    expect(link).to_be_visible()
    # The built-in abstracts have no title, journal, year or PMID: no source line, and no "null" shown for them.
    expect(first.locator(".source")).to_have_count(0)
    expect(first).not_to_contain_text("null")
    expect(page.get_by_role("status")).to_contain_text("answer")

    # Keyboard only: focus the citation and press Enter; the whole abstract opens with the span marked.
    link.focus()
    page.keyboard.press("Enter")
    doc_mark = page.locator("#doc-text mark")
    expect(doc_mark).to_be_visible()
    expect(doc_mark).to_have_text("16.43 months")
    m = re.search(r"documents/([^?]+)\?start=(\d+)&end=(\d+)", page.url)
    assert m, page.url
    doc = httpx.get(f"{live_server.url}/documents/{m.group(1)}").json()
    expect(page.locator("#doc-text")).to_have_text(doc["text"])
    assert doc["text"][int(m.group(2)) : int(m.group(3))] == "16.43 months"
    expect(page.locator("#doc-title")).to_be_focused()

    page.get_by_role("link", name=re.compile("Back to the answers")).click()
    expect(page.locator("ol.answers mark").first).to_have_text("16.43 months")


def test_unanswerable_question_shows_no_answer_and_the_evidence(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    box = page.get_by_role("textbox", name="Question", exact=True)
    box.fill(UNANSWERABLE)
    box.press("Enter")
    expect(page.get_by_role("heading", name="No answer found")).to_be_visible()
    expect(page.locator("ol.answers")).to_have_count(0)
    expect(page.locator(".evidence-list > li").first).to_be_visible()


def test_out_of_range_option_is_stopped_in_the_browser(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    page.locator("details.options > summary").click()
    top_k = page.get_by_label("Passages to search")
    top_k.fill("99")
    box = page.get_by_role("textbox", name="Question", exact=True)
    box.fill(STRIDE)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/ask") else None)
    box.press("Enter")
    assert top_k.evaluate("e => e.validity.valid") is False
    page.wait_for_timeout(300)
    assert asked == []
    expect(page.locator("ol.answers")).to_have_count(0)


def test_api_key_prompt_and_the_services_error_message(
    browser: Browser, demo_pipeline: QAPipeline, demo_settings: Settings
) -> None:
    """A keyed service: the page shows the key field, reports the 401's message, then answers with the key."""
    app = create_app(service_settings(demo_settings, api_key="open-sesame"), pipeline=demo_pipeline)
    with LiveServer(app) as server:
        context = browser.new_context()
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        pg.goto(server.url + "/")
        key = pg.get_by_label("API key")
        expect(key).to_be_visible()
        box = pg.get_by_role("textbox", name="Question", exact=True)
        box.fill(STRIDE)
        box.press("Enter")
        expect(pg.get_by_role("alert")).to_contain_text("X-API-Key")
        expect(key).to_be_focused()
        key.fill("open-sesame")
        key.press("Enter")
        expect(pg.locator("ol.answers mark").first).to_have_text("16.43 months")
        expect(pg.locator("#error")).to_be_hidden()
        context.close()


# A title with markup in it: the page must show it as text. Top-level pmid/journal/year keys of a JSONL record go
# into the document's meta (index/ingest.py), where the answer's citation finds them.
HOSTILE_TITLE = 'Tremelimumab plus durvalumab <img src=x id=injected onerror="document.title=1"> in HCC & more'
CITED_CORPUS = [
    {
        "id": "trial-1",
        "title": HOSTILE_TITLE,
        "pmid": "38319892",
        "journal": "NEJM Evidence",
        "year": 2022,
        "text": "BACKGROUND: STRIDE is a regimen of tremelimumab and durvalumab. RESULTS: The median overall survival "
        "was 16.43 months with STRIDE and 13.77 months with sorafenib.",
    },
    {"id": "trial-2", "text": "Sorafenib is a multikinase inhibitor. Regorafenib is approved after sorafenib."},
]


@pytest.fixture(scope="module")
def cited_server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[LiveServer]:
    """A service over a two-abstract corpus whose first record has a title, PMID, journal and year (the built-in
    corpus has none), with the heuristic reader and the session's embedder: the index builds in seconds."""
    root = tmp_path_factory.mktemp("cited")
    corpus = root / "cited.jsonl"
    corpus.write_text("".join(json.dumps(doc) + "\n" for doc in CITED_CORPUS))
    settings = Settings(index_dir=root / "index", corpus_path=corpus, reader="heuristic", _env_file=None)
    pipeline = QAPipeline(settings, embedder=embedder)
    pipeline.warm_up(build_if_missing=True)
    app = create_app(service_settings(settings, reader="heuristic", corpus_path=corpus), pipeline=pipeline)
    with LiveServer(app) as server:
        yield server


def test_citation_shows_title_journal_year_and_a_pubmed_link(browser: Browser, cited_server: LiveServer) -> None:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.goto(cited_server.url + "/")
    box = pg.get_by_role("textbox", name="Question", exact=True)
    box.fill(STRIDE)
    box.press("Enter")

    first = pg.locator("ol.answers > li").first
    expect(first.locator("mark")).to_have_text("16.43 months")
    source = first.locator("p.source")
    expect(source).to_have_text(f"{HOSTILE_TITLE} · NEJM Evidence, 2022 · PMID 38319892")
    expect(source.locator("cite")).to_have_text(HOSTILE_TITLE)  # the markup is text, not an element
    expect(pg.locator("#injected")).to_have_count(0)
    pmid = source.get_by_role("link", name="PMID 38319892")
    expect(pmid).to_have_attribute("href", "https://pubmed.ncbi.nlm.nih.gov/38319892/")
    expect(pmid).to_have_attribute("rel", "noopener noreferrer")
    # Beside the document id and offsets, which still open the abstract here.
    expect(first.get_by_role("link", name=re.compile(r"^trial-1, characters \d+–\d+$"))).to_be_visible()

    # The abstract's own view names the same source (its title is the heading).
    first.get_by_role("link", name=re.compile(r"^trial-1, characters")).click()
    expect(pg.locator("#doc-title")).to_have_text(HOSTILE_TITLE)
    expect(pg.locator("#doc-citation")).to_contain_text("NEJM Evidence, 2022 · PMID 38319892")
    expect(pg.locator("#doc-citation").get_by_role("link", name="PMID 38319892")).to_have_attribute(
        "href", "https://pubmed.ncbi.nlm.nih.gov/38319892/"
    )
    assert pg.title() == "Biomedical question answering"
    context.close()
    assert problems == [], f"console errors (CSP violations show here): {problems}"


def test_swagger_ui_renders_offline_under_its_csp(page: Page, live_server: LiveServer) -> None:
    """/docs with every request outside the server blocked (the `page` fixture): rendered, no console error."""
    page.goto(live_server.url + "/docs")
    expect(page.get_by_role("heading", name=re.compile("Biomedical extractive QA"))).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/ask").first).to_be_visible()


def test_redoc_renders_offline_with_only_its_logo_blocked(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    outside: list[str] = []
    problems: list[str] = []
    pg.route(
        "**/*",
        lambda route, request: (
            route.continue_()
            if request.url.startswith(live_server.url)
            else (outside.append(request.url), route.abort())
        ),
    )
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.goto(live_server.url + "/redoc")
    expect(pg.get_by_role("heading", name=re.compile("Biomedical extractive QA"))).to_be_visible()
    expect(pg.get_by_text("/ask", exact=True).first).to_be_attached()
    context.close()
    assert outside == []
    # ReDoc's "API docs by Redocly" logo is an image on its CDN: the CSP stops it before any request is made.
    assert all("cdn.redoc.ly" in p and "Content Security Policy" in p for p in problems), problems
