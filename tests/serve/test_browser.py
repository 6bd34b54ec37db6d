"""The web UI in a real headless browser: Debian's chromium driven by Playwright (never `playwright install`).

Needs `apt-get install chromium` and the `playwright` package (test extra). Pages are checked by their
rendered content (the text a person sees, the links they follow); screenshots are taken and checked to be
real, non-blank renderings.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from hubmirror.demohub import corpus
from tests.serve.conftest import GRANTED_TOKEN, Synced
from tests.serve.server import ServeProcess

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "browser tests need Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _screenshot_is_a_rendering(page: Page, path: Path) -> None:
    """A PNG whose pixels are not all one colour (a blank or failed render is uniform)."""
    data = page.screenshot(path=str(path), full_page=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    assert len(set(raw[: 4096 * 64])) > 8, "the screenshot is blank"


def _ids(page: Page) -> list[str]:
    return page.locator("#results td:first-child a").all_inner_texts()


def test_search_filters_and_paging(page: Page, synced: Synced, serve_proxy: ServeProcess, tmp_path: Path) -> None:
    page.goto(serve_proxy.url + "/")
    ids = _ids(page)
    assert corpus.SMALL_MODEL in ids and corpus.DATASET in ids
    assert corpus.GATED_MODEL not in ids and corpus.PRIVATE_MODEL not in ids  # anonymous: no restricted repos
    _screenshot_is_a_rendering(page, tmp_path / "index.png")

    page.fill("input[name=q]", "tests")  # only tiny-bert's README says "tests"
    page.click("button[type=submit]")
    assert _ids(page) == [corpus.SMALL_MODEL]
    assert "tests" in page.inner_text("#results").lower()

    page.goto(serve_proxy.url + "/")
    page.select_option("select[name=type]", "dataset")
    page.click("button[type=submit]")
    assert set(_ids(page)) == {corpus.DATASET, corpus.TRENDING_DATASETS[0]}

    page.goto(serve_proxy.url + "/")
    page.fill("input[name=tag]", "hubmirror-trending")
    page.select_option("select[name=type]", "model")
    page.click("button[type=submit]")
    assert _ids(page) == [corpus.TRENDING_MODELS[0]]

    page.goto(serve_proxy.url + "/")
    page.fill("input[name=size_min]", "40")
    page.click("button[type=submit]")
    big = set(_ids(page))
    assert corpus.LARGE_MODEL in big and corpus.SMALL_MODEL in big and corpus.DATASET not in big

    page.goto(serve_proxy.url + "/?sort=likes")
    likes = [int(x) for x in page.locator("#results td:nth-child(5)").all_inner_texts()]
    assert likes == sorted(likes, reverse=True) and len(likes) > 3

    page.goto(serve_proxy.url + "/ui/login")
    page.fill("input[name=token]", GRANTED_TOKEN)
    page.click("button[type=submit]")
    page.select_option("select[name=gated]", "true")
    page.click("button[type=submit]")
    assert _ids(page) == [corpus.GATED_MODEL]  # signed in with a grant: the gated repo appears, filtered


def test_paging_links(page: Page, synced: Synced, serve_proxy: ServeProcess) -> None:
    page.goto(serve_proxy.url + "/?sort=name&type=model")
    everything = _ids(page)
    assert "page 1 of 1" in page.inner_text(".pager") and len(everything) > 6
    assert everything == sorted(everything, key=str.lower)
    page.goto(serve_proxy.url + "/?sort=name&type=model&limit=3")
    seen, pages = [], 0
    while True:
        pages += 1
        seen += _ids(page)
        assert f"page {pages} of {-(-len(everything) // 3)}" in page.inner_text(".pager")
        if not page.locator("#next").count():
            break
        page.click("#next")
    assert seen == everything and pages > 2
    page.click("#prev")
    assert _ids(page) == everything[(pages - 2) * 3:(pages - 1) * 3]


def test_repo_page_has_readme_and_files(page: Page, synced: Synced, serve_proxy: ServeProcess, tmp_path: Path) -> None:
    page.goto(serve_proxy.url + "/")
    page.click(f"text={corpus.SMALL_MODEL}")
    assert page.url.endswith(f"/ui/models/{corpus.SMALL_MODEL}")
    readme = page.inner_text("#readme")
    assert "A tiny BERT for hubmirror tests." in readme and "license:" not in readme  # rendered, no front matter
    assert page.locator("#readme h1").inner_text() == "tiny-bert"
    assert f"hf download {corpus.SMALL_MODEL}" in page.inner_text("#usage-cli")
    assert f'snapshot_download("{corpus.SMALL_MODEL}")' in page.inner_text("#usage-python")
    assert f'AutoModel.from_pretrained("{corpus.SMALL_MODEL}")' in page.inner_text("#usage-transformers")
    assert "MB" in page.inner_text("#total-size") and page.inner_text("#last-sync").endswith("UTC")
    _screenshot_is_a_rendering(page, tmp_path / "repo.png")
    sha = synced.sha(corpus.SMALL_MODEL)
    page.click("#files a:text('config.json')")  # a file link is the mirror's own resolve URL at the shown commit
    assert f"/resolve/{sha}/config.json" in page.url
    assert json.loads(page.inner_text("body"))["model_type"] == "bert"

    page.goto(f"{serve_proxy.url}/ui/models/{corpus.BRANCHY_MODEL}")
    assert {"main", "dev", "feature/x", "v1.0"} <= set(page.locator("#revisions td:nth-child(2)").all_inner_texts())
    page.click("#revisions a:text('v1.0')")
    assert synced.sha(corpus.BRANCHY_MODEL, revision="v1.0") in page.inner_text("main")

    page.goto(f"{serve_proxy.url}/ui/datasets/{corpus.DATASET}")
    assert f'load_dataset("{corpus.DATASET}")' in page.inner_text("#usage-datasets")
    assert "--repo-type dataset" in page.inner_text("#usage-cli")

    response = page.goto(f"{serve_proxy.url}/ui/models/{corpus.PRIVATE_MODEL}")
    assert response.status == 404 and "not mirrored" in page.inner_text("h1").lower()


def test_status_and_trending_pages(page: Page, synced: Synced, serve_proxy: ServeProcess) -> None:
    page.goto(serve_proxy.url + "/ui/status")
    names = page.locator("#repos td:first-child").all_inner_texts()
    assert f"model:{corpus.SMALL_MODEL}" in names and f"model:{corpus.GATED_MODEL}" not in names
    assert "Next scheduled sync" in page.inner_text("main")
    response = page.goto(serve_proxy.url + "/ui/trending")
    assert response.status == 200 and "No trending snapshot yet" in page.inner_text("main")

    from mirror_core.store import Store
    from mirror_core.trending import refresh_trending

    rules = synced.settings.selection.trending.models.model_copy(update={"top": 8})
    settings = synced.settings.model_copy(update={"selection": synced.settings.selection.model_copy(update={
        "trending": synced.settings.selection.trending.model_copy(update={"models": rules})})})
    snapshot = refresh_trending(settings, Store(settings.s3))
    page.goto(serve_proxy.url + "/ui/trending")
    shown = page.locator("#trending td:nth-child(2)").all_inner_texts()
    public = [c["id"] for c in snapshot.considered if not c["gated"]]
    assert [s.removesuffix(" gated").strip() for s in shown] == public  # gated ones hidden from anonymous
    page.click(f"#trending a:text('{corpus.TRENDING_MODELS[0]}')")  # mirrored: linked to its repo page
    assert page.url.endswith(f"/ui/models/{corpus.TRENDING_MODELS[0]}")
