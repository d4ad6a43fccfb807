"""End to end: Twilio's official JavaScript Sync SDK (npm `twilio-sync` 4.0.1, unmodified)
against the server's Twilsock front door (`/v3/wsconnect`) and Sync client API.

Each test runs one Node scenario from `tests/js/scenarios.mjs` against a real sync-server
and asserts on what the app saw: every call's result or error, and every event with its
`isLocal` and previous data (`tests/js/lib.mjs` describes the scenarios' JSON-lines output).
Events are compared as `Summary` tuples, so that events seen by the JS SDK and by the Python
SDK are checked against the same expectations.

Needs Node.js >= 20 and `npm ci` in tests/js: without them these tests fail (they do not skip).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sync_sdk import Client, SyncDocument, SyncList, SyncMap, SyncStream
from sync_server.tokens import mint_token
from tests.conftest import ServerProcess
from tests.netproxy import TcpProxy
from tests.test_acl import Rest

JS_DIR = Path(__file__).parent / "js"
SCENARIOS = JS_DIR / "scenarios.mjs"
SDK_VERSION = "4.0.1"
NODE_MAJOR_MIN = 20
SCENARIO_TIMEOUT = 30  # seconds; the Node side stops itself after this (SCENARIO_TIMEOUT_S)
WAIT = 15.0  # seconds a test waits for one line of a running scenario

Record = dict[str, Any]
# An event as the app saw it: (name, item index or key if any, data..., isLocal).
Summary = tuple[Any, ...]
OBJECTS = ("document", "list", "map", "stream")
ODD_KEY = "odd key/with?&=%+#é"  # a map key with characters the client percent-encodes
NOT_FOUND = {"document": 54100, "list": 54150, "map": 54200, "stream": 54250}


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ---- running Node scenarios ------------------------------------------------------------------


@functools.cache
def _node_or_reason() -> tuple[str | None, str]:
    node = shutil.which("node")
    if node is None:
        return None, f"`node` is not on PATH: these tests need Node.js >= {NODE_MAJOR_MIN}"
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_MAJOR_MIN:
        return None, f"{node} is {version or 'unknown'}; twilio-sync needs Node.js >= 20"
    manifest = JS_DIR / "node_modules" / "twilio-sync" / "package.json"
    if not manifest.is_file():
        return None, f"{manifest} is missing: run `cd tests/js && npm ci` first"
    installed = json.loads(manifest.read_text())["version"]
    if installed != SDK_VERSION:
        return None, (
            f"tests/js/node_modules has twilio-sync {installed}, not {SDK_VERSION}: "
            "run `cd tests/js && npm ci`"
        )
    return node, ""


def node_executable() -> str:
    """The `node` to run scenarios with; fails the test (not skips) when it cannot run them."""
    node, reason = _node_or_reason()
    if node is None:
        pytest.fail(reason, pytrace=False)
    return node


class Scenario:
    """A Node scenario process and the JSON records it has printed so far."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.records: list[Record] = []
        self.noise: list[str] = []  # stdout lines that are not records (should be none)
        self.stderr = ""
        self.ended = False
        self._changed = asyncio.Condition()
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    @classmethod
    async def start(cls, name: str, /, **params: Any) -> Scenario:
        proc = await asyncio.create_subprocess_exec(
            node_executable(),
            str(SCENARIOS),
            name,
            json.dumps(params),
            cwd=JS_DIR,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 22,  # bytes per line: a page of items is one line
            env={**os.environ, "SCENARIO_TIMEOUT_S": str(SCENARIO_TIMEOUT)},
        )
        return cls(name, proc)

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            async with self._changed:
                if isinstance(record, dict) and "type" in record:
                    self.records.append(record)
                else:
                    self.noise.append(line)
                self._changed.notify_all()
        async with self._changed:
            self.ended = True
            self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.stderr += raw.decode(errors="replace")

    def diagnostics(self) -> str:
        """What the scenario printed (its last records, anything else, its stderr), for
        assertion messages."""
        shown = self.records[-120:]
        lines = [json.dumps(record) for record in shown]
        if len(shown) < len(self.records):
            lines.insert(0, f"... {len(self.records) - len(shown)} earlier records")
        lines += [f"(not JSON) {line}" for line in self.noise]
        return (
            f"\n--- node scenario {self.name!r}, exit code {self.proc.returncode} ---\n"
            + "\n".join(lines)
            + f"\n--- stderr ---\n{self.stderr[-6000:]}"
        )

    def mark(self) -> int:
        """A position in the records: pass it as `after` to wait only for later ones."""
        return len(self.records)

    def select(self, *, after: int = 0, **fields: Any) -> list[Record]:
        """The records (from position `after`) whose fields equal `fields`."""
        return [
            record
            for record in self.records[after:]
            if all(record.get(key) == value for key, value in fields.items())
        ]

    async def wait_for(
        self, what: str, *, count: int = 1, after: int = 0, timeout: float = WAIT, **fields: Any
    ) -> Record:
        """The `count`-th record matching `fields` (see `select`), once it has arrived; fails
        with the scenario's output if the scenario ends, or `timeout` passes, first."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(
                    lambda: len(self.select(after=after, **fields)) >= count or self.ended
                )
        except TimeoutError:
            pytest.fail(f"no {what} within {timeout} s{self.diagnostics()}", pytrace=False)
        found = self.select(after=after, **fields)
        if len(found) < count:
            pytest.fail(f"the scenario ended before {what}{self.diagnostics()}", pytrace=False)
        return found[count - 1]

    async def finish(self) -> Scenario:
        """Wait for the scenario to end; fail unless it ended with `done` (exit code 0)."""
        try:
            async with asyncio.timeout(SCENARIO_TIMEOUT + 10):
                await self.proc.wait()
                await asyncio.gather(*self._readers)
        except TimeoutError:
            await self.stop()
            pytest.fail(f"the scenario did not exit{self.diagnostics()}", pytrace=False)
        last = self.records[-1]["type"] if self.records else None
        if self.proc.returncode != 0 or last != "done":
            pytest.fail(f"the scenario failed{self.diagnostics()}", pytrace=False)
        return self

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    # -- what the app saw --

    def outcomes(self, step: str) -> list[Record]:
        return [r for r in self.records if r["type"] in ("result", "error") and r["step"] == step]

    def result_record(self, step: str, nth: int = 0) -> Record:
        """The `nth` outcome of `step`, which must be a result (the call resolved)."""
        outcomes = self.outcomes(step)
        assert len(outcomes) > nth, f"no outcome #{nth} of {step}"
        record = outcomes[nth]
        assert record["type"] == "result", f"{step} failed: {record}"
        return record

    def result(self, step: str, nth: int = 0) -> Any:
        return self.result_record(step, nth)["value"]

    def results(self, step: str) -> list[Any]:
        return [self.result(step, n) for n in range(len(self.outcomes(step)))]

    def error(self, step: str) -> Record:
        """The error `step` (called once) was rejected with: {name, message, status, code}."""
        outcomes = self.outcomes(step)
        assert len(outcomes) == 1, f"{len(outcomes)} outcomes of {step}"
        assert outcomes[0]["type"] == "error", f"{step} should have failed: {outcomes[0]}"
        error: Record = outcomes[0]["error"]
        return error

    def states(self, client: str) -> list[str]:
        return [r["state"] for r in self.select(type="state", client=client)]

    @contextlib.contextmanager
    def explained(self) -> Iterator[None]:
        """Append the scenario's output to the message of any assertion failing inside."""
        try:
            yield
        except AssertionError as exc:
            exc.args = (f"{exc.args[0] if exc.args else ''}{self.diagnostics()}", *exc.args[1:])
            raise

    def summaries(self, client: str, kind: str) -> list[Summary]:
        """The events `client` saw on its `kind` object, in order."""
        return [js_summary(r) for r in self.select(type="event", client=client, object=kind)]


