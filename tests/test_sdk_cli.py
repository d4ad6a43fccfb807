"""The `sync-sdk` command line, run as a real subprocess against a real server.

Every command is the installed console script (`.venv/bin/sync-sdk`, or `python -m sync_sdk`
where the script is not installed); the async SDK cross-checks what it wrote and writes what
`watch` must print. Every wait is bounded."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from sync_sdk import (
    Client,
    ListItemNotFoundError,
    MapItemNotFoundError,
    StreamMessagePublishedEvent,
)
from sync_sdk.rest import mint_access_token
from tests.conftest import ServerProcess, next_event

_SCRIPT = Path(sys.executable).with_name("sync-sdk")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sync_sdk"]
RUN_TIMEOUT = 60.0  # one command (includes the interpreter start on a loaded machine)
EVENT_TIMEOUT = 15.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any SYNC_* setting (so only the test's apply)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def run(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=base_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def conn(server: ServerProcess, identity: str = "cli") -> dict[str, str]:
    return {"SYNC_URL": server.url, "SYNC_TOKEN": server.token(identity)}


def ok(
    server: ServerProcess,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> str:
    """Run a command against `server` that must succeed; its stdout."""
    proc = run(args, env={**conn(server), **(env or {})}, stdin=stdin)
    assert proc.returncode == 0, (args, proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stdout


async def aok(server: ServerProcess, *args: str, stdin: str | None = None) -> str:
    """`ok` off the event loop, so the test's own SDK client keeps running meanwhile."""
    return await asyncio.to_thread(ok, server, *args, stdin=stdin)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A failure: non-zero exit, no traceback, exactly one line on stderr holding `needles`."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ---- round trips --------------------------------------------------------------------------


async def test_document_set_update_get_round_trip(server: ServerProcess, alice: Client) -> None:
    name = unique("doc")
    out = await aok(server, "set", "document", name, '{"theme": "dark", "n": 1}')
    assert json.loads(out) == {"theme": "dark", "n": 1}
    out = await aok(server, "update", "document", name, '{"lang": "en"}')
    assert json.loads(out) == {"theme": "dark", "n": 1, "lang": "en"}
    assert json.loads(await aok(server, "get", "document", name)) == {
        "theme": "dark",
        "n": 1,
        "lang": "en",
    }
    doc = await alice.document(name, mode="open_existing")
    assert doc.data == {"theme": "dark", "n": 1, "lang": "en"}
    await doc.set({"theme": "light"})
    assert json.loads(await aok(server, "get", "document", name)) == {"theme": "light"}
    await aok(server, "remove", "document", name)
    proc = await asyncio.to_thread(run, ["get", "document", name], env=conn(server))
    assert_one_line_error(proc, "not found (54100)")


async def test_map_set_get_update_remove_round_trip(server: ServerProcess, alice: Client) -> None:
    name = unique("presence")
    item = json.loads(await aok(server, "set", "map", name, "alice", '{"online": true}'))
    assert item["key"] == "alice" and item["data"] == {"online": True}
    assert item["date_expires"] is None
    assert json.loads(await aok(server, "get", "map", name, "alice")) == {"online": True}
    mp = await alice.map(name, mode="open_existing")
    assert (await mp.get("alice")).data == {"online": True}
    await mp.set("bob", {"online": False})
    assert json.loads(await aok(server, "get", "map", name, "bob")) == {"online": False}
    merged = json.loads(await aok(server, "update", "map", name, "bob", '{"away": 1}'))
    assert merged["data"] == {"online": False, "away": 1}
    with_ttl = json.loads(await aok(server, "set", "map", name, "carol", "{}", "--ttl", "300"))
    assert with_ttl["date_expires"] is not None
    await aok(server, "remove", "map", name, "alice")
    with pytest.raises(MapItemNotFoundError):
        await mp.get("alice")
    assert (await mp.get("bob")).data == {"online": False, "away": 1}


