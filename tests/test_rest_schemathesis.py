"""Schemathesis against the REST API, driven by TWILIO's own OpenAPI description of Sync v1.

The description (`twilio_sync_v1.json` from the npm package @twilio/cli-core@9.0.0) is not
in the repository (license): `tests/twilio_spec.py` fetches it with `npm pack` into a cache
directory at test time. Without npm or the registry the test FAILS (it never skips).

Every operation of the spec (48: services, documents, lists, maps, streams, items,
permissions, stream messages) is fuzzed against a server of its own, with positive and
negative data, `max_examples` per operation, Basic auth with the API key. Each generated
case is sent in one of three modes:
* "random": as generated (random SIDs and names: the not-found and validation paths);
* "container": the service / object path ids replaced by real ones, the leaf id (item index,
  map key, identity) left as generated;
* "real": every path id real. Objects a case may change or delete are created for that case
  alone; read-only cases share one set.
A `Data` value that is not a string (the spec leaves it untyped) is sent as JSON, so that
random JSON reaches the storage; a string `Data` is sent as generated (mostly invalid JSON).

Checks run on every response (schemathesis 4.32.5):
* not_a_server_error: no 5xx, ever;
* response_schema_conformance: every response of a status the spec describes (the success
  status of each operation) matches Twilio's schema (types, SID patterns, date-time, uri);
* content_type_conformance: responses of a described status are `application/json`;
* response_headers_conformance: the headers the spec describes (all optional: ETag, CORS)
  have the described types when present;
* ignored_auth: for a 2xx, schemathesis re-sends the case without credentials and with
  invalid ones and expects a refusal (every operation enforces Basic auth).

Checks excluded, and why:
* status_code_conformance: Twilio's spec lists only the success status of each operation
  (200 / 201 / 204); every error Twilio itself returns (400, 401, 404, 409, 412, 413, 429)
  counts as "undocumented" (ST103 on all 48 operations). The error statuses and codes are
  asserted one by one in tests/test_rest_api.py instead.
* positive_data_acceptance: it expects every schema-valid request to succeed, but Twilio's
  spec has no bounds: an empty `Key`, a `Ttl` above one year or below 0, a random SID in a
  path are all schema-valid and rejected by Twilio as by us (400 54209 / 54011, 404).
* negative_data_rejection: it expects every schema-violating request to fail; the only
  finding is `WebhookUrl=` (empty, not a `uri`) accepted by UpdateService, which is how a
  webhook is removed here.
* unsupported_method, missing_required_header, allow_header_conformance: they only judge
  cases of schemathesis' coverage phase (undeclared methods, dropped headers), which this
  Hypothesis-driven run does not generate; 405s are tested in tests/test_rest_api.py.
* use_after_free, ensure_resource_availability, object_level_authorization: stateful
  checks driven by OpenAPI links, which Twilio's spec does not have.
* max_response_time: no budget is specified.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias

import httpx
import hypothesis
import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

from tests.conftest import ServerProcess
from tests.twilio_spec import (
    NPM_PACKAGE,
    NPM_VERSION,
    TwilioSpecUnavailable,
    load_twilio_sync_v1,
)

if TYPE_CHECKING:
    from schemathesis import Case

    AnyCase: TypeAlias = Case[Any]

SCHEMATHESIS_PIN = "schemathesis==4.32.5"

# REST_FUZZ_EXAMPLES=N runs N random (not derandomized) examples per operation, unbounded
# in time: for hunting bugs locally. By default the run is deterministic and bounded by its
# examples (MAX_EXAMPLES per operation), not by a clock: a slow machine takes longer, no more.
DEEP = os.environ.get("REST_FUZZ_EXAMPLES")
MAX_EXAMPLES = int(DEEP) if DEEP else 25
EXPECTED_OPERATIONS = 48
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "ignored_auth",
)
MODES = ("real", "real", "container", "random")  # drawn uniformly: half the cases are "real"
COLLECTIONS = {"Documents": "document", "Lists": "list", "Maps": "map", "Streams": "stream"}
CONTAINER_PARAMS = {"DocumentSid", "ListSid", "MapSid", "StreamSid"}
LEAF_PARAMS = {"Index", "Key", "Identity"}


def _known_bug(case: AnyCase) -> str | None:
    """A case that hits a reported, not yet fixed server bug: its 5xx is tolerated (and
    counted) here, with a strict xfail in test_rest_api.py. None are known now."""
    del case
    return None


@dataclass
class Resources:
    """Real objects for path parameters: a scratch service with one object of each kind
    (list and map with an item, documents/lists/maps with a permission) for read-only
    cases, and objects made per case for cases that may change or delete them."""

    http: httpx.Client
    service_sid: str = ""
    shared: dict[str, dict[str, str]] = field(default_factory=dict)
    turn: int = 0

    def setup(self) -> None:
        self.service_sid = self._ok("POST", "/v1/Services", {"FriendlyName": "schemathesis"})["sid"]
        for coll in COLLECTIONS:
            self.shared[coll] = self.make(coll)

    def _ok(self, method: str, path: str, form: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.http.request(method, path, data=form)
        assert response.is_success, f"setup {method} {path}: {response.status_code} {response.text}"
        body: dict[str, Any] = response.json()
        return body

    def make(self, coll: str) -> dict[str, str]:
        base = f"/v1/Services/{self.service_sid}/{coll}"
        name = f"st-{uuid.uuid4().hex[:12]}"
        form = {"UniqueName": name}
        if coll == "Documents":
            form["Data"] = '{"seed": true}'
        sid = self._ok("POST", base, form)["sid"]
        ids = {"sid": sid, "name": name, "index": "0", "key": "k", "identity": "alice"}
        if coll == "Lists":
            self._ok("POST", f"{base}/{sid}/Items", {"Data": '{"i": 0}'})
        if coll == "Maps":
            self._ok("POST", f"{base}/{sid}/Items", {"Key": "k", "Data": '{"k": 1}'})
        if coll != "Streams":
            flags = {"Read": "true", "Write": "true", "Manage": "false"}
            self._ok("POST", f"{base}/{sid}/Permissions/alice", flags)
        return ids

    def path_parameters(self, case: AnyCase, mode: str) -> dict[str, Any]:
        """Replacements for `case`'s path parameters in `mode` ("real" or "container")."""
        method = case.method.upper()
        mutating = method != "GET"
        segments = case.path.strip("/").split("/")
        params = dict(case.path_parameters or {})
        if segments == ["v1", "Services", "{Sid}"]:
            if mutating:
                sid = self._ok("POST", "/v1/Services", {"FriendlyName": "scratch"})["sid"]
            else:
                sid = self.service_sid
            params["Sid"] = sid
            return params
        if "ServiceSid" not in params:
            return params
        params["ServiceSid"] = self.service_sid
        # v1 / Services / {ServiceSid} / <collection> / {Sid} ...
        if len(segments) < 5 or segments[3] not in COLLECTIONS:
            return params  # a collection (list / create): only the service is real
        ids = self.make(segments[3]) if mutating else self.shared[segments[3]]
        self.turn += 1
        for name in params:
            if name == "Sid" or name in CONTAINER_PARAMS:
                # A path id may be a SID or a unique name: use both, in turn.
                params[name] = ids["name"] if self.turn % 2 else ids["sid"]
            elif name in LEAF_PARAMS and mode == "real":
                params[name] = {"Index": ids["index"], "Key": ids["key"]}.get(name, ids["identity"])
        return params