@contextlib.asynccontextmanager
async def scenario(name: str, /, **params: Any) -> AsyncIterator[Scenario]:
    """A running scenario, for tests that act while it runs; killed on the way out."""
    run = await Scenario.start(name, **params)
    try:
        yield run
    finally:
        await run.stop()


async def run_scenario(name: str, /, **params: Any) -> Scenario:
    """Run a scenario to its end (it must succeed) and return its records."""
    async with scenario(name, **params) as run:
        return await run.finish()


def js_client(
    server: ServerProcess, identity: str, *, url: str | None = None, token: str | None = None
) -> dict[str, str]:
    """A scenario client entry: where it connects and with which token."""
    return {"url": url or server.url, "token": token or server.token(identity)}


# ---- comparing events --------------------------------------------------------------------------


def js_summary(event: Record) -> Summary:
    name, local = event["name"], event["isLocal"]
    if name == "updated":
        return (name, event["data"], event["previousData"], local)
    if name == "removed":
        return (
            (name, event["previousData"], local) if event["object"] == "document" else (name, local)
        )
    if name == "messagePublished":
        return (name, event["message"]["data"], local)
    if name == "itemRemoved":
        subject = event["index"] if "index" in event else event["key"]
        return (name, subject, event["previousItemData"], local)
    item = event["item"]
    subject = item["index"] if "index" in item else item["key"]
    if name == "itemAdded":
        return (name, subject, item["data"], local)
    assert name == "itemUpdated", event
    return (name, subject, item["data"], event["previousItemData"], local)


def item_subject(item: Record) -> Any:
    return item["index"] if "index" in item else item["key"]


def assert_expires_in(value: str | None, ttl: int, at_ms: int) -> None:
    """`value` (an ISO date) is `ttl` seconds after `at_ms` (ms since the epoch), give or take."""
    assert value is not None, f"no expiry, wanted one {ttl} s ahead"
    expires = datetime.fromisoformat(value.replace("Z", "+00:00"))
    expected = datetime.fromtimestamp(at_ms / 1000).astimezone()
    assert abs(expires - (expected + timedelta(seconds=ttl))) < timedelta(seconds=5), (
        f"expires {expires}, wanted about {ttl} s after {expected}"
    )


