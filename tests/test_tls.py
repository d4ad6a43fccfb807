"""TLS: `sync-server serve --tls-cert/--tls-key` serves HTTPS and WSS on one port; the SDK and
the REST client verify the certificate by default, trust a CA given as `verify`, and fail
with a clear ConnectFailedError on a certificate they cannot trust."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from sync_generated.errors import ConnectFailedError

from sync_sdk import Client, ClientOptions
from sync_sdk.rest import SyncRestClient
from tests.conftest import ServerProcess


@pytest.fixture
def tls_server(tmp_path: Path, backend: str) -> Iterator[ServerProcess]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_pem, key_pem, ca_pem = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_pem))
    cert.private_key_pem.write_to_path(str(key_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    args = ["--tls-cert", str(cert_pem), "--tls-key", str(key_pem)]
    srv = ServerProcess(tmp_path / "data", args, backend=backend, ca_path=ca_pem)
    srv.start()
    yield srv
    srv.destroy()


async def test_a_trusted_certificate_connects_over_wss_and_https(tls_server: ServerProcess) -> None:
    assert tls_server.url.startswith("https://") and tls_server.ca_path is not None
    ca = str(tls_server.ca_path)
    options = ClientOptions(url=tls_server.url, verify=ca, connect_timeout=5)
    async with Client(tls_server.token("alice"), options) as client:
        doc = await client.document("tls-doc")
        await doc.set({"secure": True})
        assert doc.data == {"secure": True}
    creds = tls_server.credentials
    assert creds is not None
    context = ssl.create_default_context(cafile=ca)  # an SSLContext works as well as a path
    async with SyncRestClient(
        creds.account_sid,
        api_key=creds.api_key_sid,
        api_secret=creds.api_secret,
        base_url=tls_server.url,
        verify=context,
    ) as rest:
        fetched = await rest.service(creds.service_sid).documents("tls-doc").fetch()
        assert fetched.data == {"secure": True}


async def test_an_untrusted_certificate_fails_clearly(tls_server: ServerProcess) -> None:
    options = ClientOptions(url=tls_server.url, connect_timeout=1.5, log_level="silent")
    client = Client(tls_server.token("alice"), options)  # verify=True: the system's CAs only
    with pytest.raises(ConnectFailedError) as info:
        await client.connect()
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message, info.value.message
    await client.shutdown()
    # verify=False skips the check (development only).
    insecure = ClientOptions(url=tls_server.url, verify=False, connect_timeout=5)
    async with Client(tls_server.token("alice"), insecure) as client:
        assert client.identity == "alice"
