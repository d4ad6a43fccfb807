# Generated from spec/twilsock.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field


class Status(BaseModel):
    """
    The Twilsock result of a request, or why a connection is closed.
    """

    code: int
    status: str
    description: str | None = None
    errorCode: int | None = None
    """
    The Twilio error code (20104 makes the client emit tokenExpired).
    """


class InitHeader(BaseModel):
    method: Literal["init"]
    id: str
    token: str
    continuation_token: str | None = None
    capabilities: list[str] | None = None
    payload_size: Annotated[int | None, Field(ge=0)] = None


class UpdateHeader(BaseModel):
    method: Literal["update"]
    id: str
    token: str
    payload_size: Annotated[int | None, Field(ge=0)] = None


class Method(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"


class HttpRequest(BaseModel):
    """
    An HTTP request of the client API. `path` and the values of `params` are still percent-encoded; a repeated query parameter is a list.

    """

    host: str | None = None
    path: str
    method: Method
    params: dict[str, str | list[str]] | None = None
    headers: dict[str, str] | None = None


class MessageHeader(BaseModel):
    method: Literal["message"]
    id: str
    active_grant: str | None = None
    payload_type: str | None = None
    http_request: HttpRequest
    payload_size: Annotated[int | None, Field(ge=0)] = None


class CloseHeader(BaseModel):
    """
    Either side closes the connection (the server always says why in `status`).
    """

    method: Literal["close"]
    id: str
    status: Status | None = None
    payload_size: Annotated[int | None, Field(ge=0)] = None


class AckHeader(BaseModel):
    """
    The client confirms each server message it received; nothing answers it.
    """

    method: Literal["reply"]
    id: str
    status: Status | None = None
    payload_size: Annotated[int | None, Field(ge=0)] = None


class TelemetryHeader(BaseModel):
    """
    Sent only when the init reply confirmed the telemetry.v1 capability (ours does not).
    """

    method: Literal["telemetry.v1"]
    id: str
    payload_size: Annotated[int | None, Field(ge=0)] = None


class InitReplyHeader(BaseModel):
    """
    The answer to init and update. No offline_storage (it would switch the browser client to a session-storage cache) and no telemetry.v1 capability.

    """

    method: Literal["reply"]
    id: str
    status: Status
    continuation_token: str | None = None
    capabilities: list[str] | None = None
    payload_size: Annotated[int | None, Field(ge=0)] = None


class UpstreamReplyHeader(BaseModel):
    method: Literal["reply"]
    id: str
    status: Status
    http_status: Status
    http_headers: dict[str, str] | None = None
    payload_type: str | None = None
    payload_size: Annotated[int, Field(ge=0)]


class NotificationHeader(BaseModel):
    method: Literal["notification"]
    id: str
    message_type: str
    payload_type: str
    payload_size: Annotated[int, Field(ge=0)]


class ClientUpdateHeader(BaseModel):
    method: Literal["client_update"]
    id: str
    client_update_type: Literal["token_about_to_expire"]
    payload_size: Annotated[int | None, Field(ge=0)] = None
