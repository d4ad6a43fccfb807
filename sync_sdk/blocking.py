"""The blocking client: `sync_sdk`'s API without `await`, for scripts, web views (Django,
Flask), task queues (Celery) and notebooks.

    from sync_sdk.blocking import Client, ClientOptions

    with Client(token, ClientOptions(url="http://127.0.0.1:4700")) as client:
        orders = client.map("orders", data_type=Order)  # SyncMap[Order]
        orders.on("item_added", lambda e: print(e.item.data.total))  # on the client's thread
        orders.set("o1", Order(total=3))

Each `Client` runs the async client on an event loop of its own, on a thread of its own;
event handlers and `mutate` callbacks run on that thread, and calling a blocking method
from them raises `BlockingCallInHandlerError`. The classes are generated from the async
ones (generated/sync_generated/blocking.py); options, events, items and errors are the
same objects as in `sync_sdk`.
"""

from sync_generated import errors as _errors
from sync_generated.blocking import Client, Paginator, SyncDocument, SyncList, SyncMap, SyncStream
from sync_generated.errors import *  # noqa: F403

from . import shared
from .shared import *  # noqa: F403

__all__ = ["Client", "Paginator", "SyncDocument", "SyncList", "SyncMap", "SyncStream"]
__all__ += shared.__all__
__all__ += _errors.__all__
