"""The spec -> code loop (codegen/generate.py) and the generated tables it produces.

Generation runs in subprocesses into temp dirs; the committed `generated/` tree is only read
(a snapshot of it and of `spec/` is copied first, so concurrent edits cannot race the checks).
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import pickle
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sync_generated.errors as errors_mod
import yaml
from sync_generated.client import (
    CONNECTION_STATE_TRANSITIONS,
    INITIAL_CONNECTION_STATE,
    ConnectionState,
)
from sync_generated.errors import (
    ERRORS_BY_CODE,
    DocumentNotFoundError,
    DocumentRevisionMismatchError,
    NotFoundError,
    SyncError,
    error_for_code,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
GENERATED = ROOT / "generated" / "sync_generated"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")

# Which spec file(s) each generated module names in its header.
EXPECTED_SOURCES = {
    "__init__.py": ["spec/*.yaml"],
    "protocol.py": ["spec/protocol.yaml"],
    "protocol_dicts.py": ["spec/protocol.yaml"],
    "client.py": ["spec/client.yaml", "spec/entities.yaml"],
    "errors.py": ["spec/errors.yaml"],
    "rest.py": ["spec/http.yaml"],
    "rest_resources.py": ["spec/http.yaml"],
    "blocking.py": ["spec/client.yaml", "sync_sdk/client.py", "sync_sdk/objects.py"],
    "twilsock.py": ["spec/twilsock.yaml"],
    "cds.py": ["spec/cds.yaml"],
    "cds_types.py": ["spec/cds.yaml"],
}


def run_codegen(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen.generate", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def generate(spec: Path, out: Path) -> Path:
    proc = run_codegen("--spec", spec, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def tree_bytes(directory: Path) -> dict[str, bytes]:
    """Every file directly in `directory` (no __pycache__), by name."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def import_from_path(path: Path) -> ModuleType:
    """Import a standalone generated module under a unique name (no clash with sync_generated)."""
    name = f"_codegen_test_{path.stem}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered while executing so pydantic can resolve the postponed annotations.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of spec/ and of the committed generated/sync_generated/, taken together."""
    base = tmp_path_factory.mktemp("snapshot")
    shutil.copytree(SPEC, base / "spec", ignore=IGNORE)
    shutil.copytree(GENERATED, base / "committed" / "sync_generated", ignore=IGNORE)
    return base