def token_expiry(token: str) -> int:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    exp: int = claims["exp"]
    return exp


async def assert_gone(server: ServerProcess, kind: str, sid: str) -> None:
    """The object is gone for the REST API too (404)."""
    rest = Rest(server)
    try:
        response = await rest.fetch(kind, sid)
    finally:
        await rest.aclose()
    assert response.status_code == 404, f"{kind} {sid} after removal: {response.text}"


# ---- Documents, Lists, Maps, Streams: every operation and event, writer and observer ----------
#
# A writes and B observes (B writes once at the end, which A sees as a remote change); C opens
# afresh to read what the server holds. `run_and_check` can put B and C on another node.


async def run_and_check(
    kind: str, server: ServerProcess, other: ServerProcess | None = None
) -> None:
    """Run the `kind` scenario (A on `server`, B and C on `other` if given) and check it."""
    observer_url = (other or server).url
    clients = {
        "A": js_client(server, "alice"),
        "B": js_client(server, "bob", url=observer_url),
        "C": js_client(server, "carol", url=observer_url),
    }
    params = {"odd": ODD_KEY} if kind == "map" else {}
    run = await run_scenario(kind, clients=clients, name=uniq(f"js-{kind}"), **params)
    with run.explained():
        await CHECKS[kind](run, server)


async def check_document(run: Scenario, server: ServerProcess) -> None:
    first = {"title": "first", "n": 1}
    updated = {**first, "extra": True}  # update: a shallow merge
    mutated = {**updated, "n": 2}
    from_b = {"title": "from B"}
    assert [run.result(s) for s in ("A.set", "A.update", "A.mutate", "B.set")] == [
        first,
        updated,
        mutated,
        from_b,
    ]
    assert run.summaries("A", "document") == [
        ("updated", first, {}, True),
        ("updated", updated, first, True),
        ("updated", mutated, updated, True),
        ("updated", from_b, mutated, False),
        ("removed", from_b, True),
    ]
    assert run.summaries("B", "document") == [
        ("updated", first, {}, False),
        ("updated", updated, first, False),
        ("updated", mutated, updated, False),
        ("updated", from_b, mutated, True),
        ("removed", from_b, False),
    ]

    opened, final = run.result("A.open.document"), run.result("A.document")
    assert final["lastEventId"] > opened["lastEventId"]
    assert final["revision"] != opened["revision"]
    assert_expires_in(final["dateExpires"], 3600, run.result_record("A.setTtl")["t"])
    # A fresh client reads the data and the expiry from the server.
    fresh = run.result("C.open.document")
    assert (fresh["sid"], fresh["uniqueName"], fresh["data"]) == (
        opened["sid"],
        opened["uniqueName"],
        from_b,
    )
    assert_expires_in(fresh["dateExpires"], 3600, run.result_record("A.setTtl")["t"])
    await assert_gone(server, "document", opened["sid"])


async def check_list(run: Scenario, server: ServerProcess) -> None:
    pushed = run.results("A.push")
    assert [(it["index"], it["data"]) for it in pushed] == [(n, {"n": n}) for n in range(3)]
    assert run.result("A.get")["data"] == {"n": 1}
    set_0, updated_1, mutated_2 = {"n": 0, "v": "set"}, {"n": 1, "v": "updated"}, {"n": 20}
    assert run.result("A.set")["data"] == set_0
    assert run.result("A.set")["revision"] != pushed[0]["revision"]
    assert run.result("A.update")["data"] == updated_1  # update: a shallow merge
    assert run.result("A.mutate")["data"] == mutated_2

    def expected(local: bool) -> list[Summary]:
        return [
            *(("itemAdded", n, {"n": n}, local) for n in range(3)),
            ("itemUpdated", 0, set_0, {"n": 0}, local),
            ("itemUpdated", 1, updated_1, {"n": 1}, local),
            ("itemUpdated", 2, mutated_2, {"n": 2}, local),
            ("itemRemoved", 1, updated_1, local),
            ("itemAdded", 3, {"from": "B"}, not local),
            ("removed", local),
        ]

    assert run.summaries("A", "list") == expected(True)
    assert run.summaries("B", "list") == expected(False)
    # Event ids are integers that grow with every change, in delivery order.
    ids = [e["item"]["lastEventId"] for e in run.select(type="event", client="B") if "item" in e]
    assert ids == sorted(set(ids)) and all(isinstance(i, int) for i in ids), ids

    assert_expires_in(run.result("A.list")["dateExpires"], 7200, run.result_record("A.setTtl")["t"])
    # What a fresh client reads from the server: items, the item TTL, the list TTL.
    assert run.result("C.open.list")["sid"] == run.result("A.open.list")["sid"]
    assert_expires_in(
        run.result("C.open.list")["dateExpires"], 7200, run.result_record("A.setTtl")["t"]
    )
    assert (run.result("C.get")["index"], run.result("C.get")["data"]) == (2, mutated_2)
    assert (run.error("C.getRemoved")["status"], run.error("C.getRemoved")["code"]) == (404, 54151)
    page = run.result("C.getItems")
    assert [(it["index"], it["data"]) for it in page["items"]] == [
        (0, set_0),
        (2, mutated_2),
        (3, {"from": "B"}),
    ]
    assert (page["hasNextPage"], page["hasPrevPage"]) == (False, False)
    expiring = page["items"][0]
    assert_expires_in(expiring["dateExpires"], 3600, run.result_record("A.setItemTtl")["t"])
    assert [it["dateExpires"] for it in page["items"][1:]] == [None, None]
    await assert_gone(server, "list", run.result("A.open.list")["sid"])


