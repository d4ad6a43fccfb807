"""Conversion between wire JSON and the application's data type (dict or pydantic model)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, cast

from pydantic import BaseModel, ValidationError
from sync_generated.client import T
from sync_generated.errors import InvalidDocumentDataError

from .validation import is_json_object

JsonObject = dict[str, Any]


class DataCodec(Generic[T]):
    """Decodes wire data into T and encodes T to a JSON object. T is JsonObject unless a
    pydantic `data_type` was given."""

    __slots__ = ("data_type",)

    def __init__(self, data_type: type[BaseModel] | None) -> None:
        self.data_type = data_type

    def decode(self, raw: JsonObject) -> T:
        if self.data_type is None:
            return cast(T, raw)
        try:
            return cast(T, self.data_type.model_validate(raw))
        except ValidationError as exc:
            raise InvalidDocumentDataError(
                f"data does not match {self.data_type.__name__}: {exc.errors()[0]['msg']}"
            ) from None

    def decode_optional(self, raw: JsonObject | None) -> T | None:
        return None if raw is None else self.decode(raw)

    def encode(self, value: object) -> JsonObject:
        if self.data_type is None and is_json_object(value):
            return value  # the common case, before the isinstance check on BaseModel
        if isinstance(value, BaseModel):
            if self.data_type is not None and not isinstance(value, self.data_type):
                raise InvalidDocumentDataError(
                    f"expected {self.data_type.__name__}, got {type(value).__name__}"
                )
            return value.model_dump(mode="json")
        if self.data_type is not None and isinstance(value, dict):
            # Accept a dict for a typed object, but only if it validates.
            return self.data_type.model_validate(value).model_dump(mode="json")
        if not is_json_object(value):
            raise InvalidDocumentDataError(
                f"data must be a JSON object (dict), got {type(value).__name__}"
            )
        return value


def parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidDocumentDataError(f"expected a timestamp, got {value!r}")
    return datetime.fromisoformat(value)


def parse_optional_time(value: object) -> datetime | None:
    return None if value is None else parse_time(value)


def as_utc(value: datetime) -> datetime:
    """A timestamp parsed by pydantic, with the tzinfo `parse_time` gives (datetime.UTC)."""
    return value.astimezone(UTC)


def as_optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)
