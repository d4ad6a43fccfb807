"""TLS for wss:// and https:// URLs, with `verify` meaning what it means in httpx."""

from __future__ import annotations

import ssl


def ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """True: the system's certificate authorities; a str: a CA bundle (PEM) to trust
    instead; an SSLContext: used as is; False: no certificate check (development only)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