async def check_map(run: Scenario, server: ServerProcess) -> None:
    v2w = {"v": 2, "w": True}
    assert [it["data"] for it in run.results("A.set")] == [{"v": 1}, {"v": 2}, {"odd": True}]
    assert [(it["key"], it["data"]) for it in run.results("A.update")] == [
        ("a", v2w),  # update: a shallow merge into the existing item
        ("b", {"fresh": True}),  # update of a missing key creates it
    ]
    assert [(it["key"], it["data"]) for it in run.results("A.mutate")] == [
        ("c", {"count": 1}),  # mutate of a missing key starts from {}
        ("c", {"count": 2}),
    ]
    assert (run.result("A.get")["key"], run.result("A.get")["data"]) == ("a", v2w)

    def expected(local: bool) -> list[Summary]:
        return [
            ("itemAdded", "a", {"v": 1}, local),
            ("itemUpdated", "a", {"v": 2}, {"v": 1}, local),
            ("itemUpdated", "a", v2w, {"v": 2}, local),
            ("itemAdded", "b", {"fresh": True}, local),
            ("itemAdded", "c", {"count": 1}, local),
            ("itemUpdated", "c", {"count": 2}, {"count": 1}, local),
            ("itemAdded", ODD_KEY, {"odd": True}, local),
            ("itemRemoved", "b", {"fresh": True}, local),
            ("itemAdded", "fromB", {"by": "B"}, not local),
            ("removed", local),
        ]

    assert run.summaries("A", "map") == expected(True)
    assert run.summaries("B", "map") == expected(False)

    assert_expires_in(run.result("A.map")["dateExpires"], 7200, run.result_record("A.setTtl")["t"])
    assert_expires_in(
        run.result("C.open.map")["dateExpires"], 7200, run.result_record("A.setTtl")["t"]
    )
    assert (run.result("C.get")["key"], run.result("C.get")["data"]) == (ODD_KEY, {"odd": True})
    assert (run.error("C.getRemoved")["status"], run.error("C.getRemoved")["code"]) == (404, 54201)
    page = run.result("C.getItems")
    by_key = {"a": v2w, "c": {"count": 2}, ODD_KEY: {"odd": True}, "fromB": {"by": "B"}}
    assert [(it["key"], it["data"]) for it in page["items"]] == sorted(by_key.items())
    expiry = {it["key"]: it["dateExpires"] for it in page["items"]}
    assert_expires_in(expiry.pop("a"), 3600, run.result_record("A.setItemTtl")["t"])
    assert set(expiry.values()) == {None}
    await assert_gone(server, "map", run.result("A.open.map")["sid"])


async def check_stream(run: Scenario, server: ServerProcess) -> None:
    assert run.summaries("A", "stream") == [
        ("messagePublished", {"n": 1}, True),
        ("messagePublished", {"n": 2}, True),
        ("messagePublished", {"from": "B"}, False),
        ("removed", True),
    ]
    assert run.summaries("B", "stream") == [
        ("messagePublished", {"n": 1}, False),
        ("messagePublished", {"n": 2}, False),
        ("messagePublished", {"from": "B"}, True),
        ("removed", False),
    ]
    # Every observer sees the message SID its publisher got back.
    published = [m["sid"] for m in [*run.results("A.publish"), *run.results("B.publish")]]
    for client in ("A", "B"):
        seen = [e["message"]["sid"] for e in run.select(client=client, name="messagePublished")]
        assert seen == published
    assert len(set(published)) == 3, published
    stream = run.result("A.stream")
    assert_expires_in(stream["dateExpires"], 3600, run.result_record("A.setTtl")["t"])
    await assert_gone(server, "stream", stream["sid"])


CHECKS = {"document": check_document, "list": check_list, "map": check_map, "stream": check_stream}


async def test_document_set_update_mutate_ttl_remove(server: ServerProcess) -> None:
    await run_and_check("document", server)


async def test_list_operations_and_events(server: ServerProcess) -> None:
    await run_and_check("list", server)


async def test_map_operations_and_events(server: ServerProcess) -> None:
    await run_and_check("map", server)


async def test_stream_publish_and_remove(server: ServerProcess) -> None:
    await run_and_check("stream", server)