def _json_data(case: AnyCase) -> None:
    body = case.body
    if isinstance(body, dict) and "Data" in body and not isinstance(body["Data"], str):
        value = body["Data"]
        # json, not orjson: generated integers may exceed 64 bits.
        body["Data"] = json.dumps(value if isinstance(value, dict) else {"value": value})


@dataclass
class Report:
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)

    def fail(self, case: AnyCase, text: str) -> None:
        try:
            curl = case.as_curl_command()
        except Exception as exc:
            curl = f"(no curl command: {exc!r}) {case.method} {case.formatted_path}"
        self.failures.setdefault(case.operation.label, []).append(f"{curl}\n{text[-3000:]}")

    def count(self, label: str, status: int) -> None:
        per = self.statuses.setdefault(label, {})
        per[status] = per.get(status, 0) + 1


def _import_schemathesis() -> ModuleType:
    """schemathesis, imported here so that without it only this module's fuzz test fails."""
    try:
        import schemathesis
    except ImportError as exc:
        pytest.fail(f"{exc}: install the dev extra ({SCHEMATHESIS_PIN})", pytrace=False)
    return schemathesis


def twilio_spec() -> dict[str, Any]:
    """Twilio's Sync v1 OpenAPI document. Not a fixture: a failure to obtain it FAILS the
    test that needs it (a fixture would make it an error at setup)."""
    problem = ""
    try:
        return load_twilio_sync_v1()
    except TwilioSpecUnavailable as exc:
        problem = str(exc)
    pytest.fail(
        f"cannot obtain Twilio's Sync v1 OpenAPI description ({NPM_PACKAGE}@{NPM_VERSION} "
        f"from the npm registry): {problem}",
        pytrace=False,
    )


@pytest.fixture
def http(fresh_server: ServerProcess) -> Iterator[httpx.Client]:
    creds = fresh_server.credentials
    assert creds is not None
    with httpx.Client(
        base_url=fresh_server.url, auth=(creds.api_key_sid, creds.api_secret), timeout=15
    ) as client:
        yield client


