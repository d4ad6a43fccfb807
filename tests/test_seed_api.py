"""The seed's client API, to the letter: every item of twilio-sync's JS `Client` API mapped to
its Python name (`SEED_API`, rendered in README.md "From the Twilio JS API to Python") and
exercised against a real server; then the semantics around it: `denied` is recovered from
with update_token(), `error` is terminal, a shut-down client refuses every call, per-client
log levels, and the revision-mismatch code of a mutate that gives up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

import sync_sdk.objects
from sync_sdk import (
    Client,
    ClientClosedError,
    ClientOptions,
    ConnectionErrorEvent,
    ConnectionState,
    DocumentNotFoundError,
    DocumentRevisionMismatchError,
    ListItemRevisionMismatchError,
    MapItemRevisionMismatchError,
    ServiceNotFoundError,
    SyncDocument,
    TokenAboutToExpireEvent,
    TokenExpiredEvent,
    TokenSignatureError,
    UniqueNameExistsError,
)
from sync_server.tokens import mint_token
from tests.conftest import ServerProcess, wait_for_state

S = ConnectionState
Check = Callable[[ServerProcess], Awaitable[None]]


def _name(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns()}"


def _bad_signature(server: ServerProcess, identity: str = "alice") -> str:
    c = server.credentials
    assert c is not None
    return mint_token(
        account_sid=c.account_sid,
        api_key_sid=c.api_key_sid,
        api_secret="x" * 32,
        service_sid=c.service_sid,
        identity=identity,
    )


def _unknown_service(server: ServerProcess) -> str:
    c = server.credentials
    assert c is not None
    return mint_token(
        account_sid=c.account_sid,
        api_key_sid=c.api_key_sid,
        api_secret=c.api_secret,
        service_sid="IS" + "0" * 32,
        identity="alice",
    )


def _client(server: ServerProcess, token: str, **options: Any) -> Client:
    opts: dict[str, Any] = {"url": server.url, "log_level": "silent", **options}
    return Client(token, ClientOptions(**opts))


async def _states_of(client: Client, action: Callable[[], Awaitable[None]]) -> list[S]:
    states: list[S] = []
    client.on("connection_state_changed", states.append)
    try:
        await action()
    except Exception:
        pass
    return states


async def _lifecycle(server: ServerProcess) -> list[S]:
    """connect + shutdown of a good client: every state it goes through."""
    client = _client(server, server.token())

    async def run() -> None:
        await client.connect()
        await client.shutdown()

    return await _states_of(client, run)


async def _denied_errors(server: ServerProcess) -> tuple[Client, list[ConnectionErrorEvent]]:
    client = _client(server, _bad_signature(server))
    errors: list[ConnectionErrorEvent] = []
    client.on("connection_error", errors.append)
    with pytest.raises(TokenSignatureError):
        await client.connect()
    return client, errors


async def _error_client(server: ServerProcess) -> tuple[Client, list[ConnectionErrorEvent]]:
    client = _client(server, _unknown_service(server))
    errors: list[ConnectionErrorEvent] = []
    client.on("connection_error", errors.append)
    with pytest.raises(ServiceNotFoundError):
        await client.connect()
    return client, errors


# ---- one check per row of the table -----------------------------------------------------------
async def check_constructor(server: ServerProcess) -> None:
    client = Client(server.token("carol"), ClientOptions(url=server.url))
    assert client.connection_state is S.DISCONNECTED  # nothing happens before connect()
    async with client:
        assert client.identity == "carol"


async def check_log_level(server: ServerProcess) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.NOTSET)
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("sync_sdk").addHandler(handler)
    try:
        async with _client(server, server.token(), log_level="debug") as debug_client:
            quiet = Client(server.token(), ClientOptions(url=server.url))  # default: error
            async with quiet as quiet_client:
                await debug_client.document(_name("log"))
                await quiet_client.document(_name("log"))
    finally:
        logging.getLogger("sync_sdk").removeHandler(handler)
    assert debug_client.logger.level == logging.DEBUG  # not reset by the second client
    assert quiet_client.logger.level == logging.ERROR
    mine = [r for r in records if r.name == debug_client.logger.name]
    assert any(r.levelno == logging.DEBUG and "request #" in r.getMessage() for r in mine)
    assert not [r for r in records if r.name == quiet_client.logger.name]


async def check_connection_state(server: ServerProcess) -> None:
    client = _client(server, server.token())
    assert client.connection_state is S.DISCONNECTED
    async with client:
        assert client.connection_state is S.CONNECTED
    assert client.connection_state is S.DISCONNECTED


async def check_connecting(server: ServerProcess) -> None:
    assert (await _lifecycle(server))[0] is S.CONNECTING


async def check_connected(server: ServerProcess) -> None:
    assert (await _lifecycle(server))[1] is S.CONNECTED


async def check_disconnecting(server: ServerProcess) -> None:
    assert (await _lifecycle(server))[2] is S.DISCONNECTING


async def check_disconnected(server: ServerProcess) -> None:
    assert (await _lifecycle(server))[3:] == [S.DISCONNECTED]


async def check_denied(server: ServerProcess) -> None:
    client, _ = await _denied_errors(server)
    try:
        assert client.connection_state is S.DENIED
    finally:
        await client.shutdown()


async def check_error(server: ServerProcess) -> None:
    client, _ = await _error_client(server)
    assert client.connection_state is S.ERROR
    await client.shutdown()
    assert client.connection_state is S.DISCONNECTED


async def check_connection_state_changed(server: ServerProcess) -> None:
    assert await _lifecycle(server) == [S.CONNECTING, S.CONNECTED, S.DISCONNECTING, S.DISCONNECTED]


async def check_connection_error(server: ServerProcess) -> None:
    client, errors = await _denied_errors(server)
    await client.shutdown()
    assert len(errors) == 1 and isinstance(errors[0], ConnectionErrorEvent)


async def check_connection_error_terminal(server: ServerProcess) -> None:
    denied, denied_errors = await _denied_errors(server)
    failed, failed_errors = await _error_client(server)
    await denied.shutdown()
    await failed.shutdown()
    assert [e.terminal for e in denied_errors] == [False]
    assert [e.terminal for e in failed_errors] == [True]


async def check_connection_error_message(server: ServerProcess) -> None:
    client, errors = await _denied_errors(server)
    await client.shutdown()
    assert "signature" in errors[0].message.lower()


async def check_connection_error_status(server: ServerProcess) -> None:
    client, errors = await _denied_errors(server)
    await client.shutdown()
    assert errors[0].status == 401


async def check_connection_error_code(server: ServerProcess) -> None:
    client, errors = await _denied_errors(server)
    await client.shutdown()
    assert errors[0].code == 20107


async def check_token_about_to_expire(server: ServerProcess) -> None:
    about: list[TokenAboutToExpireEvent] = []
    fired = asyncio.Event()
    client = _client(server, server.token(ttl=30), token_refresh_margin=29.5)
    client.on("token_about_to_expire", about.append)
    client.on("token_about_to_expire", lambda _: fired.set())
    async with client:
        await asyncio.wait_for(fired.wait(), 5)
    assert len(about) == 1 and 0 < about[0].expires_in <= 29.5


async def check_token_expired(server: ServerProcess) -> None:
    expired: list[TokenExpiredEvent] = []
    client = _client(server, server.token(ttl=2), token_refresh_margin=0.5)
    client.on("token_expired", expired.append)
    async with client:
        await wait_for_state(client, S.DENIED, timeout=10)
        assert len(expired) == 1


async def check_update_token(server: ServerProcess) -> None:
    async with _client(server, server.token(ttl=600)) as client:
        await client.update_token(server.token(ttl=3600))
        assert client.connection_state is S.CONNECTED
        await client.document(_name("after-update"))


async def check_shutdown(server: ServerProcess) -> None:
    client = _client(server, server.token())
    await client.connect()
    doc = await client.document(_name("shut"))
    await client.shutdown()
    assert client.connection_state is S.DISCONNECTED and doc.closed


async def check_open_by_name_or_sid(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        doc = await client.document(_name("by-name"))
        again = await client.document(doc.sid)
        assert again.sid == doc.sid and again.unique_name == doc.unique_name


async def check_open_random(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        doc = await client.document()
        assert doc.sid.startswith("ET") and doc.unique_name is None


async def check_mode_open_or_create(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        name = _name("ooc")
        first = await client.document(name, mode="open_or_create")
        second = await client.document(name)  # the default mode
        assert first.sid == second.sid


async def check_mode_open_existing(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        with pytest.raises(DocumentNotFoundError):
            await client.document(_name("missing"), mode="open_existing")


async def check_mode_create_new(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        name = _name("new")
        await client.document(name, mode="create_new")
        with pytest.raises(UniqueNameExistsError):
            await client.document(name, mode="create_new")


async def check_ttl(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        doc = await client.document(_name("ttl"), ttl=60)
        assert doc.date_expires is not None
        left = doc.date_expires.timestamp() - time.time()
        assert 50 < left <= 61


async def check_data(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        doc = await client.document(_name("data"), data={"theme": "dark"})
        assert doc.data == {"theme": "dark"}


async def check_list(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        lst = await client.list(_name("list"), mode="create_new", ttl=60)
        assert lst.sid.startswith("ES") and lst.date_expires is not None
        assert (await lst.push({"n": 1})).index == 0


async def check_map(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        m = await client.map(_name("map"), mode="create_new", ttl=60)
        assert m.sid.startswith("MP") and m.date_expires is not None
        assert (await m.set("k", {"n": 1})).key == "k"


async def check_stream(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        stream = await client.stream(_name("stream"), mode="create_new", ttl=60)
        assert stream.sid.startswith("TO")
        assert (await stream.publish_message({"n": 1})).data == {"n": 1}


async def check_version(server: ServerProcess) -> None:
    async with _client(server, server.token()) as client:
        assert client.version == Client.version == sync_sdk.__version__
        assert Client.version.count(".") >= 1


# (Twilio JS, Python, check). README.md renders this table; test_readme_renders_the_table.
SEED_API: list[tuple[str, str, Check]] = [
    ("new Client(token, options)", "Client(token, ClientOptions(...))", check_constructor),
    ("options.logLevel", 'ClientOptions(log_level="debug")', check_log_level),
    ("client.connectionState", "client.connection_state", check_connection_state),
    ("'connecting'", "ConnectionState.CONNECTING", check_connecting),
    ("'connected'", "ConnectionState.CONNECTED", check_connected),
    ("'disconnecting'", "ConnectionState.DISCONNECTING", check_disconnecting),
    ("'disconnected'", "ConnectionState.DISCONNECTED", check_disconnected),
    ("'denied'", "ConnectionState.DENIED", check_denied),
    ("'error'", "ConnectionState.ERROR", check_error),
    (
        "client.on('connectionStateChanged', h)",
        'client.on("connection_state_changed", h)',
        check_connection_state_changed,
    ),
    ("client.on('connectionError', h)", 'client.on("connection_error", h)', check_connection_error),
    ("connectionError.terminal", "ConnectionErrorEvent.terminal", check_connection_error_terminal),
    ("connectionError.message", "ConnectionErrorEvent.message", check_connection_error_message),
    (
        "connectionError.httpStatusCode",
        "ConnectionErrorEvent.status",
        check_connection_error_status,
    ),
    ("connectionError.errorCode", "ConnectionErrorEvent.code", check_connection_error_code),
    (
        "client.on('tokenAboutToExpire', h)",
        'client.on("token_about_to_expire", h)',
        check_token_about_to_expire,
    ),
    ("client.on('tokenExpired', h)", 'client.on("token_expired", h)', check_token_expired),
    ("client.updateToken(token)", "await client.update_token(token)", check_update_token),
    ("client.shutdown()", "await client.shutdown()", check_shutdown),
    ("client.document(sidOrName)", 'await client.document("settings")', check_open_by_name_or_sid),
    ("client.document()", "await client.document()", check_open_random),
    (
        "{ id, mode: 'open_or_create' }",
        'await client.document(id, mode="open_or_create")',
        check_mode_open_or_create,
    ),
    (
        "{ id, mode: 'open_existing' }",
        'await client.document(id, mode="open_existing")',
        check_mode_open_existing,
    ),
    (
        "{ id, mode: 'create_new' }",
        'await client.document(id, mode="create_new")',
        check_mode_create_new,
    ),
    ("{ id, ttl }", "await client.document(id, ttl=60)", check_ttl),
    ("{ id, data } (document only)", "await client.document(id, data={...})", check_data),
    ("client.list(arg)", "await client.list(id, mode=..., ttl=...)", check_list),
    ("client.map(arg)", "await client.map(id, mode=..., ttl=...)", check_map),
    ("client.stream(arg)", "await client.stream(id, mode=..., ttl=...)", check_stream),
    ("Client.version", "Client.version", check_version),
]


def render_table() -> str:
    lines = ["| Twilio JS (`twilio-sync`) | Python (`sync_sdk`) |", "| --- | --- |"]
    lines += [f"| `{js}` | `{py}` |" for js, py, _ in SEED_API]
    return "\n".join(lines)


@pytest.mark.parametrize("check", [row[2] for row in SEED_API], ids=[row[0] for row in SEED_API])
async def test_seed_api(server: ServerProcess, check: Check) -> None:
    await check(server)


def test_readme_renders_the_table() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "## From the Twilio JS API to Python" in readme
    assert render_table() in readme, "README's table differs from SEED_API: paste render_table()"


# ---- denied is recovered from -------------------------------------------------------------------
async def test_denied_then_update_token_connects(server: ServerProcess) -> None:
    client = _client(server, _bad_signature(server))
    states: list[S] = []
    client.on("connection_state_changed", states.append)
    try:
        with pytest.raises(TokenSignatureError) as info:
            await client.connect()
        assert info.value.code == 20107
        assert client.connection_state is S.DENIED  # not shut down
        with pytest.raises(TokenSignatureError):
            await client.connect()  # still denied: says so at once
        states.clear()
        await client.update_token(server.token("alice"))
        await client.connect()  # waits for the reconnection update_token() started
        assert states == [S.CONNECTING, S.CONNECTED]
        doc = await client.document(_name("recovered"))
        await doc.set({"ok": True})
        assert client.identity == "alice"
    finally:
        await client.shutdown()


async def test_token_provider_is_asked_once_before_denied(server: ServerProcess) -> None:
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        return _bad_signature(server)

    client = _client(server, _bad_signature(server), token_provider=provider)
    errors: list[ConnectionErrorEvent] = []
    client.on("connection_error", errors.append)
    try:
        with pytest.raises(TokenSignatureError):
            await client.connect()
        assert client.connection_state is S.DENIED
        await asyncio.sleep(0.3)
        assert calls == 1 and len(errors) == 2  # the first token, then the provider's
    finally:
        await client.shutdown()


async def test_token_provider_rescues_a_refused_token(server: ServerProcess) -> None:
    async def provider() -> str:
        return server.token("alice")

    client = _client(server, _bad_signature(server), token_provider=provider)
    states: list[S] = []
    client.on("connection_state_changed", states.append)
    async with client:
        assert S.DENIED not in states and client.connection_state is S.CONNECTED


async def test_failed_async_with_shuts_down(server: ServerProcess) -> None:
    client = _client(server, _bad_signature(server))
    with pytest.raises(TokenSignatureError):
        async with client:
            pass
    assert client.connection_state is S.DISCONNECTED
    with pytest.raises(ClientClosedError):
        await client.update_token(server.token())


async def test_no_false_token_expired_after_update_token(server: ServerProcess) -> None:
    client = _client(server, server.token(ttl=2), token_refresh_margin=0.5)
    expired: list[TokenExpiredEvent] = []
    client.on("token_expired", expired.append)
    async with client:
        await wait_for_state(client, S.DENIED, timeout=10)
        await asyncio.sleep(0.2)
        assert len(expired) == 1
        await client.update_token(server.token(ttl=600))
        await client.connect()
        await asyncio.sleep(0.5)
        assert len(expired) == 1, "a second token_expired for the old token"
        assert client.connection_state is S.CONNECTED


# ---- no silent no-ops --------------------------------------------------------------------------
async def test_every_call_on_a_shut_down_client_raises(server: ServerProcess) -> None:
    client = _client(server, server.token())
    await client.connect()
    doc = await client.document(_name("closed-doc"))
    lst = await client.list(_name("closed-list"))
    m = await client.map(_name("closed-map"))
    stream = await client.stream(_name("closed-stream"))
    page = await lst.get_items()
    await client.shutdown()
    await client.shutdown()  # idempotent, like close()
    calls: list[Callable[[], Awaitable[object]]] = [
        client.connect,
        lambda: client.update_token(server.token()),
        lambda: client.document("x"),
        lambda: client.list("x"),
        lambda: client.map("x"),
        lambda: client.stream("x"),
        lambda: doc.set({"a": 1}),
        lambda: doc.update({"a": 1}),
        lambda: doc.mutate(lambda d: d),
        lambda: doc.set_ttl(10),
        doc.remove_document,
        lambda: lst.push({"a": 1}),
        lambda: lst.get(0),
        lambda: lst.set(0, {"a": 1}),
        lambda: lst.update(0, {"a": 1}),
        lambda: lst.mutate(0, lambda d: d),
        lambda: lst.remove(0),
        lambda: lst.set_item_ttl(0, 10),
        lst.get_items,
        lst.remove_list,
        lambda: m.set("k", {"a": 1}),
        lambda: m.get("k"),
        lambda: m.update("k", {"a": 1}),
        lambda: m.mutate("k", lambda d: d),
        lambda: m.remove("k"),
        lambda: m.set_item_ttl("k", 10),
        m.get_items,
        m.remove_map,
        lambda: stream.publish_message({"a": 1}),
        stream.remove_stream,
    ]
    for call in calls:
        with pytest.raises(ClientClosedError):
            await call()
    for handle in (doc, lst, m, stream):
        with pytest.raises(ClientClosedError):
            handle.on("removed", lambda e: None)
    with pytest.raises(ClientClosedError):
        client.on("connection_state_changed", lambda s: None)
    assert not page.has_next_page  # a page already fetched stays readable


# ---- error is terminal ---------------------------------------------------------------------------
async def test_unknown_service_is_a_terminal_error(server: ServerProcess) -> None:
    client, errors = await _error_client(server)
    assert client.connection_state is S.ERROR
    assert [(e.terminal, e.code, e.status) for e in errors] == [(True, 54050, 404)]
    with pytest.raises(ClientClosedError, match="54050"):
        await client.document("x")
    with pytest.raises(ClientClosedError):
        await client.update_token(server.token())
    with pytest.raises(ClientClosedError, match="54050"):
        await client.connect()  # it says why
    await asyncio.sleep(0.3)
    assert len(errors) == 1  # no retries
    await client.shutdown()
    assert client.connection_state is S.DISCONNECTED


async def _fake_server(answer: Callable[[dict[str, Any]], str]) -> tuple[Any, str]:
    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(answer(orjson.loads(raw)))

    srv = await serve(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    return srv, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "answer",
    [
        # a Twilsock server: frames this protocol cannot parse
        lambda hello: 'TWILSOCK V3.0 20\r\n{"method":"close"}\r\n',
        # a protocol-2 server: it refuses the hello as malformed (51000)
        lambda hello: orjson.dumps(
            {
                "type": "reply",
                "id": hello["id"],
                "error": {"code": 51000, "status": 400, "message": "protocol 2 required"},
            }
        ).decode(),
        # a server whose hello reply is not protocol 1's
        lambda hello: orjson.dumps(
            {"type": "reply", "id": hello["id"], "result": {"v": 2}}
        ).decode(),
        # a server that says it speaks protocol 2
        lambda hello: orjson.dumps(
            {
                "type": "reply",
                "id": hello["id"],
                "result": {
                    "connection_id": "c",
                    "identity": "a",
                    "service_sid": "IS" + "0" * 32,
                    "account_sid": "AC" + "0" * 32,
                    "token_expires_at": 9e9,
                    "heartbeat_interval": 5,
                    "protocol": 2,
                },
            }
        ).decode(),
    ],
    ids=["twilsock", "hello-refused", "other-hello-result", "protocol-2"],
)
async def test_server_of_another_protocol_is_a_terminal_error(
    answer: Callable[[dict[str, Any]], str],
) -> None:
    srv, url = await _fake_server(answer)
    client = Client("a.b.c", ClientOptions(url=url, log_level="silent"))
    errors: list[ConnectionErrorEvent] = []
    client.on("connection_error", errors.append)
    try:
        with pytest.raises(Exception) as info:
            await client.connect()
        assert getattr(info.value, "code", None) == 51000
        assert client.connection_state is S.ERROR
        assert [e.terminal for e in errors] == [True]
    finally:
        await client.shutdown()
        srv.close()
        await srv.wait_closed()


# ---- mutate that gives up ------------------------------------------------------------------------
def _rest_write(server: ServerProcess, path: str, data: dict[str, Any]) -> None:
    """A write by someone else, over REST, while the mutator runs (a real conflict)."""
    c = server.credentials
    assert c is not None
    r = httpx.post(
        f"{server.url}/v1/Services/{c.service_sid}/{path}",
        data={"Data": orjson.dumps(data).decode()},
        auth=(c.account_sid, c.auth_token),
        timeout=10,
    )
    assert r.status_code in (200, 201), r.text


async def test_mutate_that_gives_up_raises_the_objects_revision_mismatch(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_sdk.objects, "_MAX_MUTATE_ATTEMPTS", 2)
    async with _client(server, server.token()) as client:
        doc: SyncDocument[dict[str, Any]] = await client.document(_name("mut-doc"), data={"n": 0})
        lst = await client.list(_name("mut-list"))
        await lst.push({"n": 0})
        m = await client.map(_name("mut-map"))
        await m.set("k", {"n": 0})

        def racing(path: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
            def mutator(current: dict[str, Any]) -> dict[str, Any]:
                _rest_write(server, path, {"n": -1})  # someone else wins every time
                return {"n": 1}

            return mutator

        with pytest.raises(DocumentRevisionMismatchError) as d:
            await doc.mutate(racing(f"Documents/{doc.sid}"))
        with pytest.raises(ListItemRevisionMismatchError) as li:
            await lst.mutate(0, racing(f"Lists/{lst.sid}/Items/0"))
        with pytest.raises(MapItemRevisionMismatchError) as mi:
            await m.mutate("k", racing(f"Maps/{m.sid}/Items/k"))
    assert (d.value.code, li.value.code, mi.value.code) == (54103, 54155, 54205)
    assert d.value.status == li.value.status == mi.value.status == 412


# ---- logging ---------------------------------------------------------------------------------------
async def test_trace_logs_frames_with_tokens_redacted(
    server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(5)
    token = server.token()
    fresh = server.token(ttl=1800)
    async with _client(server, token, log_level="trace") as client:
        await client.update_token(fresh)
        await client.document(_name("trace"))
    mine = [r for r in caplog.records if r.name == client.logger.name]
    frames = [r.getMessage() for r in mine if r.levelno == 5]
    assert any(f.startswith("-> ") and '"type":"hello"' in f for f in frames)
    assert any(f.startswith("<- ") for f in frames)
    assert any('"token":"[redacted]"' in f for f in frames)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in text and fresh not in text


async def test_a_failover_that_succeeds_logs_nothing_at_the_default_level(
    server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    client = Client(server.token(), ClientOptions(urls=[dead, server.url]))  # log_level: error
    errors: list[ConnectionErrorEvent] = []
    client.on("connection_error", errors.append)
    async with client:
        assert client.server_url == server.url
    assert errors and not errors[0].terminal  # the first node did fail
    assert not [r for r in caplog.records if r.name == client.logger.name]
