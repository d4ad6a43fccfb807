"""The `sync-sdk` commands: click for the arguments, rich for colors and tables.

Every failure ends as one line on stderr and a non-zero exit status (`_report`): 1 for an
error of the server or the connection (`not found (54100): …`), 2 for a usage error (bad
arguments, bad JSON, no token), 130 / 143 when stopped by SIGINT (Ctrl-C) / SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias

import click
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sync_generated.client import MAX_PAGE_SIZE

from sync_sdk import (
    AccessError,
    Client,
    ClientOptions,
    CollectionRemovedEvent,
    CommandTimeoutError,
    ConflictError,
    ConnectFailedError,
    ConnectionErrorEvent,
    ConnectionLostError,
    ConnectionState,
    DocumentRemovedEvent,
    DocumentUpdatedEvent,
    InvalidInputError,
    JsonObject,
    ListItemAddedEvent,
    ListItemRemovedEvent,
    ListItemUpdatedEvent,
    MapItemAddedEvent,
    MapItemRemovedEvent,
    MapItemUpdatedEvent,
    NotFoundError,
    RateLimitError,
    ServerError,
    StreamMessagePublishedEvent,
    SubscriptionState,
    SyncDocument,
    SyncError,
    SyncList,
    SyncListItem,
    SyncMap,
    SyncMapItem,
    SyncStream,
    TransportError,
    __version__,
)
from sync_sdk.rest import mint_access_token
from sync_sdk.validation import is_json_object

Kind: TypeAlias = Literal["document", "list", "map", "stream"]
OpenMode: TypeAlias = Literal["open_or_create", "open_existing"]
Item: TypeAlias = SyncListItem[JsonObject] | SyncMapItem[JsonObject]

KINDS: tuple[Kind, ...] = ("document", "list", "map", "stream")
DEFAULT_URL = ClientOptions().url
EXIT_ERROR = 1
EXIT_USAGE = 2
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# The first match names the error in `label (code): message`.
_LABELS: tuple[tuple[type[SyncError], str], ...] = (
    (ConnectFailedError, "cannot connect"),
    (CommandTimeoutError, "timed out"),
    (ConnectionLostError, "connection lost"),
    (TransportError, "connection error"),
    (NotFoundError, "not found"),
    (AccessError, "access denied"),
    (ConflictError, "conflict"),
    (InvalidInputError, "invalid input"),
    (RateLimitError, "rate limited"),
    (ServerError, "server error"),
)


def describe(exc: SyncError) -> str:
    """`not found (54100): Document not found`: the family, the code, the server's message."""
    label = next((text for cls, text in _LABELS if isinstance(exc, cls)), "error")
    return f"{label} ({exc.code}): {exc.message}"


# ---- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """The connection settings shared by every command (global options and SYNC_* variables)."""

    url: str
    token: str | None
    token_on_command_line: bool
    identity: str | None
    account_sid: str | None
    api_key: str | None
    api_secret: str | None
    service_sid: str | None
    token_ttl: int
    timeout: float
    log_level: str

    def access_token(self) -> tuple[str, Callable[[], Coroutine[Any, Any, str]] | None]:
        """The token to connect with and, for a minted one, how to mint the next."""
        if self.identity and not self.token_on_command_line:
            needed = {
                "SYNC_ACCOUNT_SID (--account-sid)": self.account_sid,
                "SYNC_API_KEY (--api-key)": self.api_key,
                "SYNC_API_SECRET": self.api_secret,
                "SYNC_SERVICE_SID (--service-sid)": self.service_sid,
            }
            missing = [name for name, value in needed.items() if not value]
            if missing:
                raise click.UsageError(f"--identity mints a token and needs {', '.join(missing)}")
            identity = self.identity

            def mint() -> str:
                return mint_access_token(
                    self.account_sid or "",
                    self.api_key or "",
                    self.api_secret or "",
                    self.service_sid or "",
                    identity,
                    ttl=self.token_ttl,
                )

            async def provider() -> str:
                return mint()

            return mint(), provider
        if self.token:
            return self.token, None
        raise click.UsageError(
            "no access token: pass --token or set SYNC_TOKEN, or pass --identity with"
            " SYNC_ACCOUNT_SID, SYNC_API_KEY, SYNC_API_SECRET and SYNC_SERVICE_SID set"
        )

    def client(self) -> Client:
        token, provider = self.access_token()
        urls = [u.strip() for u in self.url.split(",") if u.strip()]
        options = ClientOptions(
            url=urls[0] if urls else DEFAULT_URL,
            urls=urls if len(urls) > 1 else None,
            log_level=self.log_level,  # type: ignore[arg-type]  # a click.Choice of the names
            connect_timeout=self.timeout,
            command_timeout=self.timeout,
            token_provider=provider,
            # A minted token is renewed a third of its lifetime before it expires, at most 3 min.
            token_refresh_margin=min(180.0, self.token_ttl / 3),
        )
        return Client(token, options)