def expected_pages(ids: list[Any], query: Record, moves: list[str]) -> list[Record]:
    """The pages getItems(query) and then `moves` ('nextPage', 'prevPage', or 'rest': nextPage
    to the end) give over `ids` (sorted ascending), each as {items (ids), hasNextPage,
    hasPrevPage}."""
    order, size = query.get("order", "asc"), query.get("pageSize", 50)
    seq = ids if order == "asc" else ids[::-1]
    n = len(seq)
    begin = seq.index(query["from"]) if "from" in query else 0
    pages = [(begin, min(begin + size, n))]
    for move in moves:
        while True:
            begin, end = pages[-1]
            if move == "prevPage":
                pages.append((max(0, begin - size), begin))
            elif end < n:
                pages.append((end, min(end + size, n)))
            if move != "rest" or pages[-1][1] >= n:
                break
    return [{"items": seq[b:e], "hasNextPage": e < n, "hasPrevPage": b > 0} for b, e in pages]


async def test_list_and_map_paging(server: ServerProcess) -> None:
    count, removed = 25, 7
    indexes = [n for n in range(count) if n != removed]
    keys = sorted(f"k{n}" for n in indexes)  # by key, as strings: k0, k1, k10, ...
    # (name, query, moves); `from` is the 13th index or key.
    walks: list[tuple[str, Record, list[str]]] = [
        ("all", {}, []),
        ("asc", {"pageSize": 5}, ["rest"]),
        ("desc", {"pageSize": 4, "order": "desc"}, ["nextPage", "prevPage"]),
        ("fromAsc", {"pageSize": 3, "from": 12}, ["nextPage", "prevPage", "prevPage"]),
        ("fromDesc", {"pageSize": 3, "from": 12, "order": "desc"}, ["nextPage"]),
    ]
    ids: dict[str, list[Any]] = {"list": indexes, "map": keys}
    plan: list[Record] = [
        {
            "object": kind,
            "name": name,
            "query": {**query, "from": ids[kind][query["from"]]} if "from" in query else query,
            "moves": moves,
        }
        for kind in ("list", "map")
        for name, query, moves in walks
    ]
    run = await run_scenario(
        "paging",
        clients={"A": js_client(server, "alice"), "C": js_client(server, "carol")},
        list=uniq("js-paged-list"),
        map=uniq("js-paged-map"),
        count=count,
        removed=removed,
        walks=plan,
    )
    with run.explained():
        for walk in plan:
            label = f"{walk['object']}.{walk['name']}"
            pages = [
                {**page, "items": [item_subject(it) for it in page["items"]]}
                for page in run.results(label)
            ]
            assert pages == expected_pages(ids[walk["object"]], walk["query"], walk["moves"]), label
        # Items come with their data.
        assert [it["data"] for it in run.result("list.all")["items"]] == [{"n": n} for n in indexes]
        assert {it["key"]: it["data"] for it in run.result("map.all")["items"]} == {
            f"k{n}": {"n": n} for n in indexes
        }


async def test_open_modes(server: ServerProcess) -> None:
    name = uniq("js-modes")
    run = await run_scenario(
        "openModes",
        clients={"A": js_client(server, "alice"), "B": js_client(server, "bob")},
        name=name,
        missing=uniq("js-missing"),
    )
    with run.explained():
        for kind in OBJECTS:
            missing = run.error(f"{kind}.openExistingMissing")
            assert (missing["status"], missing["code"]) == (404, NOT_FOUND[kind]), missing
            created = run.result(f"{kind}.createNew")
            assert created["uniqueName"] == f"{name}-{kind}"
            duplicate = run.error(f"{kind}.createNewExisting")
            assert (duplicate["status"], duplicate["code"]) == (409, 54301), duplicate
            anonymous = run.result(f"{kind}.createAnonymous")
            assert anonymous["uniqueName"] is None
            assert anonymous["sid"][:2] == created["sid"][:2]
            assert anonymous["sid"] != created["sid"]
            assert run.result(f"{kind}.openExisting")["sid"] == created["sid"]
            assert run.result(f"{kind}.openBySid")["uniqueName"] == created["uniqueName"]


# ---- access control ------------------------------------------------------------------------------


async def test_acl_refuses_a_js_client_without_permission(fresh_server: ServerProcess) -> None:
    names = {kind: uniq(f"js-acl-{kind}") for kind in ("document", "list", "map")}
    rest = Rest(fresh_server)
    try:
        sids = {
            kind: await rest.create(kind, name, {"v": 0} if kind == "document" else None)
            for kind, name in names.items()
        }
        await rest.set_acl(True)
        await rest.grant("document", sids["document"], "reader", read=True)
        reader, outsider = await asyncio.gather(
            run_scenario("acl", clients={"A": js_client(fresh_server, "reader")}, names=names),
            run_scenario("acl", clients={"A": js_client(fresh_server, "outsider")}, names=names),
        )
    finally:
        await rest.aclose()

    def forbidden(run: Scenario, step: str) -> None:
        error = run.error(step)
        assert (error["status"], error["code"]) == (403, 54007), f"{step}: {error}"

    with outsider.explained():
        for kind in names:
            forbidden(outsider, f"A.open.{kind}")
    # `read` lets the reader open the document (and see its data), not write to it; the
    # other objects stay closed to it.
    with reader.explained():
        doc = reader.result("A.open.document")
        assert (doc["sid"], doc["data"]) == (sids["document"], {"v": 0})
        forbidden(reader, "A.set.document")
        forbidden(reader, "A.open.list")
        forbidden(reader, "A.open.map")


