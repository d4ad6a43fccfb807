"""Generate typed Python from the YAML protocol spec.

    python -m codegen.generate [--spec spec] [--out generated/sync_generated]

Pydantic v2 models come from datamodel-code-generator (protocol.yaml, twilsock.yaml, the
components/schemas of http.yaml, and cds.yaml's request bodies), and so do TypedDicts of protocol.yaml's payloads
(`protocol_dicts.py`, for building frames with no runtime cost); the discriminated unions
of protocol.yaml (`Request`, `EventFrame`), the client surface (states, transition table,
options, events, typed `on()` overloads), the error classes, the typed REST client
(`SyncRestApi`, one method per operationId of http.yaml) and the REST resource classes of
`sync_sdk.rest` (from http.yaml's `x-sdk` annotations, codegen/rest_resources.py) come from
jinja2 templates; the blocking client (`blocking.py`) mirrors the async SDK classes that
client.yaml lists, read from their source (codegen/blocking.py).
Output is deterministic and formatted with ruff, so `make check-generated` can compare it
byte for byte.
"""

from __future__ import annotations

import argparse
import copy
import keyword
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml
from datamodel_code_generator import InputFileType, PythonVersion, generate
from datamodel_code_generator._shared_types import LiteralType
from datamodel_code_generator.enums import DataModelType

from codegen.blocking import build_blocking_context
from codegen.rest_resources import build_resources_context

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"

JsonDict = dict[str, Any]


def header(*sources: str) -> str:
    """The first two lines of a generated file; `sources` are spec files, or paths from the
    project root (with a `/`)."""
    names = ", ".join(s if "/" in s else f"spec/{s}" for s in sources)
    return (
        f"# Generated from {names} by codegen/generate.py (`make generate`).\n"
        "# DO NOT EDIT: change the spec or the template and regenerate."
    )


def load_yaml(path: Path) -> JsonDict:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a mapping at the top level")
    return data


def _rewrite_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                v.replace(old, new)
                if k == "$ref" and isinstance(v, str)
                else _rewrite_refs(v, old, new)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v, old, new) for v in node]
    return node


def discriminated_unions(schemas: JsonDict) -> list[JsonDict]:
    """Every schema that is a `oneOf` with a discriminator, in spec order: its name, a
    docstring, the tag property and the member model of each tag value."""
    unions = []
    for name, schema in schemas.items():
        if "oneOf" not in schema:
            continue
        discriminator = schema.get("discriminator")
        if not isinstance(discriminator, dict) or "mapping" not in discriminator:
            raise SystemExit(f"{name}: a oneOf needs a discriminator with a mapping")
        tag = discriminator["propertyName"]
        members = {value: ref.rsplit("/", 1)[-1] for value, ref in discriminator["mapping"].items()}
        listed = [member["$ref"].rsplit("/", 1)[-1] for member in schema["oneOf"]]
        if sorted(listed) != sorted(members.values()):
            raise SystemExit(f"{name}: oneOf and discriminator.mapping list different schemas")
        for value, member in members.items():
            if schemas[member]["properties"][tag] != {"const": value}:
                raise SystemExit(f"{name}: {member}.{tag} must be {{const: {value}}}")
        unions.append(
            {
                "name": name,
                "constant": re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper(),
                "description": " ".join(str(schema.get("description", "")).split()),
                "tag": tag,
                "members": members,
            }
        )
    return unions