def config(ctx: click.Context) -> Config:
    obj = ctx.find_object(Config)
    assert obj is not None, "the sync-sdk group sets the Config"
    return obj


# ---- arguments ----------------------------------------------------------------------------


def parse_data(text: str, what: str = "DATA") -> JsonObject:
    """A JSON object from the command line (`-` reads it from stdin)."""
    if text == "-":
        text = sys.stdin.read()
    try:
        value: object = json.loads(text)
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise click.BadParameter(
            f"not valid JSON ({exc.msg} at column {exc.colno}): {shown!r}", param_hint=what
        ) from None
    if not is_json_object(value):
        kinds: dict[type, str] = {
            list: "an array",
            str: "a string",
            bool: "a boolean",
            type(None): "null",
        }
        kind = kinds.get(type(value), "a number")
        raise click.BadParameter(
            f'must be a JSON object such as \'{{"key": "value"}}\', got {kind}', param_hint=what
        )
    return value


def parse_index(text: str, what: str = "INDEX") -> int:
    try:
        index = int(text)
    except ValueError:
        index = -1
    if index < 0:
        raise click.BadParameter(
            f"a list index is a whole number >= 0, got {text!r}", param_hint=what
        )
    return index


def expect(command: str, kind: Kind, args: Sequence[str], names: Sequence[str]) -> list[str]:
    """`args` as exactly the positional arguments `names` (which depend on the kind)."""
    if len(args) == len(names):
        return list(args)
    usage = f"{command} {kind} NAME {' '.join(names)}".rstrip()
    if len(args) < len(names):
        missing = names[len(args)]
        raise click.UsageError(f"missing argument {missing} (usage: sync-sdk {usage})")
    extra = " ".join(args[len(names) :])
    raise click.UsageError(f"unexpected argument {extra!r} (usage: sync-sdk {usage})")


def item_ref_name(kind: Kind) -> str:
    return "INDEX" if kind == "list" else "KEY"


def not_for(command: str, kind: Kind, hint: str) -> click.UsageError:
    return click.UsageError(f"'{command}' does not apply to a {kind}: {hint}")


# ---- output -------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def item_json(item: Item) -> dict[str, Any]:
    ref: dict[str, Any] = (
        {"index": item.index} if isinstance(item, SyncListItem) else {"key": item.key}
    )
    return {
        **ref,
        "data": item.data,
        "revision": item.revision,
        "date_updated": iso(item.date_updated),
        "date_expires": iso(item.date_expires),
    }


