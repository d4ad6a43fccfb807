"""sync_sdk: a typed async client for real-time shared state (Documents, Lists, Maps, Streams).

from sync_sdk import Client, ClientOptions

async with Client(token, ClientOptions(url="http://127.0.0.1:4700")) as client:
    doc = await client.document("settings")
    doc.on("updated", lambda e: print(e.data, e.is_local))
    await doc.set({"theme": "dark"})

The same API without `await` is `sync_sdk.blocking`.
"""

from sync_generated import errors as _errors
from sync_generated.errors import *  # noqa: F403

from . import shared
from .client import Client
from .objects import Paginator, SyncDocument, SyncList, SyncMap, SyncStream
from .shared import *  # noqa: F403

__all__ = ["Client", "Paginator", "SyncDocument", "SyncList", "SyncMap", "SyncStream"]
__all__ += shared.__all__
__all__ += _errors.__all__