def json_schema_from_asyncapi(doc: JsonDict, *, typed_dicts: bool = False) -> JsonDict:
    """components/schemas as JSON Schema `$defs`, without the discriminated unions (their
    templates render them). For TypedDicts, without `additionalProperties: false`, which
    would make them `closed=True` (typing_extensions >= 4.10 only); mypy rejects unknown
    keys in a TypedDict literal anyway."""
    schemas = copy.deepcopy(doc["components"]["schemas"])
    schemas = _rewrite_refs(schemas, "#/components/schemas/", "#/$defs/")
    for union in discriminated_unions(schemas):
        schemas.pop(union["name"])
    if typed_dicts:
        for schema in schemas.values():
            if schema.get("additionalProperties") is False:
                del schema["additionalProperties"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": schemas}


def pydantic_models(
    schema: JsonDict,
    source: str,
    model_type: DataModelType = DataModelType.PydanticV2BaseModel,
    *,
    docstring: str | None = None,
) -> str:
    # Only $defs matter; the root is an empty placeholder object.
    schema = {k: v for k, v in schema.items() if not k.startswith("x-")}
    schema.setdefault("type", "object")
    out = generate(
        schema,
        input_file_type=InputFileType.JsonSchema,
        output_model_type=model_type,
        target_python_version=PythonVersion.PY_311,
        disable_timestamp=True,
        use_standard_collections=True,
        use_union_operator=True,
        use_double_quotes=True,
        use_schema_description=True,
        use_field_description=True,
        field_constraints=True,
        use_annotated=True,
        # TypedDicts describe plain JSON, so every enum is a Literal there.
        enum_field_as_literal=(
            LiteralType.All if model_type == DataModelType.TypingTypedDict else LiteralType.One
        ),
        strict_nullable=True,
        custom_file_header=header(source) + (f"\n{docstring}" if docstring else ""),
        formatters=[],  # ruff formats everything afterwards
        collapse_root_models=True,
        set_default_enum_member=True,
    )
    assert isinstance(out, str)
    # The placeholder root model carries nothing.
    out = re.sub(r"\nclass \w+\((BaseModel|TypedDict)\):\n    pass\n", "\n", out, count=1)
    return out


def protocol_module(protocol: JsonDict) -> str:
    """Pydantic models of every protocol.yaml payload, then its discriminated unions with a
    TypeAdapter each (`REQUEST_ADAPTER`, `EVENT_FRAME_ADAPTER`)."""
    unions = discriminated_unions(protocol["components"]["schemas"])
    return pydantic_models(json_schema_from_asyncapi(protocol), "protocol.yaml") + render(
        "protocol_union.py.j2", unions=unions, version=protocol["info"]["x-protocol-version"]
    )


def protocol_dicts_module(protocol: JsonDict) -> str:
    """TypedDicts of every protocol.yaml payload and its unions: the same frames as plain
    dicts, for code that builds frames and wants them typed at no runtime cost."""
    docstring = (
        '"""The frames of spec/protocol.yaml as TypedDicts: build a frame as a plain dict,\n'
        "checked by the type checker against the spec, at no runtime cost. `protocol.py` has\n"
        'the same payloads as pydantic models, to validate frames received."""'
    )
    models = pydantic_models(
        json_schema_from_asyncapi(protocol, typed_dicts=True),
        "protocol.yaml",
        DataModelType.TypingTypedDict,
        docstring=docstring,
    )
    unions = discriminated_unions(protocol["components"]["schemas"])
    return models + render("protocol_dicts_union.py.j2", unions=unions)


def split_models(doc: JsonDict, source: str) -> tuple[str, str]:
    """An OpenAPI document's schemas as two modules: pydantic models for what arrives
    (validated at run time) and TypedDicts for those marked `x-python: typeddict`, what the
    server builds and sends (checked by mypy, no run-time cost). Shared schemas without the
    mark that a TypedDict refers to are in both."""
    schemas: JsonDict = doc["components"]["schemas"]
    typed = {name for name, schema in schemas.items() if schema.get("x-python") == "typeddict"}

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
            return found.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    shared = set().union(*(refs(schemas[name]) for name in typed)) - typed
    clean = {n: {k: v for k, v in s.items() if k != "x-python"} for n, s in schemas.items()}

    def subset(names: set[str]) -> JsonDict:
        picked = {n: clean[n] for n in schemas if n in names}
        return json_schema_from_openapi({"components": {"schemas": picked}})

    models = pydantic_models(subset(set(schemas) - typed), source)
    typed_dicts = pydantic_models(
        subset(typed | shared), source, model_type=DataModelType.TypingTypedDict
    )
    return models, typed_dicts


# ---- template helpers -------------------------------------------------------------------

_JSON_TO_PY = {"boolean": "bool", "integer": "int", "number": "float", "string": "str"}


def py_type(field: Mapping[str, Any]) -> str:
    if "x-py" in field:
        return str(field["x-py"])
    t = field.get("type")
    if isinstance(t, list):
        parts = [_JSON_TO_PY.get(x, "None") if x != "null" else "None" for x in t]
        return " | ".join(parts)
    if isinstance(t, str) and t in _JSON_TO_PY:
        return _JSON_TO_PY[t]
    raise SystemExit(f"cannot map field {dict(field)!r} to a Python type")


def py_literal(value: Any) -> str:
    return repr(value)


def render(template: str, **context: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py_type"] = py_type
    env.filters["py"] = py_literal
    env.filters["snake"] = lambda name: re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return env.get_template(template).render(**context)


def build_client_context(client: JsonDict, entities: JsonDict) -> JsonDict:
    events_by_class: JsonDict = client["Events"]
    payload_classes: dict[str, JsonDict] = {}
    for cls_events in events_by_class.values():
        for ev in cls_events.values():
            if "class" in ev:
                prev = payload_classes.get(ev["class"])
                if prev is not None and prev["fields"] != ev["fields"]:
                    raise SystemExit(
                        f"event class {ev['class']} defined twice with different fields"
                    )
                payload_classes[ev["class"]] = {"name": ev["class"], **ev}
    states = client["ConnectionState"]
    for src, dsts in states["transitions"].items():
        for s in [src, *dsts]:
            if s not in states["values"]:
                raise SystemExit(f"transition mentions unknown state {s!r}")
    return {
        "states": states,
        "enums": client["Enums"],
        "options": client["ClientOptions"],
        "item_classes": client["ItemClasses"],
        "events_by_class": events_by_class,
        "payload_classes": sorted(payload_classes.values(), key=lambda c: c["name"]),
        "limits": entities["x-limits"],
        "sid_prefixes": entities["x-sid-prefixes"],
    }


def build_errors_context(errors: JsonDict) -> JsonDict:
    codes = [{"code": int(code), **info} for code, info in errors["codes"].items()]
    for c in codes:
        if c["family"] not in errors["families"]:
            raise SystemExit(f"error {c['code']}: unknown family {c['family']!r}")
    return {"families": errors["families"], "codes": sorted(codes, key=lambda c: c["code"])}


# ---- REST client (http.yaml, OpenAPI 3.1) ------------------------------------------------

_HTTP_METHODS = ("get", "put", "post", "patch", "delete")
_PARAM_TYPES = {"string": "str", "integer": "int", "boolean": "bool"}
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


def _resolve(doc: JsonDict, node: Any) -> Any:
    """Follow local `$ref`s (`#/components/...`) until a non-reference node."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            raise SystemExit(f"http.yaml: unsupported or circular $ref {ref!r}")
        seen.add(ref)
        target: Any = doc
        for part in ref[2:].split("/"):
            if not isinstance(target, dict) or part not in target:
                raise SystemExit(f"http.yaml: $ref {ref!r} does not resolve")
            target = target[part]
        node = target
    return node


def _py_name(wire_name: str) -> str:
    """`PageSize` -> `page_size`, `If-Match` -> `if_match`, `From` -> `from_`."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", wire_name.replace("-", "")).lower()
    if not name.isidentifier():
        raise SystemExit(f"http.yaml: cannot make a Python name from {wire_name!r}")
    return name + "_" if keyword.iskeyword(name) else name


def _param_py_type(schema: Mapping[str, Any], where: str) -> str:
    if schema.get("contentMediaType") == _JSON:
        if (
            schema.get("type") != "string"
            or schema.get("contentSchema", {}).get("type") != "object"
        ):
            raise SystemExit(f"http.yaml {where}: JSON-encoded fields must hold an object")
        return "Mapping[str, Any]"
    if "enum" in schema:
        return "Literal[" + ", ".join(repr(v) for v in schema["enum"]) + "]"
    t = schema.get("type")
    if not isinstance(t, str) or t not in _PARAM_TYPES:
        raise SystemExit(f"http.yaml {where}: unsupported parameter schema {dict(schema)!r}")
    return _PARAM_TYPES[t]


def _doc_text(text: Any, where: str) -> str:
    value = " ".join(str(text or "").split())
    if '"""' in value or "\\" in value:
        raise SystemExit(
            f"http.yaml {where}: descriptions may not contain triple quotes or backslashes"
        )
    return value


def _schema_name(doc: JsonDict, response: Any, where: str) -> str | None:
    content = _resolve(doc, response).get("content")
    if not content:
        return None
    if set(content) != {_JSON}:
        raise SystemExit(f"http.yaml {where}: responses must be application/json")
    ref = content[_JSON].get("schema", {}).get("$ref", "")
    if not ref.startswith("#/components/schemas/"):
        raise SystemExit(f"http.yaml {where}: response schema must be a $ref to components/schemas")
    _resolve(doc, {"$ref": ref})
    return str(ref.rsplit("/", 1)[-1])


def _method_docstring(summary: str, description: str, route: str, args: list[JsonDict]) -> str:
    """The body of a generated method's docstring, indented for a method (8 spaces)."""
    pad = " " * 8
    width = 92
    parts = [summary]
    if description:
        parts += ["", *textwrap.wrap(description, width - len(pad))]
    parts += ["", route]
    if args:
        parts += ["", "Args:"]
        for a in args:
            text = f"{a['py']}: `{a['wire']}`" + (f". {a['doc']}" if a["doc"] else "")
            parts += textwrap.wrap(
                text,
                width - len(pad),
                initial_indent="    ",
                subsequent_indent="        ",
                break_long_words=False,
                break_on_hyphens=False,
            )
    return "\n".join(pad + line if line else "" for line in parts).lstrip() + "\n" + pad


def build_rest_context(doc: JsonDict) -> JsonDict:
    """One entry per operation with a 2xx JSON (or 204) response, in spec order."""
    default_security = doc.get("security", [])
    operations: list[JsonDict] = []
    seen_ids: set[str] = set()
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method in _HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            op_id = op["operationId"]
            where = f"{method.upper()} {path} ({op_id})"
            if op_id in seen_ids:
                raise SystemExit(f"http.yaml: operationId {op_id} is used twice")
            seen_ids.add(op_id)
            ok = sorted(code for code in op["responses"] if str(code).startswith("2"))
            if not ok:
                continue  # e.g. the WebSocket upgrade (101)
            models = {_schema_name(doc, op["responses"][code], where) for code in ok}
            if len(models) != 1:
                raise SystemExit(f"{where}: success responses must share one schema (or none)")
            returns = models.pop()
            params: dict[str, JsonDict] = {}
            components: dict[str, str] = {}  # the components/parameters name of a $ref
            for raw in [*shared, *op.get("parameters", [])]:
                p = _resolve(doc, raw)
                key = f"{p['in']}:{p['name']}"
                params[key] = p  # operation-level overrides path-level
                ref = raw.get("$ref", "") if isinstance(raw, dict) else ""
                if ref.startswith("#/components/parameters/"):
                    components[key] = ref.rsplit("/", 1)[-1]
            path_names = re.findall(r"{(\w+)}", path)
            positional: list[JsonDict] = []
            by_location: dict[str, list[JsonDict]] = {"query": [], "header": [], "form": []}
            for name in path_names:
                p = params.pop(f"path:{name}", None)
                if p is None:
                    raise SystemExit(f"{where}: path parameter {name} is not declared")
                positional.append(
                    {
                        "wire": name,
                        "py": _py_name(name),
                        "type": _param_py_type(p["schema"], where),
                        "required": True,
                        "doc": _doc_text(p.get("description"), where),
                    }
                )
            for p in params.values():
                if p["in"] not in ("query", "header"):
                    raise SystemExit(f"{where}: unsupported parameter location {p['in']!r}")
                arg = {
                    "wire": p["name"],
                    "py": _py_name(p["name"]),
                    "type": _param_py_type(p["schema"], where),
                    "required": bool(p.get("required", False)),
                    "doc": _doc_text(p.get("description"), where),
                    "component": components.get(f"{p['in']}:{p['name']}"),
                    "location": p["in"],
                }
                by_location[p["in"]].append(arg)
            has_body = "requestBody" in op
            if has_body:
                body = _resolve(doc, op["requestBody"])
                if set(body["content"]) != {_FORM}:
                    raise SystemExit(f"{where}: request bodies must be {_FORM}")
                schema = _resolve(doc, body["content"][_FORM]["schema"])
                required = set(schema.get("required", []))
                for name, prop in schema.get("properties", {}).items():
                    prop = _resolve(doc, prop)
                    by_location["form"].append(
                        {
                            "wire": name,
                            "py": _py_name(name),
                            "type": _param_py_type(prop, where),
                            "required": name in required,
                            "doc": _doc_text(prop.get("description"), where),
                            "component": None,
                            "location": "form",
                        }
                    )
            ordered = [*by_location["form"], *by_location["query"], *by_location["header"]]
            keyword_args = [a for a in ordered if a["required"]] + [
                a for a in ordered if not a["required"]
            ]
            names = [a["py"] for a in [*positional, *keyword_args]]
            if len(names) != len(set(names)):
                raise SystemExit(f"{where}: two parameters map to the same Python name")
            url = re.sub(r"{(\w+)}", lambda m: "{_path(" + _py_name(m.group(1)) + ")}", path)
            signature = ["self", *(f"{a['py']}: {a['type']}" for a in positional)]
            if keyword_args:
                signature.append("*")
                signature += [
                    f"{a['py']}: {a['type']}" + ("" if a["required"] else " | None = None")
                    for a in keyword_args
                ]
            summary = _doc_text(op.get("summary"), where)
            description = _doc_text(op.get("description"), where)
            operations.append(
                {
                    "operation_id": op_id,
                    "name": _py_name(op_id),
                    "method": method.upper(),
                    "path": path,
                    "url": ("f" if "{" in url else "") + repr(url).replace("'", '"'),
                    "signature": ", ".join(signature),
                    "docstring": _method_docstring(
                        summary,
                        description,
                        f"`{op_id}`: {method.upper()} {path}",
                        [*positional, *keyword_args],
                    ),
                    "query": by_location["query"],
                    "headers": by_location["header"],
                    "form": by_location["form"],
                    "has_body": has_body,
                    "returns": returns,
                    "secured": bool(op.get("security", default_security)),
                    "path_args": positional,  # for codegen/rest_resources.py
                    "keyword_args": keyword_args,
                }
            )
    return {"operations": operations}


def json_schema_from_openapi(doc: JsonDict) -> JsonDict:
    schemas = _rewrite_refs(
        copy.deepcopy(doc["components"]["schemas"]), "#/components/schemas/", "#/$defs/"
    )
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": schemas}


def rest_module(http: JsonDict) -> str:
    """Models from components/schemas, then the client class, with one import block."""
    models = pydantic_models(json_schema_from_openapi(http), "http.yaml")
    m = re.search(r"^class ", models, flags=re.M)
    if m is None:
        raise SystemExit("http.yaml: components/schemas produced no models")
    head, body = models[: m.start()], models[m.start() :]
    imports: list[str] = []
    for line in head.splitlines():
        if line.startswith("#") or not line.strip() or "__future__" in line:
            continue
        if not line.startswith(("from ", "import ", "    ", ")")):
            raise SystemExit(f"unexpected line before the first model: {line!r}")
        imports.append(line)
    return render(
        "rest.py.j2",
        header=header("http.yaml"),
        model_imports="\n".join(imports),
        models=body,
        model_names=re.findall(r"^class (\w+)\(", body, flags=re.M),
        **build_rest_context(http),
    )


def rest_resources_module(http: JsonDict) -> str:
    """The resource classes `sync_sdk.rest` exports, from http.yaml's `x-sdk` annotations
    (codegen/rest_resources.py), over the operations of `SyncRestApi`."""
    context = build_resources_context(http, build_rest_context(http)["operations"])
    return render("rest_resources.py.j2", header=header("http.yaml"), **context)


def blocking_module(client: JsonDict) -> str:
    """`sync_sdk.blocking`: the async classes client.yaml `Blocking` lists, read from their
    source (codegen/blocking.py), as blocking classes."""
    context = build_blocking_context(ROOT, client["Blocking"])
    sources = sorted({c.source for c in context["classes"]})
    return render("blocking.py.j2", header=header("client.yaml", *sources), **context)


def generate_all(spec_dir: Path, out_dir: Path) -> list[Path]:
    entities = load_yaml(spec_dir / "entities.yaml")
    protocol = load_yaml(spec_dir / "protocol.yaml")
    client = load_yaml(spec_dir / "client.yaml")
    errors = load_yaml(spec_dir / "errors.yaml")
    http = load_yaml(spec_dir / "http.yaml")
    twilsock = load_yaml(spec_dir / "twilsock.yaml")
    cds_models, cds_types = split_models(load_yaml(spec_dir / "cds.yaml"), "cds.yaml")

    files: dict[str, str] = {
        "__init__.py": render("init.py.j2", header=header("*.yaml")),
        "protocol.py": protocol_module(protocol),
        "protocol_dicts.py": protocol_dicts_module(protocol),
        "client.py": render(
            "client.py.j2",
            header=header("client.yaml", "entities.yaml"),
            **build_client_context(client, entities),
        ),
        "errors.py": render(
            "errors.py.j2", header=header("errors.yaml"), **build_errors_context(errors)
        ),
        "rest.py": rest_module(http),
        "rest_resources.py": rest_resources_module(http),
        "blocking.py": blocking_module(client),
        "twilsock.py": pydantic_models(json_schema_from_openapi(twilsock), "twilsock.yaml"),
        "cds.py": cds_models,
        "cds_types.py": cds_types,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    # Format with the project's ruff settings wherever the output lands (temp dirs included).
    (out_dir / "py.typed").write_text("")  # PEP 561: the package ships its types
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(ROOT / "pyproject.toml")]
    paths = [str(p) for p in written]
    subprocess.run(
        [*ruff, "check", *config, "--fix", "--quiet", "--select", "I,F401,UP", *paths], check=False
    )
    subprocess.run([*ruff, "format", *config, "--quiet", *paths], check=True)
    return written


def check(spec_dir: Path, out_dir: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "sync_generated"
        generate_all(spec_dir, fresh)
        diffs = []
        names = {p.name for p in fresh.iterdir()} | {
            p.name for p in out_dir.iterdir() if p.is_file()
        }
        for name in sorted(names):
            a, b = out_dir / name, fresh / name
            if not a.exists() or not b.exists() or a.read_bytes() != b.read_bytes():
                diffs.append(name)
        if diffs:
            print(
                f"generated/ is stale ({', '.join(diffs)}): run `make generate` and commit",
                file=sys.stderr,
            )
            return 1
    print("generated/ is up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--spec", type=Path, default=ROOT / "spec")
    ap.add_argument("--out", type=Path, default=ROOT / "generated" / "sync_generated")
    ap.add_argument(
        "--check", action="store_true", help="fail if --out differs from a fresh generation"
    )
    args = ap.parse_args(argv)
    if args.check:
        return check(args.spec, args.out)
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    for path in generate_all(args.spec, out):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
