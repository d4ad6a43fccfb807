"""The browser example (examples/web) end to end: Twilio's JavaScript Sync SDK, browser build
(twilio-sync 4.0.1, unmodified), in headless Chromium, against a real sync-server.

A real server and the example's backend (examples/web/app.py, which mints the tokens) run as
subprocesses; two pages (alice, bob) in separate browser contexts and one Python SDK client
(carol) each add, tick and remove todos, and each must see all of it: the pages in their DOM,
the Python client in its list. Presence: both pages list both identities, the Python client
sees both keys with a TTL, and when bob leaves his key goes away. Screenshots of both pages
are saved under the test's tmp_path (their paths are printed); the pages' console messages,
uncaught errors, failed requests and WebSockets are printed too, and an uncaught error or a
console.error (the page reports every failed SDK call there) fails the test. Runs on both
backends (embedded and cluster), each with a server of its own, so the lists start empty.

Needs /usr/bin/chromium (apt-get install chromium), Playwright for Python (pip install
playwright; never `playwright install`: the system Chromium is used) and tests/js/node_modules
(cd tests/js && npm ci). Any of them missing is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from sync_sdk import Client, ListItemAddedEvent, ListItemRemovedEvent, ListItemUpdatedEvent
from tests.conftest import ServerFactory, ServerProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, WebSocket

REPO = Path(__file__).resolve().parents[1]
WEB_APP = REPO / "examples" / "web" / "app.py"
SDK_BUNDLE = (
    REPO / "tests" / "js" / "node_modules" / "twilio-sync" / "builds" / "twilio-sync.min.js"
)
CHROMIUM = Path("/usr/bin/chromium")
WAIT_S = 10.0  # the bound on every wait below

T = TypeVar("T")
Todo = tuple[str, bool, str]  # text, done, by: what a page shows and what the list holds


def require_browser_tools() -> None:
    problems = []
    if not CHROMIUM.is_file():
        problems.append(f"{CHROMIUM} not found: apt-get install -y chromium")
    if importlib.util.find_spec("playwright") is None:
        problems.append(
            "Playwright for Python is not installed: .venv/bin/pip install playwright "
            "(do not run `playwright install`: the test uses the system Chromium)"
        )
    if not SDK_BUNDLE.is_file():
        problems.append(f"{SDK_BUNDLE} not found: cd tests/js && npm ci")
    if problems:
        pytest.fail("the browser test cannot run:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def own_server(make_server: ServerFactory) -> ServerProcess:
    """A server of its own (fresh data: the page's `todos` and `presence` start empty)."""
    return make_server(log=True)


@asynccontextmanager
async def web_app(server: ServerProcess, tmp_path: Path) -> AsyncIterator[str]:
    """examples/web/app.py on a free port, with the server's credentials in its environment;
    yields its URL."""
    creds = server.credentials
    assert creds is not None
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SYNC_ACCOUNT_SID": creds.account_sid,
        "SYNC_API_KEY": creds.api_key_sid,
        "SYNC_API_SECRET": creds.api_secret,
        "SYNC_SERVICE_SID": creds.service_sid,
    }
    log_path = tmp_path / "web-app.log"
    with log_path.open("w") as log:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, str(WEB_APP), "--port", "0", "--sync-url", server.url),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + WAIT_S
        while not (found := re.search(r"web example on (http://\S+/)", log_path.read_text())):
            if proc.returncode is not None:
                raise AssertionError(f"examples/web/app.py exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"examples/web/app.py did not start in {WAIT_S} s")
            await asyncio.sleep(0.05)
        yield found.group(1)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        print(f"--- examples/web/app.py log ({log_path}):\n{log_path.read_text()}")


async def settle(what: str, read: Callable[[], Awaitable[T]], want: T) -> None:
    """Wait (at most WAIT_S) until `read()` returns `want`; fail with what it last returned."""
    deadline = time.monotonic() + WAIT_S
    while (got := await asyncio.wait_for(read(), WAIT_S)) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: after {WAIT_S} s still {got!r}, wanted {want!r}")
        await asyncio.sleep(0.05)


async def todos_on(page: Page) -> list[Todo]:
    """The todo list as the page shows it."""
    rows: list[list[Any]] = await page.locator("#todos li").evaluate_all(
        """rows => rows.map(row => [
             row.querySelector('.text').textContent,
             row.querySelector('input[type=checkbox]').checked,
             row.querySelector('.by').textContent.replace(/^by /, ''),
           ])"""
    )
    return [(str(text), bool(done), str(by)) for text, done, by in rows]


async def presence_on(page: Page) -> list[str]:
    """The "Here now" list as the page shows it."""
    return await page.locator("#presence li").all_text_contents()


async def open_page(browser: Browser, url: str, identity: str, log: list[str]) -> Page:
    """A tab of its own (own browser context: own sessionStorage) for `identity`, connected."""
    context = await browser.new_context(viewport={"width": 900, "height": 560})
    page = await context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    page.on("console", lambda msg: log.append(f"[{identity}] console.{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: log.append(f"[{identity}] pageerror: {exc}"))
    page.on("requestfailed", lambda req: log.append(f"[{identity}] request failed: {req.url}"))

    def websocket(ws: WebSocket) -> None:
        log.append(f"[{identity}] websocket opened: {ws.url}")
        ws.on("close", lambda _: log.append(f"[{identity}] websocket closed: {ws.url}"))

    page.on("websocket", websocket)
    await page.goto(f"{url}?identity={identity}")
    await settle(f"{identity}'s connection state", lambda: page.inner_text("#status"), "connected")
    return page


async def test_two_browsers_and_python_share_todos_and_presence(
    own_server: ServerProcess, tmp_path: Path
) -> None:
    require_browser_tools()
    from playwright.async_api import async_playwright

    log: list[str] = []
    try:
        async with (
            web_app(own_server, tmp_path) as url,
            async_playwright() as pw,
            own_server.client("carol") as carol,
        ):
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                await run_scenario(browser, url, carol, tmp_path, log)
            finally:
                await browser.close()
    finally:
        print("--- browser console, page errors, WebSockets:", *log, sep="\n  ")
        print(f"--- sync-server log:\n{own_server.log() or '(nothing)'}")
    assert [line for line in log if "pageerror:" in line or "console.error:" in line] == []


async def run_scenario(
    browser: Browser, url: str, carol: Client, tmp_path: Path, log: list[str]
) -> None:
    # carol, the Python SDK client, follows the list live from its events.
    todos = await carol.list("todos")
    assert (await todos.get_items()).items == []
    seen: dict[int, dict[str, Any]] = {}

    def added_or_updated(event: ListItemAddedEvent[Any] | ListItemUpdatedEvent[Any]) -> None:
        seen[event.item.index] = event.item.data

    def removed(event: ListItemRemovedEvent[Any]) -> None:
        seen.pop(event.index, None)

    todos.on("item_added", added_or_updated)
    todos.on("item_updated", added_or_updated)
    todos.on("item_removed", removed)

    async def todos_in_python() -> list[Todo]:
        return [(d["text"], d["done"], d["by"]) for _, d in sorted(seen.items())]

    alice = await open_page(browser, url, "alice", log)
    bob = await open_page(browser, url, "bob", log)
    everyone: list[tuple[str, Callable[[], Awaitable[list[Todo]]]]] = [
        ("alice's page", lambda: todos_on(alice)),
        ("bob's page", lambda: todos_on(bob)),
        ("carol's Python list", todos_in_python),
    ]

    # Each adds one, in turn (so the order of the list is known).
    await alice.fill("#new-todo", "Buy milk")
    await alice.press("#new-todo", "Enter")
    await settle("alice's page", lambda: todos_on(alice), [("Buy milk", False, "alice")])
    await bob.fill("#new-todo", "Walk the dog")
    await bob.click("#add button")
    await settle("bob's page", lambda: todos_on(bob), [
        ("Buy milk", False, "alice"),
        ("Walk the dog", False, "bob"),
    ])  # fmt: skip
    plants = await todos.push({"text": "Water the plants", "done": False, "by": "carol"})
    added = [
        ("Buy milk", False, "alice"),
        ("Walk the dog", False, "bob"),
        ("Water the plants", False, "carol"),
    ]
    for who, read in everyone:
        await settle(who, read, added)

    # Each changes someone else's: bob ticks alice's, alice removes bob's, carol ticks her own
    # from Python (the pages' tick is SyncList.update, carol's is the Python SDK's update).
    await bob.locator("#todos li", has_text="Buy milk").locator("input[type=checkbox]").check()
    await alice.locator("#todos li", has_text="Walk the dog").get_by_title("Remove").click()
    await todos.update(plants.index, {"done": True})
    changed = [("Buy milk", True, "alice"), ("Water the plants", True, "carol")]
    for who, read in everyone:
        await settle(who, read, changed)
    stored = (await todos.get_items()).items
    assert [(i.data["text"], i.data["done"], i.data["by"]) for i in stored] == changed

    # Presence: both pages list both identities; carol sees both keys, each with a TTL.
    await settle("alice's presence", lambda: presence_on(alice), ["alice (you)", "bob"])
    await settle("bob's presence", lambda: presence_on(bob), ["alice", "bob (you)"])
    presence = await carol.map("presence")

    async def here_in_python() -> list[str]:
        return [item.key for item in (await presence.get_items()).items]

    await settle("carol's presence map", here_in_python, ["alice", "bob"])
    assert all(item.date_expires is not None for item in (await presence.get_items()).items)

    for name, page in (("alice", alice), ("bob", bob)):
        shot = tmp_path / f"{name}.png"
        await page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of {name}'s page: {shot}")

    # Bob leaves the page: his presence goes at once (the page's beacon has the backend remove
    # it; the item's 60 s TTL could not make it within WAIT_S).
    await bob.goto("about:blank")
    await settle("alice's presence after bob left", lambda: presence_on(alice), ["alice (you)"])
    await settle("carol's presence map after bob left", here_in_python, ["alice"])
