"""The backend of the browser example: serves the page, Twilio's JavaScript Sync SDK (the
browser build from npm), `/token?identity=...`, which mints an access token for the page, and
`/leave`, where a closing page says goodbye (see `leave` below).

This is the pattern Twilio recommends: the secret that signs tokens stays on your server, and
the browser asks your server for a token. The page then talks to the Sync server directly
(over Twilsock, a WebSocket), never through this backend.

    python examples/web/app.py --sync-url http://127.0.0.1:4700 --data-dir ./.sync-data

Credentials (the same ones the Sync server uses, see `sync-server serve`) come from the flags,
else the SYNC_ACCOUNT_SID / SYNC_API_KEY / SYNC_API_SECRET / SYNC_SERVICE_SID environment,
else the `credentials.json` a development Sync server keeps in its data directory.

There is no login here: the page says who it is (`?identity=alice`) and gets a token for that
identity. A real app would take the identity from its own session instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sync_sdk import NotFoundError, SyncError
from sync_sdk.rest import SyncRestClient, mint_access_token
from sync_server.credentials import (
    CREDENTIALS_FILE,
    ENV_ACCOUNT_SID,
    ENV_SERVICE_SID,
    Credentials,
    load_credentials,
)
from sync_server.tokens import verify_token

HERE = Path(__file__).resolve().parent
# The browser build of twilio-sync 4.0.1, installed by `cd tests/js && npm ci` (not in git).
DEFAULT_SDK = HERE.parents[1] / "tests/js/node_modules/twilio-sync/builds/twilio-sync.min.js"
IDENTITY = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def create_app(credentials: Credentials, sync_url: str, sdk: Path, token_ttl: int) -> Starlette:
    """The example's web app: `/`, `/app.js`, `/twilio-sync.min.js`, `/token` and `/leave`."""

    async def token(request: Request) -> Response:
        identity = request.query_params.get("identity", "")
        if not IDENTITY.fullmatch(identity):
            return PlainTextResponse("identity: 1 to 64 of A-Z a-z 0-9 _ . @ -", status_code=400)
        jwt = mint_access_token(
            account_sid=credentials.account_sid,
            api_key_sid=credentials.api_key_sid,
            api_secret=credentials.api_secret,
            service_sid=credentials.service_sid,
            identity=identity,
            ttl=token_ttl,
        )
        return JSONResponse({"identity": identity, "token": jwt, "syncUrl": sync_url})

    async def leave(request: Request) -> Response:
        """A closing page's `navigator.sendBeacon("/leave", token)`: remove its presence item
        over the REST API. The page cannot do it with the SDK: twilio-sync starts every request
        from a timer (its retrier's `setTimeout`), and no timer runs once a page is unloading.
        The token says who is leaving, so a page can only remove its own item."""
        try:
            claims = verify_token(
                (await request.body()).decode(),
                keys={credentials.api_key_sid: credentials.api_secret},
                account_sid=credentials.account_sid,
            )
        except (SyncError, UnicodeDecodeError):
            return PlainTextResponse("the body must be a valid access token", status_code=403)
        async with SyncRestClient(
            credentials.account_sid,
            api_key=credentials.api_key_sid,
            api_secret=credentials.api_secret,
            base_url=sync_url,
        ) as rest:
            presence = rest.service(credentials.service_sid).maps("presence")
            with contextlib.suppress(NotFoundError):  # already gone (or never there)
                await presence.items(claims.identity).delete()
        return Response(status_code=204)

    def file(path: Path, media_type: str) -> Route:
        async def serve(request: Request) -> Response:
            return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

        return Route("/" + ("" if path.name == "index.html" else path.name), serve)

    return Starlette(
        routes=[
            file(HERE / "index.html", "text/html"),
            file(HERE / "app.js", "text/javascript"),
            file(sdk, "text/javascript"),
            Route("/token", token),
            Route("/leave", leave, methods=["POST"]),
        ]
    )


def resolve_credentials(args: argparse.Namespace) -> Credentials:
    """The flags, else the environment, else the Sync server's credentials.json."""
    has_own = (args.account_sid or os.environ.get(ENV_ACCOUNT_SID)) and (
        args.service_sid or os.environ.get(ENV_SERVICE_SID)
    )
    stored = args.data_dir / CREDENTIALS_FILE
    if not has_own and not stored.is_file():
        # load_credentials would generate a new development set here, which the Sync server
        # would not know: refuse instead.
        raise SystemExit(
            f"web example: no credentials: {stored} does not exist. Point --data-dir at the "
            "data directory of the running sync-server, or give --account-sid, --api-key, "
            "--api-secret and --service-sid (or SYNC_ACCOUNT_SID, SYNC_API_KEY, "
            "SYNC_API_SECRET, SYNC_SERVICE_SID)."
        )
    try:
        return load_credentials(
            args.data_dir,
            account_sid=args.account_sid,
            api_key=args.api_key,
            api_secret=args.api_secret,
            service_sid=args.service_sid,
        )
    except ValueError as exc:
        raise SystemExit(f"web example: {exc}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4800, help="0 picks a free port")
    parser.add_argument(
        "--sync-url",
        default=os.environ.get("SYNC_SERVER_URL", "http://127.0.0.1:4700"),
        help="the Sync server as the browser reaches it (env SYNC_SERVER_URL)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".sync-data"))
    parser.add_argument("--account-sid")
    parser.add_argument("--api-key")
    parser.add_argument("--api-secret")
    parser.add_argument("--service-sid")
    parser.add_argument("--token-ttl", type=int, default=3600, help="seconds")
    parser.add_argument("--sdk", type=Path, default=DEFAULT_SDK, help="twilio-sync.min.js")
    args = parser.parse_args()

    if not args.sdk.is_file():
        raise SystemExit(
            f"web example: {args.sdk} not found: install twilio-sync with "
            "`cd tests/js && npm ci` (or pass --sdk)"
        )
    credentials = resolve_credentials(args)
    app = create_app(credentials, args.sync_url.rstrip("/"), args.sdk, args.token_ttl)

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen()
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"web example on http://{host}:{port}/ (Sync server {args.sync_url})", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


if __name__ == "__main__":
    main()