# ---- tokens ----------------------------------------------------------------------------------------


async def test_update_token_on_a_live_connection(server: ServerProcess) -> None:
    run = await run_scenario(
        "tokenUpdate",
        clients={"A": js_client(server, "alice"), "B": js_client(server, "bob")},
        name=uniq("js-token"),
        nextToken=server.token("alice", ttl=7200),
    )
    with run.explained():
        run.result("A.updateToken")  # resolved
        assert run.result("A.connectionState") == "connected"
        # The same connection carries on: no reconnect, no error, the subscription still live.
        states = run.states("A")
        assert states.count("connected") == 1, states
        assert "connecting" not in states[states.index("connected") :], states
        assert not run.select(type="connectionError")
        assert run.summaries("A", "document") == [
            ("updated", {"token": "first"}, {}, True),
            ("updated", {"token": "next"}, {"token": "first"}, True),
            ("updated", {"from": "B"}, {"token": "next"}, False),
        ]


async def test_token_with_a_wrong_secret_is_denied(server: ServerProcess) -> None:
    creds = server.credentials
    assert creds is not None
    forged = mint_token(
        account_sid=creds.account_sid,
        api_key_sid=creds.api_key_sid,
        api_secret="x" * 32,
        service_sid=creds.service_sid,
        identity="alice",
    )
    run = await run_scenario(
        "denied",
        clients={"A": js_client(server, "alice", token=forged)},
        name=uniq("js-denied"),
        goodToken=server.token("alice"),
    )
    with run.explained():
        states = run.states("A")
        assert "denied" in states, states
        assert states.index("denied") < states.index("connected"), states
        errors = run.select(type="connectionError", client="A")
        assert errors, "no connectionError"
        error = errors[0]
        assert (error["terminal"], error["httpStatusCode"], error["errorCode"]) == (
            True,
            401,
            20107,
        ), error
        assert "signature" in error["message"].lower(), error
        run.error("A.openWhileDenied")  # calls fail while denied...
        assert run.result("A.set") == {"recovered": True}  # ...and work after updateToken


async def test_token_about_to_expire_then_expired(server: ServerProcess) -> None:
    token = server.token("alice", ttl=4)  # < 180 s: "about to expire" from the start
    expires_ms = token_expiry(token) * 1000
    run = await run_scenario(
        "expiry",
        clients={"A": js_client(server, "alice", token=token)},
        name=uniq("js-expiry"),
        freshToken=server.token("alice"),
    )
    with run.explained():
        connected = run.select(type="state", client="A", state="connected")
        (about,) = run.select(type="tokenAboutToExpire", client="A")
        (expired,) = run.select(type="tokenExpired", client="A")
        # Sent as soon as the client is connected (the token has less than 3 minutes left)...
        assert abs(about["t"] - connected[0]["t"]) < 2000
        assert about["t"] < expires_ms
        # ...and the token expires at its `exp`.
        assert expires_ms - 500 <= expired["t"] <= expires_ms + 5000, (
            f"tokenExpired {expired['t'] - expires_ms} ms after exp"
        )
        # Expired means off until the app brings a new token: no reconnect before updateToken.
        renewed_at = run.result_record("A.updateToken")["t"]
        states = run.select(type="state", client="A")
        between = [r["state"] for r in states if expired["t"] <= r["t"] < renewed_at]
        assert "connected" not in between, between
        assert run.result("A.connectionState") in ("disconnected", "denied")
        assert run.result("A.set") == {"renewed": True}


# ---- the JS SDK, the Python SDK and the REST API on the same objects ----------------------

# The writes of scenarios.mjs `write`, `write_with_sdk` and `write_with_rest` (on a document
# created with {"v": 0}), as every other client sees them.
INTEROP_EVENTS: dict[str, list[Summary]] = {
    "document": [
        ("updated", {"v": 1}, {"v": 0}, False),
        ("updated", {"v": 2}, {"v": 1}, False),
        ("removed", {"v": 2}, False),
    ],
    "list": [
        ("itemAdded", 0, {"n": 0}, False),
        ("itemAdded", 1, {"n": 1}, False),
        ("itemUpdated", 0, {"n": 10}, {"n": 0}, False),
        ("itemRemoved", 1, {"n": 1}, False),
        ("removed", False),
    ],
    "map": [
        ("itemAdded", "a", {"v": 1}, False),
        ("itemUpdated", "a", {"v": 2}, {"v": 1}, False),
        ("itemRemoved", "a", {"v": 2}, False),
        ("removed", False),
    ],
    "stream": [("messagePublished", {"m": 1}, False), ("removed", False)],
}