class Output:
    """stdout for results (JSON, JSON lines or a table), stderr for notes; rich turns colors
    off when the stream is not a terminal or NO_COLOR is set."""

    def __init__(self) -> None:
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, value: Any) -> None:
        """One JSON value: indented and colored on a terminal, one line otherwise."""
        if self.out.is_terminal:
            self.out.print_json(dumps(value))
        else:
            self.line(dumps(value))

    def line(self, text: str) -> None:
        """One line, flushed at once (so it can be piped)."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def note(self, text: str, style: str = "dim") -> None:
        self.err.print(Text(text, style=style))


# ---- running a command ----------------------------------------------------------------------


class Stopped(Exception):
    """SIGINT or SIGTERM arrived: the command was cancelled and its client shut down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine. SIGINT / SIGTERM cancel it, so `async with client` shuts the
    client down on the way out, and the command exits with 128 + the signal number."""

    async def main() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        received: list[int] = []

        def stop(signum: int) -> None:
            received.append(signum)
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop, signum)
        try:
            return await coro
        except asyncio.CancelledError:
            if received:
                raise Stopped(received[0]) from None
            raise

    return asyncio.run(main())


# ---- commands -------------------------------------------------------------------------------


@click.group(context_settings=CONTEXT)
@click.option(
    "--url",
    envvar="SYNC_URL",
    default=DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    help="Server base URL (several nodes of one cluster: separated by commas).",
)
@click.option("--token", envvar="SYNC_TOKEN", show_envvar=True, help="Access token.")
@click.option(
    "--identity",
    envvar="SYNC_IDENTITY",
    show_envvar=True,
    help="Mint a token for this identity from SYNC_ACCOUNT_SID, SYNC_API_KEY, SYNC_API_SECRET"
    " and SYNC_SERVICE_SID (the secret is read from the environment only).",
)
@click.option("--account-sid", envvar="SYNC_ACCOUNT_SID", show_envvar=True, help="For --identity.")
@click.option("--api-key", envvar="SYNC_API_KEY", show_envvar=True, help="For --identity.")
@click.option("--service-sid", envvar="SYNC_SERVICE_SID", show_envvar=True, help="For --identity.")
@click.option(
    "--token-ttl",
    type=click.IntRange(60, 86_400),
    default=3600,
    show_default=True,
    help="Lifetime of a minted token in seconds (renewed while `watch` runs).",
)
@click.option(
    "--timeout",
    envvar="SYNC_TIMEOUT",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    show_envvar=True,
    help="Seconds to wait for the connection and for each call.",
)
@click.option(
    "--log-level",
    type=click.Choice(["silent", "error", "warn", "info", "debug", "trace"]),
    default="silent",
    show_default=True,
    help="Log the SDK's connection activity to stderr.",
)
@click.version_option(__version__, "-V", "--version", prog_name="sync-sdk")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str,
    token: str | None,
    identity: str | None,
    account_sid: str | None,
    api_key: str | None,
    service_sid: str | None,
    token_ttl: int,
    timeout: float,
    log_level: str,
) -> None:
    """Read, write and watch Sync documents, lists, maps and streams.

    NAME is an object's unique name or SID. DATA is a JSON object ('-' reads it from stdin).
    Exit status: 0 done, 1 error from the server or the connection, 2 usage error,
    130 interrupted (Ctrl-C), 143 terminated.
    """
    if log_level != "silent":
        import logging

        logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Config(
        url=url,
        token=token,
        token_on_command_line=ctx.get_parameter_source("token") is ParameterSource.COMMANDLINE,
        identity=identity,
        account_sid=account_sid,
        api_key=api_key,
        api_secret=os.environ.get("SYNC_API_SECRET"),
        service_sid=service_sid,
        token_ttl=token_ttl,
        timeout=timeout,
        log_level=log_level,
    )
    if (
        ctx.get_parameter_source("identity") is ParameterSource.COMMANDLINE
        and ctx.obj.token_on_command_line
    ):
        raise click.UsageError("pass either --token or --identity, not both")


KIND_ARG = click.argument("kind", type=click.Choice(KINDS), metavar="KIND")
NAME_ARG = click.argument("name")
TTL_OPT = click.option(
    "--ttl",
    type=click.IntRange(0, 31_536_000),
    default=None,
    help="Expire the written document or item after this many seconds (0: never).",
)


@cli.command()
@KIND_ARG
@NAME_ARG
@click.argument("ref", nargs=-1, metavar="[INDEX|KEY]")
@click.pass_context
def get(ctx: click.Context, kind: Kind, name: str, ref: tuple[str, ...]) -> int:
    """Print a document's data, or a list or map item's data, as JSON.

    \b
      sync-sdk get document settings
      sync-sdk get list tasks 0
      sync-sdk get map presence alice
    """
    cfg, out = config(ctx), Output()
    if kind == "stream":
        raise not_for("get", kind, "streams keep no data; use 'sync-sdk watch stream NAME'")
    names = [] if kind == "document" else [item_ref_name(kind)]
    key = (expect("get", kind, ref, names) or [""])[0]
    index = parse_index(key) if kind == "list" else 0

    async def body() -> int:
        async with cfg.client() as client:
            if kind == "document":
                doc = await client.document(name, mode="open_existing")
                out.json(doc.data)
            elif kind == "list":
                lst = await client.list(name, mode="open_existing")
                out.json((await lst.get(index)).data)
            else:
                mp = await client.map(name, mode="open_existing")
                out.json((await mp.get(key)).data)
        return 0

    return run_async(body())


@cli.command(name="set")
@KIND_ARG
@NAME_ARG
@click.argument("args", nargs=-1, metavar="[INDEX|KEY] DATA")
@TTL_OPT
@click.pass_context
def set_(ctx: click.Context, kind: Kind, name: str, args: tuple[str, ...], ttl: int | None) -> int:
    """Replace a document's data, or a list item's or map item's data.

    Creates the document or map item (and the list or map) if missing; a list item must exist
    (add one with 'push'). Prints the document's data, or the item, as JSON.

    \b
      sync-sdk set document settings '{"theme": "dark"}'
      sync-sdk set list tasks 0 '{"title": "write docs", "done": true}'
      sync-sdk set map presence alice '{"online": true}' --ttl 60
    """
    return _write(ctx, "set", kind, name, args, ttl, merge=False)


@cli.command()
@KIND_ARG
@NAME_ARG
@click.argument("args", nargs=-1, metavar="[INDEX|KEY] PATCH")
@TTL_OPT
@click.pass_context
def update(
    ctx: click.Context, kind: Kind, name: str, args: tuple[str, ...], ttl: int | None
) -> int:
    """Merge PATCH (a JSON object) into a document's or item's data, keeping other keys.

    \b
      sync-sdk update document settings '{"lang": "en"}'
      sync-sdk update map presence alice '{"status": "away"}'
    """
    return _write(ctx, "update", kind, name, args, ttl, merge=True)


def _write(
    ctx: click.Context,
    command: str,
    kind: Kind,
    name: str,
    args: tuple[str, ...],
    ttl: int | None,
    *,
    merge: bool,
) -> int:
    cfg, out = config(ctx), Output()
    data_name = "PATCH" if merge else "DATA"
    if kind == "stream":
        raise not_for(command, kind, "use 'sync-sdk publish stream NAME DATA'")
    if kind == "document":
        (raw,) = expect(command, kind, args, [data_name])
        key = ""
    else:
        key, raw = expect(command, kind, args, [item_ref_name(kind), data_name])
    data = parse_data(raw, data_name)
    index = parse_index(key) if kind == "list" else 0

    async def body() -> int:
        async with cfg.client() as client:
            if kind == "document":
                doc = await client.document(name)
                out.json(await (doc.update(data, ttl=ttl) if merge else doc.set(data, ttl=ttl)))
            elif kind == "list":
                lst = await client.list(name)
                item: Item = await (
                    lst.update(index, data, ttl=ttl) if merge else lst.set(index, data, ttl=ttl)
                )
                out.json(item_json(item))
            else:
                mp = await client.map(name)
                item = await (
                    mp.update(key, data, ttl=ttl) if merge else mp.set(key, data, ttl=ttl)
                )
                out.json(item_json(item))
        return 0

    return run_async(body())


@cli.command()
@click.argument("kind", type=click.Choice(["list"]), metavar="list")
@NAME_ARG
@click.argument("data", metavar="DATA")
@TTL_OPT
@click.pass_context
def push(ctx: click.Context, kind: str, name: str, data: str, ttl: int | None) -> int:
    """Append an item to a list (created if missing); prints the item with its new index.

    \b
      sync-sdk push list tasks '{"title": "write docs"}'
    """
    cfg, out = config(ctx), Output()
    value = parse_data(data)

    async def body() -> int:
        async with cfg.client() as client:
            lst = await client.list(name)
            out.json(item_json(await lst.push(value, ttl=ttl)))
        return 0

    return run_async(body())


@cli.command()
@click.argument("kind", type=click.Choice(["stream"]), metavar="stream")
@NAME_ARG
@click.argument("data", metavar="DATA")
@click.pass_context
def publish(ctx: click.Context, kind: str, name: str, data: str) -> int:
    """Publish a message (a JSON object of at most 4 KiB) to a stream (created if missing).

    \b
      sync-sdk publish stream chat '{"text": "hi"}'
    """
    cfg, out = config(ctx), Output()
    value = parse_data(data)

    async def body() -> int:
        async with cfg.client() as client:
            stream = await client.stream(name)
            message = await stream.publish_message(value)
            out.json({"sid": message.sid, "data": message.data})
        return 0

    return run_async(body())


@cli.command()
@KIND_ARG
@NAME_ARG
@click.argument("ref", nargs=-1, metavar="[INDEX|KEY]")
@click.pass_context
def remove(ctx: click.Context, kind: Kind, name: str, ref: tuple[str, ...]) -> int:
    """Remove a list or map item, or (without INDEX / KEY) the whole object.

    \b
      sync-sdk remove map presence alice      # one item
      sync-sdk remove list tasks 3            # one item
      sync-sdk remove document settings       # the whole document
      sync-sdk remove map presence            # the whole map and every item
    """
    cfg = config(ctx)
    if len(ref) > (0 if kind in ("document", "stream") else 1):
        raise click.UsageError(
            f"unexpected argument {ref[-1]!r} (usage: sync-sdk remove {kind} NAME"
            + ("" if kind in ("document", "stream") else f" [{item_ref_name(kind)}]")
            + ")"
        )
    key = ref[0] if ref else None
    index = parse_index(key) if kind == "list" and key is not None else 0

    async def body() -> int:
        async with cfg.client() as client:
            if kind == "document":
                await (await client.document(name, mode="open_existing")).remove_document()
            elif kind == "stream":
                await (await client.stream(name, mode="open_existing")).remove_stream()
            elif kind == "list":
                lst = await client.list(name, mode="open_existing")
                await (lst.remove_list() if key is None else lst.remove(index))
            else:
                mp = await client.map(name, mode="open_existing")
                await (mp.remove_map() if key is None else mp.remove(key))
        return 0

    return run_async(body())


@cli.command()
@click.argument("kind", type=click.Choice(["list", "map"]), metavar="list|map")
@NAME_ARG
@click.option("--from", "start", metavar="INDEX|KEY", help="Start at this index or key.")
@click.option("--order", type=click.Choice(["asc", "desc"]), default="asc", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@click.option(
    "--page-size",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=MAX_PAGE_SIZE,
    show_default=True,
    help="Items fetched per request.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, not a table.")
@click.pass_context
def items(
    ctx: click.Context,
    kind: Literal["list", "map"],
    name: str,
    start: str | None,
    order: Literal["asc", "desc"],
    limit: int | None,
    page_size: int,
    as_json: bool,
) -> int:
    """Print every item of a list or map (fetched page by page), as a table or JSON lines.

    \b
      sync-sdk items list tasks
      sync-sdk items map presence --json | jq .key
    """
    cfg, out = config(ctx), Output()
    index = parse_index(start, "--from") if kind == "list" and start is not None else None

    async def every_item(client: Client) -> AsyncIterator[Item]:
        count = 0
        page: Any
        if kind == "list":
            page = await (await client.list(name, mode="open_existing")).get_items(
                from_=index, page_size=page_size, order=order
            )
        else:
            page = await (await client.map(name, mode="open_existing")).get_items(
                from_=start, page_size=page_size, order=order
            )
        while True:
            for item in page.items:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item
            if not page.has_next_page:
                return
            page = await page.next_page()

    async def body() -> int:
        async with cfg.client() as client:
            if as_json:
                async for item in every_item(client):
                    out.line(dumps(item_json(item)))
                return 0
            table = Table(item_ref_name(kind).lower(), "data", "updated", "expires")
            async for item in every_item(client):
                row = item_json(item)
                table.add_row(
                    str(row.get("index", row.get("key"))),
                    dumps(row["data"]),
                    row["date_updated"],
                    row["date_expires"] or "",
                )
            out.out.print(table)
        return 0

    return run_async(body())


# ---- watch ----------------------------------------------------------------------------------

_EVENT_STYLE = {
    "updated": "yellow",
    "item_added": "green",
    "item_updated": "yellow",
    "item_removed": "red",
    "message_published": "cyan",
    "removed": "bold red",
}


@dataclass(frozen=True)
class Failed:
    """The watch cannot go on (the token was refused, the subscription failed)."""

    message: str


@dataclass(frozen=True)
class Note:
    """A connection change, reported on stderr."""

    message: str


Record: TypeAlias = dict[str, Any] | Failed | Note


@cli.command()
@KIND_ARG
@NAME_ARG
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--create", is_flag=True, help="Create the object if it does not exist.")
@click.pass_context
def watch(ctx: click.Context, kind: Kind, name: str, as_json: bool, create: bool) -> int:
    """Print live events of an object until Ctrl-C (or until the object is removed).

    Reconnects by itself and catches up, so no event is missed or repeated. With --json each
    line is {"event", "object", "index" or "key", "data", "previous_data", "event_id"}
    (a stream message: "sid" instead of the index or key, no event id). Connection notes go
    to stderr. Exits 0 when the object is removed, 130 on Ctrl-C, 143 on SIGTERM.

    \b
      sync-sdk watch map presence
      sync-sdk watch list tasks --json | jq -c .data
    """
    cfg, out = config(ctx), Output()
    mode: OpenMode = "open_or_create" if create else "open_existing"
    return run_async(_watch(cfg, out, kind, name, mode, as_json))


def _event(name: str, event: str, **fields: Any) -> dict[str, Any]:
    return {"event": event, "object": name, **fields}


async def _open_watched(
    client: Client, kind: Kind, name: str, mode: OpenMode, put: Callable[[Record], None]
) -> SyncDocument[JsonObject] | SyncList[JsonObject] | SyncMap[JsonObject] | SyncStream[JsonObject]:
    """Open the object and turn each of its events into a record for `put`."""

    def item_event(event: str, item: Item, previous: JsonObject | None) -> None:
        ref = item_json(item)
        put(
            _event(
                name,
                event,
                **{k: ref[k] for k in ("index", "key") if k in ref},
                data=item.data,
                previous_data=previous,
                event_id=item.last_event_id,
            )
        )

    def removed(e: CollectionRemovedEvent | DocumentRemovedEvent[JsonObject]) -> None:
        previous = e.previous_data if isinstance(e, DocumentRemovedEvent) else None
        put(_event(name, "removed", data=None, previous_data=previous, event_id=None))

    if kind == "document":
        doc = await client.document(name, mode=mode)

        def updated(e: DocumentUpdatedEvent[JsonObject]) -> None:
            put(
                _event(
                    name,
                    "updated",
                    data=e.data,
                    previous_data=e.previous_data,
                    event_id=e.event_id,
                )
            )

        doc.on("updated", updated)
        doc.on("removed", removed)
        return doc
    if kind == "list":
        lst = await client.list(name, mode=mode)

        def list_added(e: ListItemAddedEvent[JsonObject]) -> None:
            item_event("item_added", e.item, None)

        def list_updated(e: ListItemUpdatedEvent[JsonObject]) -> None:
            item_event("item_updated", e.item, e.previous_item_data)

        def list_removed(e: ListItemRemovedEvent[JsonObject]) -> None:
            put(
                _event(
                    name,
                    "item_removed",
                    index=e.index,
                    data=None,
                    previous_data=e.previous_item_data,
                    event_id=e.event_id,
                )
            )

        lst.on("item_added", list_added)
        lst.on("item_updated", list_updated)
        lst.on("item_removed", list_removed)
        lst.on("removed", removed)
        return lst
    if kind == "map":
        mp = await client.map(name, mode=mode)

        def map_added(e: MapItemAddedEvent[JsonObject]) -> None:
            item_event("item_added", e.item, None)

        def map_updated(e: MapItemUpdatedEvent[JsonObject]) -> None:
            item_event("item_updated", e.item, e.previous_item_data)

        def map_removed(e: MapItemRemovedEvent[JsonObject]) -> None:
            put(
                _event(
                    name,
                    "item_removed",
                    key=e.key,
                    data=None,
                    previous_data=e.previous_item_data,
                    event_id=e.event_id,
                )
            )

        mp.on("item_added", map_added)
        mp.on("item_updated", map_updated)
        mp.on("item_removed", map_removed)
        mp.on("removed", removed)
        return mp
    stream = await client.stream(name, mode=mode)

    def published(e: StreamMessagePublishedEvent[JsonObject]) -> None:
        put(
            _event(
                name,
                "message_published",
                sid=e.message.sid,
                data=e.message.data,
                previous_data=None,
                event_id=None,
            )
        )

    stream.on("message_published", published)
    stream.on("removed", removed)
    return stream


def render(record: dict[str, Any]) -> Text:
    """`12:00:01 item_added presence alice {"online": true} #5`, colored by event."""
    event = str(record["event"])
    text = Text.assemble(
        (datetime.now().strftime("%H:%M:%S"), "dim"),
        " ",
        (event, _EVENT_STYLE.get(event, "bold")),
        " ",
        (str(record["object"]), "bold"),
    )
    for field in ("index", "key", "sid"):
        if field in record:
            text.append(f" {record[field]}", style="bold cyan")
    if record.get("data") is not None:
        text.append(" " + dumps(record["data"]))
    elif record.get("previous_data") is not None:
        text.append(" was " + dumps(record["previous_data"]), style="dim")
    if record.get("event_id") is not None:
        text.append(f" #{record['event_id']}", style="dim")
    return text


async def _watch(
    cfg: Config, out: Output, kind: Kind, name: str, mode: OpenMode, as_json: bool
) -> int:
    queue: asyncio.Queue[Record] = asyncio.Queue()
    last_error: list[str] = []
    was_connected = False

    def on_state(state: ConnectionState) -> None:
        nonlocal was_connected
        if state is ConnectionState.CONNECTED:
            if was_connected:
                queue.put_nowait(Note("reconnected"))
            was_connected = True
        elif state is ConnectionState.CONNECTING and was_connected:
            queue.put_nowait(Note("connection lost; reconnecting..."))
        elif state in (ConnectionState.DENIED, ConnectionState.ERROR) and was_connected:
            detail = last_error[-1] if last_error else f"connection {state.value}"
            queue.put_nowait(Failed(detail))

    def on_error(e: ConnectionErrorEvent) -> None:
        last_error.append(f"connection error ({e.code}): {e.message}")
        if e.terminal:
            queue.put_nowait(Failed(last_error[-1]))

    def on_subscription(state: SubscriptionState) -> None:
        if state is SubscriptionState.FAILED:
            queue.put_nowait(Failed(f"the subscription to {kind} {name!r} failed"))

    async with cfg.client() as client:
        was_connected = True
        client.on("connection_state_changed", on_state)
        client.on("connection_error", on_error)
        handle = await _open_watched(client, kind, name, mode, queue.put_nowait)
        handle.on("subscription_state_changed", on_subscription)
        out.note(f"watching {kind} {name} (Ctrl-C to stop)")
        while True:
            record = await queue.get()
            if isinstance(record, Note):
                out.note(record.message)
                continue
            if isinstance(record, Failed):
                out.note(f"sync-sdk: {record.message}", style="red")
                return EXIT_ERROR
            if as_json:
                out.line(dumps(record))
            else:
                out.out.print(render(record))
            if record["event"] == "removed":
                out.note(f"{kind} {name} was removed")
                return 0


# ---- token ----------------------------------------------------------------------------------


@cli.command()
@click.pass_context
def token(ctx: click.Context) -> int:
    """Print an access token minted for --identity (to export as SYNC_TOKEN).

    \b
      export SYNC_TOKEN=$(sync-sdk --identity alice token)
    """
    cfg = config(ctx)
    if not cfg.identity:
        raise click.UsageError("'token' mints a token: pass --identity (or set SYNC_IDENTITY)")
    value, _ = cfg.access_token()
    Output().line(value)
    return 0


# ---- entry point ----------------------------------------------------------------------------


def _fail(message: str, status: int) -> int:
    sys.stdout.flush()
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text(f"sync-sdk: {message}", style="red")
    )
    return status


def run(argv: Sequence[str]) -> int:
    """Run the command line; every failure becomes one line on stderr and an exit status."""
    try:
        result = cli.main(list(argv), prog_name="sync-sdk", standalone_mode=False)
        sys.stdout.flush()
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        message = " ".join(exc.format_message().split())
        if message.startswith("missing argument") or "(usage:" in message:
            hint = ""
        return _fail(message + hint, EXIT_USAGE)
    except click.ClickException as exc:
        return _fail(" ".join(exc.format_message().split()), exc.exit_code)
    except click.exceptions.Abort:
        return _fail("aborted", 128 + signal.SIGINT)
    except SyncError as exc:
        return _fail(describe(exc), EXIT_ERROR)
    except Stopped as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # The reader went away (`sync-sdk items ... | head`): stop quietly, like other tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except Exception as exc:
        if os.environ.get("SYNC_CLI_DEBUG"):
            raise
        return _fail(f"unexpected error: {type(exc).__name__}: {exc}", EXIT_ERROR)
