"""Generate typed Python from the YAML protocol spec.

    python -m codegen.generate [--spec spec] [--out generated/sync_generated]

Pydantic v2 models come from datamodel-code-generator (entities.yaml, protocol.yaml);
the client surface (states, transition table, options, events, typed `on()` overloads)
and the error classes come from jinja2 templates. Output is deterministic and formatted
with ruff, so `make check-generated` can compare it byte for byte.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml
from datamodel_code_generator import InputFileType, PythonVersion, generate
from datamodel_code_generator._shared_types import LiteralType
from datamodel_code_generator.enums import DataModelType

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"

JsonDict = dict[str, Any]


def header(*sources: str) -> str:
    names = ", ".join(f"spec/{s}" for s in sources)
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


def _strip_discriminator(node: Any) -> Any:
    # datamodel-code-generator expects OpenAPI-style discriminators only in OpenAPI input;
    # the tagged union is built in the jinja template instead.
    if isinstance(node, dict):
        return {k: _strip_discriminator(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_strip_discriminator(v) for v in node]
    return node


def json_schema_from_asyncapi(doc: JsonDict) -> JsonDict:
    schemas = copy.deepcopy(doc["components"]["schemas"])
    schemas = _rewrite_refs(schemas, "#/components/schemas/", "#/$defs/")
    schemas.pop("Request")  # the tagged union is rendered by protocol_union.py.j2
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": _strip_discriminator(schemas),
    }


def pydantic_models(schema: JsonDict, source: str) -> str:
    # Only $defs matter; the root is an empty placeholder object.
    schema = {k: v for k, v in schema.items() if not k.startswith("x-")}
    schema.setdefault("type", "object")
    out = generate(
        schema,
        input_file_type=InputFileType.JsonSchema,
        output_model_type=DataModelType.PydanticV2BaseModel,
        target_python_version=PythonVersion.PY_311,
        disable_timestamp=True,
        use_standard_collections=True,
        use_union_operator=True,
        use_double_quotes=True,
        use_schema_description=True,
        use_field_description=True,
        field_constraints=True,
        use_annotated=True,
        enum_field_as_literal=LiteralType.One,
        strict_nullable=True,
        custom_file_header=header(source),
        formatters=[],  # ruff formats everything afterwards
        collapse_root_models=True,
        set_default_enum_member=True,
    )
    assert isinstance(out, str)
    # The placeholder root model carries nothing.
    out = re.sub(r"\nclass \w+\(BaseModel\):\n    pass\n", "\n", out, count=1)
    return out


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


def generate_all(spec_dir: Path, out_dir: Path) -> list[Path]:
    entities = load_yaml(spec_dir / "entities.yaml")
    protocol = load_yaml(spec_dir / "protocol.yaml")
    client = load_yaml(spec_dir / "client.yaml")
    errors = load_yaml(spec_dir / "errors.yaml")

    files: dict[str, str] = {
        "__init__.py": render("init.py.j2", header=header("*.yaml")),
        "entities.py": pydantic_models(entities, "entities.yaml"),
        "protocol.py": pydantic_models(json_schema_from_asyncapi(protocol), "protocol.yaml")
        + render("protocol_union.py.j2", request=protocol["components"]["schemas"]["Request"]),
        "client.py": render(
            "client.py.j2",
            header=header("client.yaml", "entities.yaml"),
            **build_client_context(client, entities),
        ),
        "errors.py": render(
            "errors.py.j2", header=header("errors.yaml"), **build_errors_context(errors)
        ),
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