async def create_interop_objects(rest: Rest) -> tuple[dict[str, str], dict[str, str]]:
    """One object of each type, created over REST: (names, sids)."""
    names = {kind: uniq(f"js-interop-{kind}") for kind in OBJECTS}
    sids = {
        kind: await rest.create(kind, name, {"v": 0} if kind == "document" else None)
        for kind, name in names.items()
    }
    return names, sids


async def write_with_sdk(client: Client, names: dict[str, str]) -> None:
    doc = await client.document(names["document"])
    await doc.set({"v": 1})
    await doc.set({"v": 2})
    lst = await client.list(names["list"])
    await lst.push({"n": 0})
    await lst.push({"n": 1})
    await lst.set(0, {"n": 10})
    await lst.remove(1)
    mp = await client.map(names["map"])
    await mp.set("a", {"v": 1})
    await mp.set("a", {"v": 2})
    await mp.remove("a")
    stream = await client.stream(names["stream"])
    await stream.publish_message({"m": 1})
    await doc.remove_document()
    await lst.remove_list()
    await mp.remove_map()
    await stream.remove_stream()


async def write_with_rest(rest: Rest, sids: dict[str, str]) -> None:
    async def call(method: str, path: str, **form: Any) -> None:
        data = {k: json.dumps(v) if k == "Data" else v for k, v in form.items()}
        response = await rest.http.request(method, rest.base + path, data=data or None)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"

    doc, lst = f"/Documents/{sids['document']}", f"/Lists/{sids['list']}"
    mp, stream = f"/Maps/{sids['map']}", f"/Streams/{sids['stream']}"
    await call("POST", doc, Data={"v": 1})
    await call("POST", doc, Data={"v": 2})
    await call("POST", f"{lst}/Items", Data={"n": 0})
    await call("POST", f"{lst}/Items", Data={"n": 1})
    await call("POST", f"{lst}/Items/0", Data={"n": 10})
    await call("DELETE", f"{lst}/Items/1")
    await call("POST", f"{mp}/Items", Key="a", Data={"v": 1})
    await call("POST", f"{mp}/Items/a", Data={"v": 2})
    await call("DELETE", f"{mp}/Items/a")
    await call("POST", f"{stream}/Messages", Data={"m": 1})
    for path in (doc, lst, mp, stream):
        await call("DELETE", path)


@pytest.mark.parametrize("writer", ["python-sdk", "rest"])
async def test_python_sdk_and_rest_writes_reach_the_js_client(
    server: ServerProcess, writer: str
) -> None:
    rest = Rest(server)
    try:
        names, sids = await create_interop_objects(rest)
        expect = {kind: len(events) for kind, events in INTEROP_EVENTS.items()}
        js = {"A": js_client(server, "js-watcher")}
        async with scenario("watch", clients=js, names=names, expect=expect) as run:
            await run.wait_for("the JS client's subscriptions", type="ready")
            if writer == "rest":
                await write_with_rest(rest, sids)
            else:
                async with server.client("py-writer") as client:
                    await write_with_sdk(client, names)
            await run.finish()
    finally:
        await rest.aclose()
    with run.explained():
        for kind, events in INTEROP_EVENTS.items():
            assert run.summaries("A", kind) == events, kind


def observe_with_sdk(
    doc: SyncDocument[Any], lst: SyncList[Any], mp: SyncMap[Any], stream: SyncStream[Any]
) -> dict[str, asyncio.Queue[Summary]]:
    """Queues receiving every event of the Python SDK's handles, as summaries."""
    queues: dict[str, asyncio.Queue[Summary]] = {kind: asyncio.Queue() for kind in OBJECTS}
    put = {kind: queue.put_nowait for kind, queue in queues.items()}
    doc.on("updated", lambda e: put["document"](("updated", e.data, e.previous_data, e.is_local)))
    doc.on("removed", lambda e: put["document"](("removed", e.previous_data, e.is_local)))
    lst.on(
        "item_added", lambda e: put["list"](("itemAdded", e.item.index, e.item.data, e.is_local))
    )
    lst.on(
        "item_updated",
        lambda e: put["list"](
            ("itemUpdated", e.item.index, e.item.data, e.previous_item_data, e.is_local)
        ),
    )
    lst.on(
        "item_removed",
        lambda e: put["list"](("itemRemoved", e.index, e.previous_item_data, e.is_local)),
    )
    lst.on("removed", lambda e: put["list"](("removed", e.is_local)))
    mp.on("item_added", lambda e: put["map"](("itemAdded", e.item.key, e.item.data, e.is_local)))
    mp.on(
        "item_updated",
        lambda e: put["map"](
            ("itemUpdated", e.item.key, e.item.data, e.previous_item_data, e.is_local)
        ),
    )
    mp.on(
        "item_removed",
        lambda e: put["map"](("itemRemoved", e.key, e.previous_item_data, e.is_local)),
    )
    mp.on("removed", lambda e: put["map"](("removed", e.is_local)))
    stream.on(
        "message_published",
        lambda e: put["stream"](("messagePublished", e.message.data, e.is_local)),
    )
    stream.on("removed", lambda e: put["stream"](("removed", e.is_local)))
    return queues


