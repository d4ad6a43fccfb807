# Generated from spec/errors.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.
"""Typed errors. Every error raised by sync_sdk is a SyncError with a numeric `code`
(Twilio's where Twilio has one) and an HTTP-like `status`::

    SyncError
    ├── AccessError       The token or the ACL does not allow the call.
    ├── NotFoundError     The object or item does not exist (or expired).
    ├── ConflictError     A revision mismatch (If-Match) or a name/key that already exists.
    ├── InvalidInputError The call's arguments break a rule (size, TTL, name, JSON shape).
    ├── RateLimitError    Too many writes; retry later.
    ├── TransportError    The connection failed, timed out or was shut down.
    ├── ServerError       The server failed unexpectedly.
    └── UsageError        The SDK was called in a way that cannot work (a programming error, not a network condition).

Each code has its own subclass of a family (e.g. DocumentNotFoundError(NotFoundError),
code 54100, status 404); `error_for_code()` builds the right one from a code.
"""

from __future__ import annotations

from typing import ClassVar, Final


class SyncError(Exception):
    """Base of every error raised by sync_sdk; carries code (int) and status (HTTP-like int)."""

    code: int
    status: int
    message: str
    default_code: ClassVar[int] = 0
    default_status: ClassVar[int] = 0
    default_message: ClassVar[str] = "Sync error"

    def __init__(
        self, message: str | None = None, *, code: int | None = None, status: int | None = None
    ) -> None:
        self.code = self.default_code if code is None else code
        self.status = self.default_status if status is None else status
        self.message = message or self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} (code {self.code}, status {self.status})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code}, status={self.status})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self.code, self.status))


def _rebuild(cls: type[SyncError], message: str, code: int, status: int) -> SyncError:
    return cls(message, code=code, status=status)


class AccessError(SyncError):
    """The token or the ACL does not allow the call."""


class NotFoundError(SyncError):
    """The object or item does not exist (or expired)."""


class ConflictError(SyncError):
    """A revision mismatch (If-Match) or a name/key that already exists."""


class InvalidInputError(SyncError):
    """The call's arguments break a rule (size, TTL, name, JSON shape)."""


class RateLimitError(SyncError):
    """Too many writes; retry later."""


class TransportError(SyncError):
    """The connection failed, timed out or was shut down."""


class ServerError(SyncError):
    """The server failed unexpectedly."""


class UsageError(SyncError):
    """The SDK was called in a way that cannot work (a programming error, not a network condition)."""


class AuthenticationError(AccessError):
    """Authentication failed (20003, HTTP 401, Twilio code)."""

    default_code: ClassVar[int] = 20003
    default_status: ClassVar[int] = 401
    default_message: ClassVar[str] = "Authentication failed"


class InvalidTokenError(AccessError):
    """Invalid access token (20101, HTTP 401, Twilio code)."""

    default_code: ClassVar[int] = 20101
    default_status: ClassVar[int] = 401
    default_message: ClassVar[str] = "Invalid access token"


class TokenIssuerError(AccessError):
    """Invalid access token issuer or subject (20103, HTTP 401, Twilio code)."""

    default_code: ClassVar[int] = 20103
    default_status: ClassVar[int] = 401
    default_message: ClassVar[str] = "Invalid access token issuer or subject"


class TokenExpiredError(AccessError):
    """Access token expired or expiration date invalid (20104, HTTP 401, Twilio code)."""

    default_code: ClassVar[int] = 20104
    default_status: ClassVar[int] = 401
    default_message: ClassVar[str] = "Access token expired or expiration date invalid"


class TokenNotYetValidError(AccessError):
    """Access token not yet valid (20105, HTTP 401, Twilio code)."""

    default_code: ClassVar[int] = 20105
    default_status: ClassVar[int] = 401
    default_message: ClassVar[str] = "Access token not yet valid"


class TokenGrantsError(AccessError):
    """Invalid access token grants (20106, HTTP 401, Twilio code)."""

    default_code: ClassVar[int] = 20106
    default_status: ClassVar[int] = 401
    default_message: ClassVar[str] = "Invalid access token grants"


class TokenSignatureError(AccessError):
    """Invalid access token signature (20107, HTTP 401, Twilio code)."""

    default_code: ClassVar[int] = 20107
    default_status: ClassVar[int] = 401
    default_message: ClassVar[str] = "Invalid access token signature"