async def test_list_push_set_get_remove_round_trip(server: ServerProcess, alice: Client) -> None:
    name = unique("tasks")
    first = json.loads(await aok(server, "push", "list", name, '{"title": "a"}'))
    second = json.loads(await aok(server, "push", "list", name, '{"title": "b"}'))
    assert second["index"] > first["index"]
    await aok(server, "set", "list", name, str(second["index"]), '{"title": "B", "done": true}')
    assert json.loads(await aok(server, "get", "list", name, str(second["index"]))) == {
        "title": "B",
        "done": True,
    }
    lst = await alice.list(name, mode="open_existing")
    assert (await lst.get(first["index"])).data == {"title": "a"}
    await aok(server, "remove", "list", name, str(first["index"]))
    with pytest.raises(ListItemNotFoundError):
        await lst.get(first["index"])
    # data from stdin
    piped = json.loads(await aok(server, "push", "list", name, "-", stdin='{"from": "stdin"}'))
    assert (await lst.get(piped["index"])).data == {"from": "stdin"}


async def test_stream_publish_reaches_a_subscriber(server: ServerProcess, alice: Client) -> None:
    name = unique("chat")
    stream = await alice.stream(name)
    got: asyncio.Queue[StreamMessagePublishedEvent[Any]] = asyncio.Queue()
    stream.on("message_published", got.put_nowait)
    out = json.loads(await aok(server, "publish", "stream", name, '{"text": "hi"}'))
    assert out["data"] == {"text": "hi"} and out["sid"].startswith("TZ")
    event = await next_event(got, EVENT_TIMEOUT)
    assert event.message.data == {"text": "hi"} and event.message.sid == out["sid"]
    await aok(server, "remove", "stream", name)
    proc = await asyncio.to_thread(run, ["publish", "stream", name, "{}"], env=conn(server))
    assert proc.returncode == 0  # publish creates the stream again


# ---- paging -------------------------------------------------------------------------------