def test_twilio_spec_describes_our_routes(http: httpx.Client) -> None:
    """Every operation of Twilio's spec is routed here (no 404/405 from the router)."""
    spec = twilio_spec()
    assert spec["servers"] == [{"url": "https://sync.twilio.com"}]
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "delete")
    ]
    assert len(operations) == EXPECTED_OPERATIONS
    for method, path in operations:
        url = path.replace("{Index}", "0")
        for name in ("Sid", "ServiceSid", "DocumentSid", "ListSid", "MapSid", "StreamSid"):
            url = url.replace("{" + name + "}", "missing")
        url = url.replace("{Key}", "k").replace("{Identity}", "someone")
        body = http.request(method, url).json()
        # The router's own 404 is 20404 and its 405 is 405; a handler answers with Sync codes.
        assert body.get("code") != 20404 and body.get("status") != 405, (method, path, body)


@pytest.mark.timeout(0 if DEEP else 120)
def test_schemathesis_twilio_sync_v1(fresh_server: ServerProcess, http: httpx.Client) -> None:
    spec = twilio_spec()
    schemathesis = _import_schemathesis()
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi import checks as openapi_checks

    available = {"not_a_server_error": not_a_server_error}
    checks = [available.get(name) or getattr(openapi_checks, name) for name in CHECKS]
    creds = fresh_server.credentials
    assert creds is not None
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.update(
        base_url=fresh_server.url, basic_auth=(creds.api_key_sid, creds.api_secret)
    )
    resources = Resources(http)
    resources.setup()
    report = Report()
    started = time.monotonic()
    labels: list[str] = []

    def exercise(case: AnyCase, mode: str) -> None:
        if mode != "random":
            case.path_parameters = resources.path_parameters(case, mode)
        _json_data(case)
        response = case.call(timeout=15)
        report.count(case.operation.label, response.status_code)
        bug = _known_bug(case)
        if bug is not None and response.status_code >= 500:
            report.known[bug] = report.known.get(bug, 0) + 1
            return
        try:
            case.validate_response(response, checks=checks)
        except BaseExceptionGroup as exc:  # schemathesis' FailureGroup is a BaseException
            raise AssertionError(
                f"{exc}\n-> {response.status_code} {response.text[:500]}"
            ) from None

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"Twilio's spec has an invalid operation: {result.err()}"
        operation = result.ok()
        labels.append(operation.label)
        positive = operation.as_strategy(GenerationMode.POSITIVE)
        negative = operation.as_strategy(GenerationMode.NEGATIVE)
        # Two positive cases for one negative (for most operations, negative data can only
        # be a broken Authorization header: one 401 after another).
        strategy = st.sampled_from((positive, positive, negative)).flatmap(lambda s: s)

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=not DEEP,
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @hypothesis.given(case=strategy, mode=st.sampled_from(MODES))
        def run(case: AnyCase, mode: str) -> None:
            # Failures are recorded, not raised: the run goes on through every operation
            # and the test fails at the end with all findings (each with a curl command).
            # Raising would make Hypothesis replay the case against a server whose state
            # has moved on, which reports "Flaky" instead of the finding.
            try:
                exercise(case, mode)
            except Exception:
                report.fail(case, traceback.format_exc())

        run()
        if not any(200 <= code < 300 for code in report.statuses.get(operation.label, {})):
            # The draws above (they vary with hash randomisation) may all have been refused
            # (an empty Key, a negative Ttl) or aimed at a random service: replay Twilio's own
            # examples of the operation on real objects, so that the response checks run on a
            # success at least once.
            examples = operation.get_strategies_from_examples()
            if examples:

                @hypothesis.settings(
                    max_examples=len(examples),
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.generate],
                )
                @hypothesis.given(case=st.one_of(examples))
                def replay(case: AnyCase) -> None:
                    try:
                        exercise(case, "real")
                    except Exception:
                        report.fail(case, traceback.format_exc())

                replay()

    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {len(labels)} operations in {elapsed:.1f} s")
    for label in labels:
        statuses = ", ".join(f"{s}x{n}" for s, n in sorted(report.statuses.get(label, {}).items()))
        print(f"  {label}: {statuses}")
    for bug, hits in report.known.items():
        print(f"  known bug hit {hits}x: {bug}")
    assert len(labels) == EXPECTED_OPERATIONS, labels
    if report.failures:
        pytest.fail(
            f"{len(report.failures)} of {len(labels)} operations failed:\n\n"
            + "\n\n".join(
                f"== {label} ({len(texts)} failing cases; the first ones:)\n" + "\n".join(texts[:3])
                for label, texts in report.failures.items()
            ),
            pytrace=False,
        )
    # Each operation got real 2xx answers, not only 4xx (so the schema check ran on it).
    without_success = [
        label for label in labels if not any(200 <= s < 300 for s in report.statuses.get(label, {}))
    ]
    assert not without_success, (without_success, report.statuses)