async def collect(queue: asyncio.Queue[Summary], count: int) -> list[Summary]:
    """The next `count` items of `queue`, or those that came with at most WAIT s between."""
    items: list[Summary] = []
    with contextlib.suppress(TimeoutError):
        while len(items) < count:
            items.append(await asyncio.wait_for(queue.get(), WAIT))
    return items


async def test_js_writes_reach_the_python_sdk(server: ServerProcess) -> None:
    rest = Rest(server)
    try:
        names, _ = await create_interop_objects(rest)
    finally:
        await rest.aclose()
    async with server.client("py-observer") as client:
        queues = observe_with_sdk(  # subscribed: opening waits for it
            await client.document(names["document"]),
            await client.list(names["list"]),
            await client.map(names["map"]),
            await client.stream(names["stream"]),
        )
        run = await run_scenario(
            "write", clients={"A": js_client(server, "js-writer")}, names=names
        )
        with run.explained():
            for kind, events in INTEROP_EVENTS.items():
                assert await collect(queues[kind], len(events)) == events, kind
                assert queues[kind].empty(), f"{kind}: more events than expected"


# ---- a cut connection --------------------------------------------------------------------------


async def test_items_written_while_cut_off_arrive_once_in_order(server: ServerProcess) -> None:
    missed = 5
    name = uniq("js-cut")
    proxy = TcpProxy(server.port)
    await proxy.start()
    try:
        async with server.client("py-writer") as writer:
            lst = await writer.list(name)
            js = {"A": js_client(server, "js-watcher", url=proxy.url)}
            expect = {"list": missed + 2}  # one live item, the missed ones, one after
            async with scenario("watch", clients=js, names={"list": name}, expect=expect) as run:
                await run.wait_for("the JS client's subscription", type="ready")
                await lst.push({"n": 0})
                await run.wait_for("the live item", type="event", name="itemAdded")
                mark = run.mark()
                proxy.accepting = False  # the JS client cannot come back until we say so
                assert proxy.cut_all() >= 1
                await run.wait_for("the cut", type="state", state="connecting", after=mark)
                for n in range(1, missed + 1):
                    await lst.push({"n": n})
                proxy.accepting = True
                await run.wait_for("a reconnect", type="state", state="connected", after=mark)
                await lst.push({"n": missed + 1})
                await run.finish()
    finally:
        await proxy.close()
    with run.explained():
        assert run.summaries("A", "list") == [
            ("itemAdded", n, {"n": n}, False) for n in range(missed + 2)
        ]
        assert run.states("A").count("connected") == 2, run.states("A")
        established = run.select(type="subscription", client="A", state="established")
        assert len(established) == 2  # subscribed again after the reconnect


# ---- several nodes --------------------------------------------------------------------------------


@pytest.fixture
def other_node(server: ServerProcess, backend: str) -> Iterator[ServerProcess]:
    """Another node of `server`'s cluster (cluster backend only)."""
    if backend != "cluster":
        pytest.skip("a second node of the same cluster needs the cluster backend")
    node = server.node()
    node.start()
    yield node
    node.stop()


async def test_js_clients_on_two_nodes_see_each_other(
    server: ServerProcess, other_node: ServerProcess
) -> None:
    # A writes through `server`; B observes (and writes) and C reads through `other_node`.
    for kind in OBJECTS:
        await run_and_check(kind, server, other_node)


async def test_a_draining_node_sends_the_js_client_elsewhere_and_it_misses_nothing(
    fresh_server: ServerProcess,
) -> None:
    """SIGTERM: the node answers, then sends Twilsock `close` 308 (offload); the JS client
    reconnects once the node is back on the same data and catches up, every item once."""
    server = fresh_server
    name = uniq("js-drain")
    async with server.client("py-writer", command_timeout=20.0) as writer:
        lst = await writer.list(name)
        js = {"A": js_client(server, "js-watcher")}
        expect = {"list": 4}
        async with scenario("watch", clients=js, names={"list": name}, expect=expect) as run:
            await run.wait_for("the JS client's subscription", type="ready")
            await lst.push({"n": 0})
            await run.wait_for("the live item", type="event", name="itemAdded")
            mark = run.mark()
            assert server.proc is not None
            server.proc.send_signal(signal.SIGTERM)
            await run.wait_for("the offload", type="state", state="connecting", after=mark)
            assert await asyncio.to_thread(server.proc.wait, 10) == 0
            server.stop()
            server.start()
            for n in (1, 2):  # written while the JS client is away (the writer waits too)
                await lst.push({"n": n})
            await run.wait_for("a reconnect", type="state", state="connected", after=mark)
            await lst.push({"n": 3})
            await run.finish()
    with run.explained():
        assert run.summaries("A", "list") == [("itemAdded", n, {"n": n}, False) for n in range(4)]
        assert run.states("A").count("connected") == 2, run.states("A")