async def test_items_pages_through_more_than_one_page(server: ServerProcess, alice: Client) -> None:
    name = unique("big")
    lst = await alice.list(name)
    pushed = [(await lst.push({"n": n})).index for n in range(120)]
    out = await aok(server, "items", "list", name, "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["index"] for r in rows] == pushed  # 120 > one page of 100
    assert [r["data"] for r in rows] == [{"n": n} for n in range(120)]
    out = await aok(server, "items", "list", name, "--json", "--page-size", "7", "--order", "desc")
    assert [json.loads(line)["index"] for line in out.splitlines()] == pushed[::-1]
    out = await aok(server, "items", "list", name, "--json", "--from", str(pushed[110]))
    assert [json.loads(line)["data"]["n"] for line in out.splitlines()] == list(range(110, 120))
    out = await aok(server, "items", "list", name, "--json", "--limit", "105", "--page-size", "50")
    assert len(out.splitlines()) == 105

    mp = await alice.map(unique("bigmap"))
    keys = [f"k{n:03d}" for n in range(120)]
    for key in keys:
        await mp.set(key, {"key": key})
    out = await aok(server, "items", "map", mp.unique_name or mp.sid, "--json")
    assert [json.loads(line)["key"] for line in out.splitlines()] == keys
    table = await aok(server, "items", "map", mp.sid)  # by SID, as a table
    assert "key" in table.splitlines()[1] and "k000" in table and "k119" in table


# ---- watch --------------------------------------------------------------------------------


async def _start_watch(
    server: ServerProcess, *args: str
) -> tuple[asyncio.subprocess.Process, list[str]]:
    """Start `sync-sdk watch ...`; return once it says it is watching (its stderr so far)."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "watch",
        *args,
        env=base_env(conn(server)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), RUN_TIMEOUT)).decode()
            assert line, f"watch exited early: {''.join(seen)}"
            seen.append(line)
            if line.startswith("watching "):
                return proc, seen
    except BaseException:
        proc.kill()
        await proc.wait()
        raise


async def _read_json_lines(proc: asyncio.subprocess.Process, count: int) -> list[dict[str, Any]]:
    assert proc.stdout is not None
    lines = []
    for _ in range(count):
        raw = await asyncio.wait_for(proc.stdout.readline(), EVENT_TIMEOUT)
        assert raw, "watch closed its stdout"
        lines.append(json.loads(raw))
    return lines


async def _stop(proc: asyncio.subprocess.Process, sig: int) -> tuple[int, str]:
    """Send `sig`; return the exit status and the rest of stderr."""
    assert proc.stderr is not None
    proc.send_signal(sig)
    try:
        rest = await asyncio.wait_for(proc.stderr.read(), RUN_TIMEOUT)
        code = await asyncio.wait_for(proc.wait(), RUN_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return code, rest.decode()


async def test_watch_map_json_prints_sdk_events_then_exits_on_ctrl_c(
    server: ServerProcess, alice: Client
) -> None:
    mp = await alice.map(unique("presence"))
    proc, _ = await _start_watch(server, "map", mp.sid, "--json")
    await mp.set("alice", {"online": True})
    await mp.update("alice", {"away": True})
    await mp.remove("alice")
    added, updated, removed = await _read_json_lines(proc, 3)
    assert (added["event"], added["key"], added["data"]) == (
        "item_added",
        "alice",
        {"online": True},
    )
    assert updated["event"] == "item_updated"
    assert updated["data"] == {"online": True, "away": True}
    assert updated["previous_data"] == {"online": True}
    assert (removed["event"], removed["key"], removed["data"]) == ("item_removed", "alice", None)
    assert removed["previous_data"] == {"online": True, "away": True}
    assert added["event_id"] < updated["event_id"] < removed["event_id"]
    code, stderr = await _stop(proc, signal.SIGINT)
    assert code == 130, stderr
    assert "Traceback" not in stderr and stderr.strip() == ""


@pytest.mark.parametrize("kind", ["document", "list", "stream"])
async def test_watch_other_kinds_then_exits_on_sigterm(
    server: ServerProcess, alice: Client, kind: str
) -> None:
    name = unique(kind)
    if kind == "document":
        doc = await alice.document(name)
        proc, _ = await _start_watch(server, kind, name, "--json")
        await doc.set({"v": 1})
        await doc.update({"w": 2})
        first, second = await _read_json_lines(proc, 2)
        assert (first["event"], first["data"]) == ("updated", {"v": 1})
        assert (second["data"], second["previous_data"]) == ({"v": 1, "w": 2}, {"v": 1})
        assert first["event_id"] < second["event_id"]
    elif kind == "list":
        lst = await alice.list(name)
        proc, _ = await _start_watch(server, kind, name, "--json")
        item = await lst.push({"t": "x"})
        await lst.remove(item.index)
        added, removed = await _read_json_lines(proc, 2)
        assert (added["event"], added["index"], added["data"]) == (
            "item_added",
            item.index,
            {"t": "x"},
        )
        assert (removed["event"], removed["index"]) == ("item_removed", item.index)
    else:
        stream = await alice.stream(name)
        proc, _ = await _start_watch(server, kind, name, "--json")
        message = await stream.publish_message({"text": "hi"})
        (published,) = await _read_json_lines(proc, 1)
        assert published["event"] == "message_published"
        assert (published["sid"], published["data"]) == (message.sid, {"text": "hi"})
    code, stderr = await _stop(proc, signal.SIGTERM)
    assert code == 143 and "Traceback" not in stderr, stderr


async def test_watch_readable_lines_and_exit_when_removed(
    server: ServerProcess, alice: Client
) -> None:
    doc = await alice.document(unique("settings"))
    proc, _ = await _start_watch(server, "document", doc.sid)
    await doc.set({"theme": "dark"})
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), EVENT_TIMEOUT)).decode()
    assert "updated" in line and '{"theme": "dark"}' in line
    assert "\x1b[" not in line  # no color when not a terminal
    await doc.remove_document()
    line = (await asyncio.wait_for(proc.stdout.readline(), EVENT_TIMEOUT)).decode()
    assert line.split()[1] == "removed"
    code = await asyncio.wait_for(proc.wait(), RUN_TIMEOUT)
    assert code == 0


async def test_watch_reconnects_across_a_server_restart(fresh_server: ServerProcess) -> None:
    name = unique("presence")
    async with fresh_server.client("writer") as writer:
        mp = await writer.map(name)
        await mp.set("before", {"n": 1})
    proc, _ = await _start_watch(fresh_server, "map", name, "--json")
    assert proc.stderr is not None
    await asyncio.to_thread(fresh_server.restart)  # same port and data
    async with fresh_server.client("writer") as writer:
        mp = await writer.map(name, mode="open_existing")
        await mp.set("after", {"n": 2})
        (event,) = await _read_json_lines(proc, 1)
    assert (event["event"], event["key"], event["data"]) == ("item_added", "after", {"n": 2})
    notes = []
    while "reconnected" not in "".join(notes):
        line = await asyncio.wait_for(proc.stderr.readline(), EVENT_TIMEOUT)
        assert line, "".join(notes)
        notes.append(line.decode())
    assert "reconnecting" in "".join(notes)
    code, stderr = await _stop(proc, signal.SIGINT)
    assert code == 130 and "Traceback" not in stderr, stderr


async def test_watch_of_a_missing_object_fails_in_one_line(server: ServerProcess) -> None:
    proc = await asyncio.to_thread(run, ["watch", "map", unique("nope")], env=conn(server))
    assert_one_line_error(proc, "not found (54200)")


# ---- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["get", "document", "{name}"], "not found (54100)"),
        (["get", "map", "{name}", "k"], "not found (54200)"),
        (["get", "list", "{name}", "0"], "not found (54150)"),
        (["items", "list", "{name}"], "not found (54150)"),
        (["remove", "document", "{name}"], "not found (54100)"),
    ],
)
def test_not_found_is_one_line_with_the_code(
    server: ServerProcess, args: list[str], needle: str
) -> None:
    name = unique("missing")
    proc = run([a.format(name=name) for a in args], env=conn(server))
    assert proc.returncode == 1
    assert_one_line_error(proc, needle, name)


def test_missing_item_is_one_line_with_the_code(server: ServerProcess) -> None:
    name = unique("m")
    ok(server, "set", "map", name, "here", "{}")
    proc = run(["get", "map", name, "absent"], env=conn(server))
    assert_one_line_error(proc, "not found (54201)")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["set", "document", "d", "{bad json"], ["DATA", "not valid JSON"]),
        (["set", "document", "d", "[1, 2]"], ["DATA", "JSON object", "an array"]),
        (["set", "map", "m", "k", '"text"'], ["DATA", "a string"]),
        (["update", "document", "d", "42"], ["PATCH", "a number"]),
        (["push", "list", "l", "null"], ["DATA", "null"]),
        (["set", "document", "d"], ["missing argument DATA"]),
        (["set", "map", "m", "{}"], ["missing argument DATA"]),
        (["get", "list", "l"], ["missing argument INDEX"]),
        (["get", "list", "l", "first"], ["INDEX", "whole number"]),
        (["get"], ["Missing argument 'KIND'"]),
        (["get", "widget", "w"], ["'widget' is not one of"]),
        (["get", "stream", "s"], ["does not apply to a stream"]),
        (["set", "stream", "s", "{}"], ["publish"]),
        (["remove", "document", "d", "extra"], ["unexpected argument 'extra'"]),
        (["frobnicate"], ["No such command"]),
        (["set", "map", "m", "k", "{}", "--ttl", "-1"], ["--ttl"]),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(args: list[str], needles: list[str]) -> None:
    # A token and a server that is never reached: the arguments are checked first.
    proc = run(args, env={"SYNC_URL": "http://127.0.0.1:9", "SYNC_TOKEN": "x.y.z"})
    assert proc.returncode == 2
    assert_one_line_error(proc, *needles)


def test_bad_json_writes_nothing(server: ServerProcess) -> None:
    name = unique("doc")
    proc = run(["set", "document", name, "{not json}"], env=conn(server))
    assert_one_line_error(proc, "not valid JSON")
    assert_one_line_error(run(["get", "document", name], env=conn(server)), "(54100)")


def test_bad_tokens_are_one_line_errors(server: ServerProcess) -> None:
    proc = run(["get", "document", "d"], env={"SYNC_URL": server.url, "SYNC_TOKEN": "garbage"})
    assert_one_line_error(proc, "(51000)", "token")
    c = server.credentials
    assert c is not None
    forged = mint_access_token(c.account_sid, c.api_key_sid, "wrong-secret", c.service_sid, "eve")
    proc = run(["get", "document", "d"], env={"SYNC_URL": server.url, "SYNC_TOKEN": forged})
    line = assert_one_line_error(proc, "access denied (")
    assert "signature" in line.lower()


def test_connection_refused_is_one_line_error() -> None:
    proc = run(
        ["--timeout", "1", "get", "document", "d"],
        env={"SYNC_URL": "http://127.0.0.1:9", "SYNC_TOKEN": "a.b.c"},
    )
    assert proc.returncode == 1
    assert_one_line_error(proc, "cannot connect (", "127.0.0.1:9")


def test_no_token_is_a_usage_error() -> None:
    proc = run(["get", "document", "d"])
    assert proc.returncode == 2
    assert_one_line_error(proc, "no access token", "SYNC_TOKEN")


def test_missing_cli_extra_is_one_line() -> None:
    code = (
        "import sys; sys.modules['click'] = None; sys.argv = ['sync-sdk', '--help'];"
        " from sync_sdk.cli import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert proc.returncode == 1
    assert_one_line_error(proc, "'cli' extra", "pip install 'sync-sdk[cli]'")


def test_python_dash_m_and_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sync_sdk", "--version"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=base_env(),
    )
    assert proc.returncode == 0 and "sync-sdk" in proc.stdout and proc.stderr == ""


# ---- configuration ------------------------------------------------------------------------


def test_flags_override_environment(server: ServerProcess) -> None:
    name = unique("doc")
    # Environment only.
    assert run(["set", "document", name, '{"a": 1}'], env=conn(server)).returncode == 0
    # Flags win over a wrong environment.
    proc = run(
        ["--url", server.url, "--token", server.token(), "get", "document", name],
        env={"SYNC_URL": "http://127.0.0.1:9", "SYNC_TOKEN": "bad"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"a": 1}
    # A wrong --url flag wins over a right SYNC_URL.
    proc = run(
        ["--url", "http://127.0.0.1:9", "--timeout", "1", "get", "document", name], env=conn(server)
    )
    assert_one_line_error(proc, "cannot connect")


def _credentials_env(server: ServerProcess) -> dict[str, str]:
    c = server.credentials
    assert c is not None
    return {
        "SYNC_URL": server.url,
        "SYNC_ACCOUNT_SID": c.account_sid,
        "SYNC_API_KEY": c.api_key_sid,
        "SYNC_API_SECRET": c.api_secret,
        "SYNC_SERVICE_SID": c.service_sid,
    }


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def test_identity_mints_a_token_from_credentials(server: ServerProcess) -> None:
    env = _credentials_env(server)
    name = unique("minted")
    proc = run(["--identity", "bob", "set", "document", name, '{"by": "bob"}'], env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run(["--identity", "bob", "get", "document", name], env=env)
    assert json.loads(proc.stdout) == {"by": "bob"}
    # The same through SYNC_IDENTITY; `token` prints the minted token itself.
    proc = run(["token"], env={**env, "SYNC_IDENTITY": "carol"})
    assert proc.returncode == 0, proc.stderr
    claims = _claims(proc.stdout.strip())
    assert claims["grants"]["identity"] == "carol"
    assert claims["grants"]["data_sync"]["service_sid"] == env["SYNC_SERVICE_SID"]
    # The minted token works as SYNC_TOKEN.
    proc = run(
        ["get", "document", name], env={"SYNC_URL": server.url, "SYNC_TOKEN": proc.stdout.strip()}
    )
    assert json.loads(proc.stdout) == {"by": "bob"}


def test_identity_with_a_missing_or_wrong_credential(server: ServerProcess) -> None:
    env = _credentials_env(server)
    del env["SYNC_API_SECRET"]
    proc = run(["--identity", "bob", "get", "document", "d"], env=env)
    assert proc.returncode == 2
    assert_one_line_error(proc, "SYNC_API_SECRET")
    env["SYNC_API_SECRET"] = "not-the-secret"
    proc = run(["--identity", "bob", "get", "document", "d"], env=env)
    assert proc.returncode == 1
    assert_one_line_error(proc, "access denied (")
    proc = run(["--identity", "bob", "--token", "a.b.c", "get", "document", "d"], env=env)
    assert_one_line_error(proc, "either --token or --identity")