@pytest.fixture(scope="module")
def fresh(snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generation from the unmodified spec snapshot."""
    return generate(snapshot / "spec", tmp_path_factory.mktemp("fresh") / "sync_generated")


# ---- the loop ---------------------------------------------------------------------------


def test_spec_change_reaches_generated_model(snapshot: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    shutil.copytree(snapshot / "spec", spec)
    cds_path = spec / "cds.yaml"
    cds = load_yaml(cds_path)
    item_write = cds["components"]["schemas"]["ItemWrite"]
    assert "priority" not in item_write["properties"]
    item_write["properties"]["priority"] = {"type": "integer"}
    cds_path.write_text(yaml.safe_dump(cds, sort_keys=False), encoding="utf-8")

    out = generate(spec, tmp_path / "out" / "sync_generated")
    cds_py = out / "cds.py"
    assert "priority" in cds_py.read_text(encoding="utf-8")
    assert cds_py.read_bytes() != (snapshot / "committed/sync_generated/cds.py").read_bytes()

    module = import_from_path(cds_py)
    fields = module.ItemWrite.model_fields
    assert "priority" in fields
    assert fields["priority"].annotation == int | None
    assert fields["priority"].default is None
    assert not fields["priority"].is_required()
    # Untouched schemas stay as they were.
    assert "priority" not in module.DocumentUpdate.model_fields
    assert set(fields) - {"priority"} == set(
        import_from_path(snapshot / "committed/sync_generated/cds.py").ItemWrite.model_fields
    )


def test_unmodified_spec_generates_committed_files(snapshot: Path, fresh: Path) -> None:
    committed = tree_bytes(snapshot / "committed" / "sync_generated")
    generated = tree_bytes(fresh)
    assert set(generated) == {*EXPECTED_SOURCES, "py.typed"}
    assert sorted(generated) == sorted(committed)
    stale = [name for name in generated if generated[name] != committed[name]]
    assert stale == [], f"committed generated/ differs from a fresh generation: {stale}"


def test_generation_is_deterministic(snapshot: Path, fresh: Path, tmp_path: Path) -> None:
    again = generate(snapshot / "spec", tmp_path / "sync_generated")
    assert tree_bytes(again) == tree_bytes(fresh)


# ---- --check ----------------------------------------------------------------------------


@pytest.fixture
def committed_copy(snapshot: Path, tmp_path: Path) -> Path:
    out = tmp_path / "sync_generated"
    shutil.copytree(snapshot / "committed" / "sync_generated", out)
    return out


def test_check_passes_on_committed_tree(snapshot: Path, committed_copy: Path) -> None:
    proc = run_codegen("--check", "--spec", snapshot / "spec", "--out", committed_copy)
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout


def test_check_fails_after_editing_a_generated_file(snapshot: Path, committed_copy: Path) -> None:
    target = committed_copy / "errors.py"
    target.write_text(target.read_text(encoding="utf-8") + "\n# hand edit\n", encoding="utf-8")
    proc = run_codegen("--check", "--spec", snapshot / "spec", "--out", committed_copy)
    assert proc.returncode != 0
    assert "errors.py" in proc.stderr
    assert "entities.py" not in proc.stderr


def test_check_fails_when_a_generated_file_is_missing(snapshot: Path, committed_copy: Path) -> None:
    (committed_copy / "client.py").unlink()
    proc = run_codegen("--check", "--spec", snapshot / "spec", "--out", committed_copy)
    assert proc.returncode != 0
    assert "client.py" in proc.stderr


# ---- headers ----------------------------------------------------------------------------


def test_every_generated_module_is_known() -> None:
    assert {p.name for p in GENERATED.glob("*.py")} == set(EXPECTED_SOURCES)


@pytest.mark.parametrize("name", sorted(EXPECTED_SOURCES))
def test_generated_header(name: str) -> None:
    lines = (GENERATED / name).read_text(encoding="utf-8").splitlines()
    first, second = lines[0], lines[1]
    m = re.fullmatch(r"# Generated from (.+) by codegen/generate\.py .*", first)
    assert m, first
    sources = m.group(1).split(", ")
    assert sources == EXPECTED_SOURCES[name]
    for source in sources:
        assert list(ROOT.glob(source)), f"{name} names {source}, which does not exist"
    assert second.startswith("# DO NOT EDIT")


# ---- transition table -------------------------------------------------------------------


def test_transition_table_matches_spec() -> None:
    states = load_yaml(SPEC / "client.yaml")["ConnectionState"]
    expected = {
        ConnectionState(src): frozenset(ConnectionState(d) for d in dsts)
        for src, dsts in states["transitions"].items()
    }
    assert dict(CONNECTION_STATE_TRANSITIONS) == expected
    assert {s.value for s in ConnectionState} == set(states["values"])
    assert set(CONNECTION_STATE_TRANSITIONS) == set(ConnectionState)
    assert INITIAL_CONNECTION_STATE == ConnectionState(states["initial"])
    # Every state other than the initial one is reachable.
    reachable = set().union(*CONNECTION_STATE_TRANSITIONS.values())
    assert reachable == set(ConnectionState)


# ---- errors -----------------------------------------------------------------------------


def test_errors_by_code_covers_spec() -> None:
    spec = load_yaml(SPEC / "errors.yaml")
    codes = {int(code): info for code, info in spec["codes"].items()}
    assert set(ERRORS_BY_CODE) == set(codes)
    for code, info in codes.items():
        cls = ERRORS_BY_CODE[code]
        family = getattr(errors_mod, info["family"])
        assert cls.__name__ == info["name"], code
        assert getattr(errors_mod, info["name"]) is cls
        assert issubclass(cls, family), (code, cls, family)
        assert family is not cls
        assert cls.default_code == code
        assert cls.default_status == info["status"], code
        assert cls.default_message == info["message"], code
        err = error_for_code(code)
        assert type(err) is cls
        assert (err.code, err.status) == (code, info["status"])
    for family in spec["families"]:
        assert issubclass(getattr(errors_mod, family), SyncError)


def test_error_for_known_code() -> None:
    err = error_for_code(54100, "x")
    assert isinstance(err, DocumentNotFoundError)
    assert isinstance(err, NotFoundError)
    assert (err.code, err.status, err.message) == (54100, 404, "x")
    assert str(err) == "x (code 54100, status 404)"


def test_error_for_unknown_code_maps_by_status() -> None:
    err = error_for_code(99999, "gone", 404)
    assert type(err) is NotFoundError
    assert (err.code, err.status, err.message) == (99999, 404, "gone")
    assert type(error_for_code(99998, "boom", 503)) is errors_mod.ServerError
    assert type(error_for_code(99997, "odd")) is SyncError


@pytest.mark.parametrize(
    "err",
    [
        DocumentNotFoundError("doc is gone"),
        DocumentRevisionMismatchError("stale", status=499),
        error_for_code(99999, "unknown", 404),
        SyncError("base", code=7, status=8),
    ],
    ids=repr,
)
def test_errors_pickle_round_trip(err: SyncError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert (back.code, back.status, back.message) == (err.code, err.status, err.message)
    assert str(back) == str(err)


# ---- the blocking client (codegen/blocking.py) -------------------------------------------

BLOCKING_SOURCE = '''\
from typing import Generic, TypeVar

T = TypeVar("T")


class Root:
    """The root."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def open(self, key: str) -> Thing[int]:
        """Open a thing."""
        ...

    def _add_listener(self, event: str, handler: object) -> None: ...


class _Base(Generic[T]):
    @property
    def size(self) -> int:
        """How big."""
        return 1

    async def read(self, *, fresh: bool = False) -> T:
        """Read it."""
        ...


class Thing(_Base[T]):
    """A thing."""

    label: str
    """Its label."""

    async def read(self, *, fresh: bool = True) -> T:
        """Read it, overridden."""
        ...
'''


def blocking_surface(tmp_path: Path, source: str, classes: dict[str, Any]) -> dict[str, Any]:
    from codegen.blocking import build_blocking_context

    (tmp_path / "pkg").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "mod.py").write_text(source)
    context: dict[str, Any] = build_blocking_context(tmp_path, classes)
    return context


def test_blocking_surface_mirrors_methods_properties_and_bases(tmp_path: Path) -> None:
    spec = {"Root": {"source": "pkg/mod.py", "root": True}, "Thing": {"source": "pkg/mod.py"}}
    context = blocking_surface(tmp_path, BLOCKING_SOURCE, spec)
    root, thing = context["classes"]
    assert (root.init_args, root.init_call) == ("name: str", "name")
    assert any(
        "def open(self, key: str) -> Thing[int]:" in m
        and "return Thing(self._portal, self._portal.run(self._wrapped.open(key)))" in m
        for m in root.members
    )
    assert any(m.startswith("def _add_listener(") for m in root.members)
    assert thing.bases == ["Generic[T]"] and thing.type_params == ["T"]
    text = "\n".join(thing.members).replace(" ", "")  # as ast.unparse spaces it, unformatted
    # the subclass's override wins; the base's property and the annotation become properties
    assert "fresh:bool=True" in text and "fresh:bool=False" not in text
    assert "defsize(self)->int:" in text and "deflabel(self)->str:" in text
    assert "from pkg.mod import T" in context["imports"]


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("    async def each(self) -> Any:\n        yield 1\n", "async generator"),
        ("    async def pair(self) -> list[Thing[int]]: ...\n", "only a mirrored class itself"),
        ("    async def give(self, other: Thing[int]) -> None: ...\n", "takes a mirrored class"),
        ("    async def odd(self) -> Unknown: ...\n", "where is 'Unknown' from?"),
    ],
)
def test_blocking_surface_refuses_what_it_cannot_mirror(
    tmp_path: Path, snippet: str, message: str
) -> None:
    source = BLOCKING_SOURCE.replace("    def _add_listener", snippet + "\n    def _add_listener")
    source = "from typing import Any\n" + source
    spec = {"Root": {"source": "pkg/mod.py", "root": True}, "Thing": {"source": "pkg/mod.py"}}
    with pytest.raises(SystemExit, match=re.escape(message)):
        blocking_surface(tmp_path, source, spec)


# ---- the REST resource classes (codegen/rest_resources.py) -------------------------------

RESOURCES_SPEC = """\
openapi: 3.1.0
x-sdk: {import-as: {List: Things}}
paths:
  /v1/Services/{ServiceSid}/Boxes:
    x-sdk: {class: Boxes, doc: The boxes of a service.}
    parameters: [{$ref: "#/components/parameters/ServiceSid"}]
    get:
      operationId: listBoxes
      parameters:
        - $ref: "#/components/parameters/Order"
        - {name: PageSize, in: query, schema: {type: integer}}
        - {name: PageToken, in: query, schema: {type: string}}
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/BoxPage"}}}}}
    post:
      operationId: createBox
      summary: Make a box.
      x-sdk: {args: [label, data, box_ttl], positional: [label], rename: {box_ttl: ttl}}
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [Label]
              properties:
                Label: {type: string}
                Data: {type: string, contentMediaType: application/json, contentSchema: {type: object}}
                Ttl: {type: integer}
                BoxTtl: {type: integer}
      responses: {"201": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/List"}}}}}
  /v1/Services/{ServiceSid}/Boxes/{Index}:
    x-sdk: {class: BoxContext, doc: One box.}
    parameters:
      - $ref: "#/components/parameters/ServiceSid"
      - {name: Index, in: path, required: true, schema: {type: integer}}
    get:
      operationId: fetchBox
      summary: Read one box.
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/List"}}}}}
    delete:
      operationId: deleteBox
      x-sdk: {doc: Throw the box away.}
      parameters: [{name: If-Match, in: header, schema: {type: string}}]
      responses: {"204": {description: gone}}
  /v1/Services/{ServiceSid}/Boxes/{BoxSid}/Permissions:
    x-sdk: {class: BoxPermissions, base: Permissions, rename: {box_sid: object_sid}}
    parameters:
      - $ref: "#/components/parameters/ServiceSid"
      - {name: BoxSid, in: path, required: true, schema: {type: string}}
    get:
      operationId: listBoxPermissions
      parameters: [{name: PageSize, in: query, schema: {type: integer}}]
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/BoxPermissionPage"}}}}}
  /v1/Services/{ServiceSid}/Boxes/{BoxSid}/Permissions/{Identity}:
    parameters:
      - $ref: "#/components/parameters/ServiceSid"
      - {name: BoxSid, in: path, required: true, schema: {type: string}}
      - {name: Identity, in: path, required: true, schema: {type: string}}
    post:
      operationId: updateBoxPermission
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [Read, Write]
              properties: {Read: {type: boolean}, Write: {type: boolean}}
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/BoxPermission"}}}}}
components:
  parameters:
    ServiceSid: {name: ServiceSid, in: path, required: true, schema: {type: string}}
    Order: {name: Order, in: query, description: Up or down., schema: {type: string, enum: [asc, desc]}}
  schemas:
    List: {type: object, properties: {label: {type: string}}}
    BoxPage:
      type: object
      properties: {boxes: {type: array, items: {$ref: "#/components/schemas/List"}}, meta: {type: object}}
    BoxPermission: {type: object, properties: {read: {type: boolean}}}
    BoxPermissionPage:
      type: object
      properties:
        permissions: {type: array, items: {$ref: "#/components/schemas/BoxPermission"}}
        meta: {type: object}
"""


def resources_module(doc: dict[str, Any]) -> ast.Module:
    """rest_resources.py.j2 rendered from `doc`, parsed (not formatted: ast does not care)."""
    from codegen.generate import build_rest_context, render
    from codegen.rest_resources import build_resources_context

    context = build_resources_context(doc, build_rest_context(doc)["operations"])
    return ast.parse(render("rest_resources.py.j2", header="# test", **context))


def members(module: ast.Module) -> dict[str, str]:
    """`Class.method` -> its signature and body, unparsed (one line per statement)."""
    found = {}
    for cls in module.body:
        if isinstance(cls, ast.ClassDef):
            found[cls.name] = ", ".join(ast.unparse(b) for b in cls.bases)
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    returns = ast.unparse(fn.returns) if fn.returns else ""
                    body = [ast.unparse(s) for s in fn.body]
                    found[f"{cls.name}.{fn.name}"] = (
                        f"({ast.unparse(fn.args)}) -> {returns}\n" + "\n".join(body)
                    )
    return found


def test_rest_resources_from_x_sdk_annotations() -> None:
    module = resources_module(yaml.safe_load(RESOURCES_SPEC))
    got = members(module)
    # a collection paged by more than page_size: Paged, with page/iter/list of its arguments
    assert got["Boxes"] == "Paged[Things, BoxPage]"
    assert got["Boxes.page"] == (  # no summary, no doc: no docstring
        "(self, *, order: Order | None=None, page_size: int | None=None) -> BoxPage\n"
        "return await self._api.list_boxes(self.service_sid, order=order, page_size=page_size)"
    )
    assert "limit: int | None=None) -> AsyncIterator[Things]" in got["Boxes.iter"]
    assert "-> builtins.list[Things]" in got["Boxes.list"]
    # args, positional, rename; a JSON object is Data; the docstring defaults to the summary
    assert got["Boxes.create"] == (
        "(self, label: str, *, data: Data | None=None, ttl: int | None=None) -> Things\n"
        "'Make a box.'\n"
        "return await self._api.create_box(self.service_sid, label=label, data=data, box_ttl=ttl)"
    )
    assert got["Boxes.__call__"].endswith(
        "'One box.'\nreturn BoxContext(self._api, self.service_sid, index)"
    )
    # a context: path parameters as attributes, the collections under it as attributes
    assert got["BoxContext.__init__"].split("\n")[1:] == [
        "self._api = api",
        "self.service_sid = service_sid",
        "self.index = index",
        "self.permissions = BoxPermissions(api, service_sid, index)",
    ]
    assert got["BoxContext.fetch"].endswith(
        "'Read one box.'\nreturn await self._api.fetch_box(self.service_sid, self.index)"
    )
    assert got["BoxContext.delete"] == (
        "(self, *, if_match: str | None=None) -> None\n'Throw the box away.'\n"
        "await self._api.delete_box(self.service_sid, self.index, if_match=if_match)"
    )
    # a family member fills in its base's hooks; rename keeps box_sid as object_sid
    assert got["BoxPermissions"] == "Permissions[BoxPermission, BoxPermissionPage]"
    assert got["BoxPermissions.__init__"].endswith(
        "super().__init__(api, _BOX_PERMISSION_PAGE, service_sid, box_sid)"
    )
    assert got["BoxPermissions._first"].endswith(
        "return self._api.list_box_permissions(self.service_sid, self.object_sid, "
        "page_size=page_size)"
    )
    assert got["BoxPermissions._update"] == (
        "(self, identity: str, read: bool, write: bool) -> BoxPermission\n"
        "return await self._api.update_box_permission(self.service_sid, self.object_sid, "
        "identity, read=read, write=write)"
    )
    assert "BoxPermissions.__call__" not in got  # the base's
    [rest_import] = [n for n in module.body if isinstance(n, ast.ImportFrom) and n.level == 1]
    imported = {(a.name, a.asname) for a in rest_import.names}
    assert ("List", "Things") in imported and ("BoxPermission", None) in imported
    # an enum of components/parameters is a Literal alias named after it
    assert "Order = Literal['asc', 'desc']\n'Up or down.'" in ast.unparse(module)


def _edit(path: str, method: str | None, **xsdk: Any) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(yaml.safe_load(RESOURCES_SPEC))
    node = doc["paths"][path]
    node = node[method] if method else node
    node["x-sdk"] = {**node.get("x-sdk", {}), **xsdk}
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            _edit("/v1/Services/{ServiceSid}/Boxes", "post", args=["label", "colour"]),
            "'colour' is not an argument of SyncRestApi.create_box",
        ),
        (
            _edit("/v1/Services/{ServiceSid}/Boxes", "post", positional=["data"]),
            "`positional` must name the first of `args`",
        ),
        (
            _edit("/v1/Services/{ServiceSid}/Boxes", "post", rename={"box_ttl": "label"}),
            "two arguments are called the same",
        ),
        (
            _edit("/v1/Services/{ServiceSid}/Boxes", "get", args=["order"]),
            "a list operation takes `page_size`",
        ),
        (
            _edit("/v1/Services/{ServiceSid}/Boxes/{Index}", None, colour="red"),
            "unknown keys ['colour']",
        ),
        (
            _edit("/v1/Services/{ServiceSid}/Boxes/{BoxSid}/Permissions", None, rename={"x": "y"}),
            "rename names no path parameter: ['x']",
        ),
    ],
)
def test_rest_resources_refuse_what_they_cannot_generate(doc: dict[str, Any], message: str) -> None:
    from codegen.generate import build_rest_context
    from codegen.rest_resources import build_resources_context

    with pytest.raises(SystemExit, match=re.escape(message)):
        build_resources_context(doc, build_rest_context(doc)["operations"])


def test_rest_resources_need_every_rest_operation_annotated() -> None:
    from codegen.generate import build_rest_context
    from codegen.rest_resources import build_resources_context

    doc: dict[str, Any] = yaml.safe_load(RESOURCES_SPEC)
    del doc["paths"]["/v1/Services/{ServiceSid}/Boxes/{Index}"]["x-sdk"]
    with pytest.raises(SystemExit, match="need a `class`"):
        build_resources_context(doc, build_rest_context(doc)["operations"])
    doc = yaml.safe_load(RESOURCES_SPEC)
    doc["paths"]["/v1/Services/{ServiceSid}/Crates"] = copy.deepcopy(
        doc["paths"]["/v1/Services/{ServiceSid}/Boxes"]
    )
    crates = doc["paths"]["/v1/Services/{ServiceSid}/Crates"]
    del crates["x-sdk"]
    crates["get"]["operationId"], crates["post"]["operationId"] = "listCrates", "createCrate"
    with pytest.raises(SystemExit, match="listCrates, createCrate would be missing"):
        build_resources_context(doc, build_rest_context(doc)["operations"])


def test_every_rest_operation_has_a_resource_method() -> None:
    """The committed resource classes call every REST API v1 operation of SyncRestApi."""
    from sync_generated.rest import OPERATIONS

    tree = ast.parse((GENERATED / "rest_resources.py").read_text(encoding="utf-8"))
    called = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_api"
    }
    expected = {
        re.sub(r"(?<!^)(?=[A-Z])", "_", op_id).lower()
        for op_id, (_, path) in OPERATIONS.items()
        if path.startswith("/v1/Services")
    }
    assert called == expected