class ResourceNotFoundError(NotFoundError):
    """The requested resource was not found (20404, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 20404
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "The requested resource was not found"


class InternalServerError(ServerError):
    """Internal server error (20500, HTTP 500, Twilio code)."""

    default_code: ClassVar[int] = 20500
    default_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal server error"


class InvalidRequestError(InvalidInputError):
    """Malformed or invalid request frame (51000, HTTP 400, sync-sdk code)."""

    default_code: ClassVar[int] = 51000
    default_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "Malformed or invalid request frame"


class FrameTooLargeError(InvalidInputError):
    """Frame too large (51001, HTTP 413, sync-sdk code)."""

    default_code: ClassVar[int] = 51001
    default_status: ClassVar[int] = 413
    default_message: ClassVar[str] = "Frame too large"


class TooManySubscriptionsError(RateLimitError):
    """Too many open subscriptions on this connection (51002, HTTP 429, sync-sdk code)."""

    default_code: ClassVar[int] = 51002
    default_status: ClassVar[int] = 429
    default_message: ClassVar[str] = "Too many open subscriptions on this connection"


class ConnectionLostError(TransportError):
    """Connection lost before the call was sent; not applied (51010, HTTP 503, sync-sdk code)."""

    default_code: ClassVar[int] = 51010
    default_status: ClassVar[int] = 503
    default_message: ClassVar[str] = "Connection lost before the call was sent; not applied"


class CommandTimeoutError(TransportError):
    """The call timed out; whether it was applied is unknown (51011, HTTP 408, sync-sdk code)."""

    default_code: ClassVar[int] = 51011
    default_status: ClassVar[int] = 408
    default_message: ClassVar[str] = "The call timed out; whether it was applied is unknown"


class ClientClosedError(TransportError):
    """The client or object is closed (51012, HTTP 499, sync-sdk code)."""

    default_code: ClassVar[int] = 51012
    default_status: ClassVar[int] = 499
    default_message: ClassVar[str] = "The client or object is closed"


class ConnectFailedError(TransportError):
    """Could not connect to the Sync server (51013, HTTP 503, sync-sdk code)."""

    default_code: ClassVar[int] = 51013
    default_status: ClassVar[int] = 503
    default_message: ClassVar[str] = "Could not connect to the Sync server"


class BlockingCallInHandlerError(UsageError):
    """A blocking client method was called on the client's own event-loop thread (from an event handler or a mutator); it would deadlock (51014, HTTP 500, sync-sdk code)."""

    default_code: ClassVar[int] = 51014
    default_status: ClassVar[int] = 500
    default_message: ClassVar[str] = (
        "A blocking client method was called on the client's own event-loop thread (from an event handler or a mutator); it would deadlock"
    )


class InvalidIfMatchError(InvalidInputError):
    """Invalid If-Match header (54003, HTTP 400, Twilio code)."""

    default_code: ClassVar[int] = 54003
    default_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "Invalid If-Match header"


class DataTooLargeError(InvalidInputError):
    """Data too large (54006, HTTP 413, Twilio code)."""

    default_code: ClassVar[int] = 54006
    default_status: ClassVar[int] = 413
    default_message: ClassVar[str] = "Data too large"


class ForbiddenError(AccessError):
    """Identity forbidden by ACL (54007, HTTP 403, Twilio code)."""

    default_code: ClassVar[int] = 54007
    default_status: ClassVar[int] = 403
    default_message: ClassVar[str] = "Identity forbidden by ACL"


class RateLimitExceededError(RateLimitError):
    """Rate limit exceeded (54009, HTTP 429, Twilio code)."""

    default_code: ClassVar[int] = 54009
    default_status: ClassVar[int] = 429
    default_message: ClassVar[str] = "Rate limit exceeded"


class NoParametersError(InvalidInputError):
    """No parameters specified (54010, HTTP 400, Twilio code)."""

    default_code: ClassVar[int] = 54010
    default_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "No parameters specified"


class InvalidTtlError(InvalidInputError):
    """Invalid TTL (54011, HTTP 400, Twilio code)."""

    default_code: ClassVar[int] = 54011
    default_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "Invalid TTL"


