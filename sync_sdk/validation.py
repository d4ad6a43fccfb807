"""Validation of names, keys, data, TTLs and paging arguments, with the service's error codes.

Shared by the SDK and the server: the SDK checks a call's arguments with these before
sending it, and the server (realtime protocol and REST API) applies the same functions to
every request, so both reject the same input with the same error.
"""

from __future__ import annotations

from typing import Any, Literal, TypeGuard, overload

import orjson
from sync_generated.client import (
    MAX_DATA_BYTES,
    MAX_DATA_DEPTH,
    MAX_MAP_KEY_LENGTH,
    MAX_PAGE_SIZE,
    MAX_TTL_SECONDS,
    MAX_UNIQUE_NAME_LENGTH,
)
from sync_generated.errors import (
    DataTooLargeError,
    InvalidDocumentDataError,
    InvalidMapKeyError,
    InvalidRequestError,
    InvalidTtlError,
    InvalidUniqueNameError,
)

__all__ = [
    "check_data",
    "check_index",
    "check_map_key",
    "check_mode",
    "check_order",
    "check_page_size",
    "check_ttl",
    "check_unique_name",
]

JsonObject = dict[str, Any]


def is_json_object(value: object) -> TypeGuard[JsonObject]:
    """Whether `value` (decoded from untyped input) is a JSON object: a dict."""
    return isinstance(value, dict)


def _is_container(value: object) -> TypeGuard[JsonObject | list[Any]]:
    return isinstance(value, (dict, list))


def check_data(data: object, limit: int = MAX_DATA_BYTES, *, what: str = "data") -> JsonObject:
    """A JSON object nested at most MAX_DATA_DEPTH deep and of at most `limit` bytes when
    encoded (54101 / 54006). The server applies this same function to every write."""
    if not is_json_object(data):
        raise InvalidDocumentDataError(
            f"{what} must be a JSON object (dict), got {type(data).__name__}"
        )
    _check_depth(data, what)
    try:
        size = len(orjson.dumps(data))
    except TypeError as exc:
        raise InvalidDocumentDataError(f"{what} is not JSON-serializable: {exc}") from None
    if size > limit:
        raise DataTooLargeError(f"{what} is {size} bytes of JSON; the limit is {limit}")
    return data


def _check_depth(data: JsonObject, what: str) -> None:
    for value in data.values():
        if isinstance(value, (dict, list)):
            break
    else:
        return  # a flat object (the common case)
    level: list[dict[str, Any] | list[Any]] = [data]
    for _ in range(MAX_DATA_DEPTH):
        nested: list[dict[str, Any] | list[Any]] = []
        for value in level:
            children = value.values() if isinstance(value, dict) else value
            nested.extend(v for v in children if _is_container(v))
        if not nested:
            return
        level = nested
    raise InvalidDocumentDataError(f"{what} is nested more than {MAX_DATA_DEPTH} levels deep")


@overload
def check_ttl(ttl: object, *, optional: Literal[False]) -> int: ...
@overload
def check_ttl(ttl: object, *, optional: bool = True) -> int | None: ...
def check_ttl(ttl: object, *, optional: bool = True) -> int | None:
    """0 (never expires) to 31,536,000 seconds (54011); None too if `optional`."""
    if ttl is None and optional:
        return None
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL_SECONDS:
        raise InvalidTtlError(
            f"ttl must be an int from 0 to {MAX_TTL_SECONDS} seconds, got {ttl!r}"
        )
    return ttl


def check_unique_name(name: object) -> str | None:
    """A non-empty string of at most 320 characters, or None (54302)."""
    if name is None:
        return None
    if not isinstance(name, str) or not name or len(name) > MAX_UNIQUE_NAME_LENGTH:
        raise InvalidUniqueNameError(
            f"id must be a SID or a unique name of 1 to {MAX_UNIQUE_NAME_LENGTH} characters, got {name!r:.80}"
        )
    _check_text(name, InvalidUniqueNameError, "unique name")
    return name


def check_map_key(key: object) -> str:
    """A non-empty string of at most 320 characters (54209)."""
    if not isinstance(key, str) or not key or len(key) > MAX_MAP_KEY_LENGTH:
        raise InvalidMapKeyError(
            f"map key must be a string of 1 to {MAX_MAP_KEY_LENGTH} characters, got {key!r:.80}"
        )
    _check_text(key, InvalidMapKeyError, "map key")
    return key


def _check_text(
    text: str,
    error: type[InvalidRequestError] | type[InvalidMapKeyError] | type[InvalidUniqueNameError],
    what: str,
) -> None:
    if not text.isascii():  # ASCII (the common case) has no lone surrogate
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise error(f"{what} is not valid unicode (lone surrogate)") from None
    if "\x00" in text:
        raise error(f"{what} must not contain NUL characters")


def check_index(index: object) -> int:
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise InvalidRequestError(f"list index must be an int >= 0, got {index!r:.80}")
    return index


def check_page_size(page_size: object) -> int:
    if (
        not isinstance(page_size, int)
        or isinstance(page_size, bool)
        or not 1 <= page_size <= MAX_PAGE_SIZE
    ):
        raise InvalidRequestError(
            f"page_size must be an int from 1 to {MAX_PAGE_SIZE}, got {page_size!r}"
        )
    return page_size


def check_order(order: object) -> Literal["asc", "desc"]:
    if order == "asc":
        return "asc"
    if order == "desc":
        return "desc"
    raise InvalidRequestError(f"order must be 'asc' or 'desc', got {order!r}")


def check_mode(mode: object) -> Literal["open_or_create", "open_existing", "create_new"]:
    if mode == "open_or_create":
        return "open_or_create"
    if mode == "open_existing":
        return "open_existing"
    if mode == "create_new":
        return "create_new"
    raise InvalidRequestError(
        f"mode must be 'open_or_create', 'open_existing' or 'create_new', got {mode!r}"
    )
