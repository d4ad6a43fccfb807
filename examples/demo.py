"""`make demo`: start an embedded sync-server on a free port, run two clients that each open
a document, a list, a map and a stream and print every change the other one makes, live;
then shut everything down and exit 0."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sync_sdk import Client, ClientOptions
from sync_server.credentials import load_credentials
from sync_server.tokens import mint_token


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync_server",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    raise SystemExit(f"sync-server exited with {proc.wait()}")


async def run_client(
    name: str, url: str, token: str, peer_done: asyncio.Event, me_done: asyncio.Event
) -> None:
    def show(what: str, event: Any) -> None:
        if not event.is_local:  # print what the *other* client changed
            print(f"  [{name}] sees {what}", flush=True)

    async with Client(token, ClientOptions(url=url, log_level="warn")) as client:
        doc = await client.document("demo-settings")
        tasks = await client.list("demo-tasks")
        presence = await client.map("demo-presence")
        chat = await client.stream("demo-chat")
        doc.on("updated", lambda e: show(f"document updated -> {e.data}", e))
        tasks.on(
            "item_added", lambda e: show(f"list item #{e.item.index} added -> {e.item.data}", e)
        )
        tasks.on(
            "item_updated", lambda e: show(f"list item #{e.item.index} updated -> {e.item.data}", e)
        )
        presence.on(
            "item_added", lambda e: show(f"map item {e.item.key!r} added -> {e.item.data}", e)
        )
        presence.on("item_removed", lambda e: show(f"map item {e.key!r} removed", e))
        chat.on("message_published", lambda e: show(f"stream message -> {e.message.data}", e))
        await asyncio.sleep(0.2)  # let both clients subscribe before writing

        await presence.set(name, {"online": True})
        await doc.update({f"{name}_theme": "dark" if name == "alice" else "light"})
        item = await tasks.push({"title": f"task from {name}", "done": False})
        await tasks.update(item.index, {"done": True})
        await chat.publish_message({"from": name, "text": f"hello from {name}"})
        await presence.remove(name)
        me_done.set()
        await asyncio.wait_for(peer_done.wait(), 10)
        await asyncio.sleep(0.3)  # let the last events arrive
        print(f"  [{name}] final document: {doc.data}", flush=True)


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        proc, url = start_server(data_dir)
        try:
            creds = load_credentials(data_dir)

            def token(identity: str) -> str:
                return mint_token(
                    account_sid=creds.account_sid,
                    api_key_sid=creds.api_key_sid,
                    api_secret=creds.api_secret,
                    service_sid=creds.service_sid,
                    identity=identity,
                )

            print(f"sync-server running at {url}; two clients editing shared state:", flush=True)
            alice_done, bob_done = asyncio.Event(), asyncio.Event()
            await asyncio.gather(
                run_client("alice", url, token("alice"), bob_done, alice_done),
                run_client("bob", url, token("bob"), alice_done, bob_done),
            )
        finally:
            proc.terminate()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
    print("demo finished: both clients saw each other's changes live.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