class ServiceNotFoundError(NotFoundError):
    """Service not found (54050, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 54050
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "Service not found"


class DocumentNotFoundError(NotFoundError):
    """Document not found (54100, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 54100
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "Document not found"


class InvalidDocumentDataError(InvalidInputError):
    """Invalid document data (54101, HTTP 400, Twilio code)."""

    default_code: ClassVar[int] = 54101
    default_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "Invalid document data"


class DocumentRevisionMismatchError(ConflictError):
    """Document revision mismatch (54103, HTTP 412, Twilio code)."""

    default_code: ClassVar[int] = 54103
    default_status: ClassVar[int] = 412
    default_message: ClassVar[str] = "Document revision mismatch"


class ListNotFoundError(NotFoundError):
    """List not found (54150, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 54150
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "List not found"


class ListItemNotFoundError(NotFoundError):
    """List item not found (54151, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 54151
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "List item not found"


class ListItemRevisionMismatchError(ConflictError):
    """List item revision mismatch (54155, HTTP 412, Twilio code)."""

    default_code: ClassVar[int] = 54155
    default_status: ClassVar[int] = 412
    default_message: ClassVar[str] = "List item revision mismatch"


class MapNotFoundError(NotFoundError):
    """Map not found (54200, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 54200
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "Map not found"


class MapItemNotFoundError(NotFoundError):
    """Map item not found (54201, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 54201
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "Map item not found"


class MapItemRevisionMismatchError(ConflictError):
    """Map item revision mismatch (54205, HTTP 412, Twilio code)."""

    default_code: ClassVar[int] = 54205
    default_status: ClassVar[int] = 412
    default_message: ClassVar[str] = "Map item revision mismatch"


class MapItemAlreadyExistsError(ConflictError):
    """Map item already exists (54208, HTTP 409, Twilio code)."""

    default_code: ClassVar[int] = 54208
    default_status: ClassVar[int] = 409
    default_message: ClassVar[str] = "Map item already exists"


class InvalidMapKeyError(InvalidInputError):
    """Invalid map key (54209, HTTP 400, Twilio code)."""

    default_code: ClassVar[int] = 54209
    default_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "Invalid map key"


class StreamNotFoundError(NotFoundError):
    """Stream not found (54250, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 54250
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "Stream not found"


class UniqueNameExistsError(ConflictError):
    """Unique name already exists (54301, HTTP 409, Twilio code)."""

    default_code: ClassVar[int] = 54301
    default_status: ClassVar[int] = 409
    default_message: ClassVar[str] = "Unique name already exists"


class InvalidUniqueNameError(InvalidInputError):
    """Invalid unique name (54302, HTTP 400, Twilio code)."""

    default_code: ClassVar[int] = 54302
    default_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "Invalid unique name"


class PermissionNotFoundError(NotFoundError):
    """Permission not found (54354, HTTP 404, Twilio code)."""

    default_code: ClassVar[int] = 54354
    default_status: ClassVar[int] = 404
    default_message: ClassVar[str] = "Permission not found"


ERRORS_BY_CODE: Final[dict[int, type[SyncError]]] = {
    20003: AuthenticationError,
    20101: InvalidTokenError,
    20103: TokenIssuerError,
    20104: TokenExpiredError,
    20105: TokenNotYetValidError,
    20106: TokenGrantsError,
    20107: TokenSignatureError,
    20404: ResourceNotFoundError,
    20500: InternalServerError,
    51000: InvalidRequestError,
    51001: FrameTooLargeError,
    51002: TooManySubscriptionsError,
    51010: ConnectionLostError,
    51011: CommandTimeoutError,
    51012: ClientClosedError,
    51013: ConnectFailedError,
    51014: BlockingCallInHandlerError,
    54003: InvalidIfMatchError,
    54006: DataTooLargeError,
    54007: ForbiddenError,
    54009: RateLimitExceededError,
    54010: NoParametersError,
    54011: InvalidTtlError,
    54050: ServiceNotFoundError,
    54100: DocumentNotFoundError,
    54101: InvalidDocumentDataError,
    54103: DocumentRevisionMismatchError,
    54150: ListNotFoundError,
    54151: ListItemNotFoundError,
    54155: ListItemRevisionMismatchError,
    54200: MapNotFoundError,
    54201: MapItemNotFoundError,
    54205: MapItemRevisionMismatchError,
    54208: MapItemAlreadyExistsError,
    54209: InvalidMapKeyError,
    54250: StreamNotFoundError,
    54301: UniqueNameExistsError,
    54302: InvalidUniqueNameError,
    54354: PermissionNotFoundError,
}
"""SyncError subclass by numeric code."""

_FAMILY_BY_STATUS: Final[dict[int, type[SyncError]]] = {
    401: AccessError,
    403: AccessError,
    404: NotFoundError,
    409: ConflictError,
    412: ConflictError,
    429: RateLimitError,
}


def error_for_code(code: int, message: str | None = None, status: int | None = None) -> SyncError:
    """The typed error for `code`; unknown codes map to a family by HTTP status."""
    cls = ERRORS_BY_CODE.get(code)
    if cls is not None:
        return cls(message, status=status)
    status = status or 0
    family = _FAMILY_BY_STATUS.get(status)
    if family is None:
        family = (
            ServerError
            if status >= 500
            else InvalidInputError
            if 400 <= status < 500
            else SyncError
        )
    return family(message, code=code, status=status)


__all__ = [
    "ERRORS_BY_CODE",
    "SyncError",
    "AccessError",
    "NotFoundError",
    "ConflictError",
    "InvalidInputError",
    "RateLimitError",
    "TransportError",
    "ServerError",
    "UsageError",
    "AuthenticationError",
    "InvalidTokenError",
    "TokenIssuerError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenGrantsError",
    "TokenSignatureError",
    "ResourceNotFoundError",
    "InternalServerError",
    "InvalidRequestError",
    "FrameTooLargeError",
    "TooManySubscriptionsError",
    "ConnectionLostError",
    "CommandTimeoutError",
    "ClientClosedError",
    "ConnectFailedError",
    "BlockingCallInHandlerError",
    "InvalidIfMatchError",
    "DataTooLargeError",
    "ForbiddenError",
    "RateLimitExceededError",
    "NoParametersError",
    "InvalidTtlError",
    "ServiceNotFoundError",
    "DocumentNotFoundError",
    "InvalidDocumentDataError",
    "DocumentRevisionMismatchError",
    "ListNotFoundError",
    "ListItemNotFoundError",
    "ListItemRevisionMismatchError",
    "MapNotFoundError",
    "MapItemNotFoundError",
    "MapItemRevisionMismatchError",
    "MapItemAlreadyExistsError",
    "InvalidMapKeyError",
    "StreamNotFoundError",
    "UniqueNameExistsError",
    "InvalidUniqueNameError",
    "PermissionNotFoundError",
    "error_for_code",
]
