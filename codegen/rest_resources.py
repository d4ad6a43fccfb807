"""The resource classes of `sync_sdk.rest`, from spec/http.yaml's `x-sdk` annotations.

`SyncRestApi` (generated/sync_generated/rest.py) has one method per operation; this builds the
typed layer on top of it that `sync_sdk.rest` exports (generated/sync_generated/rest_resources.py):

    rest.service(sid).documents.create(...)          # Documents: a collection
    rest.service(sid).maps("m").items("k").update()  # MapContext, MapItems, MapItemContext

Every path with an `x-sdk: {class: ...}` becomes a class. A path that ends in a parameter is
one resource, a *context*: `fetch` / `update` / `delete` from its operations, and one attribute
per collection under it (named after the collection's last path segment: `items`). Any other
path is a *collection*: `create` and, from its list operation, `page` / `iter` / `list`
(through `Paged`, or `SimplePaged` when the only argument is `page_size`); calling it with an
id gives the context of the path below it. Constructors take the path parameters, kept as
attributes (`service_sid`, `sid`; `rename` stores one under another name).

A collection with `base: <Name>` is a member of a family sharing a handwritten generic base
in sync_sdk/_rest_base.py (`Permissions`): it fills in the base's hooks `_first`, `_fetch`,
`_update`, `_delete` (the id, then the operation's arguments, positionally) and its context
is the base's.

An operation's `x-sdk` picks the arguments its method takes (`args`, in order; by default
every keyword argument of the `SyncRestApi` method, and for a list operation every one but
`page` and `page_token`), which come first and positionally (`positional`), the method's
name for an argument (`rename: {item_ttl: ttl}`) and the docstring (`doc`; by default the
operation's summary). Types come from the spec, as in `SyncRestApi`, except that a JSON
object is `Data` and an enum parameter of components/parameters is a `Literal` alias named
after it (`Order`, `Bounds`). What cannot be generated stops generation with a message.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from typing import Any

JsonDict = dict[str, Any]

# The method an operation becomes, by the verb its operationId starts with.
_VERBS = {
    "list": "page",
    "create": "create",
    "fetch": "fetch",
    "update": "update",
    "delete": "delete",
}
_COLLECTION_VERBS = {"page", "create"}
_CONTEXT_VERBS = {"fetch", "update", "delete"}
_CURSOR_ARGS = ("page", "page_token")  # SimplePaged / Paged follow next_page_url instead
_DATA = "Mapping[str, Any]"  # how SyncRestApi types a JSON-encoded form field
_WIDTH = 100


def _fail(where: str, message: str) -> SystemExit:
    return SystemExit(f"http.yaml {where}: x-sdk: {message}")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _shape(path: str) -> str:
    """The path with its parameters blanked, to find parents whatever they call them."""
    return re.sub(r"{\w+}", "{}", path)


def docstring(text: str, indent: int, where: str) -> str:
    """`text` wrapped for a docstring at `indent` (without the quotes)."""
    text = " ".join(text.split())
    if not text:
        return ""
    if '"""' in text or "\\" in text or text.endswith('"'):
        raise _fail(where, "a doc may not contain triple quotes or backslashes, or end in a quote")
    lines = textwrap.wrap(text, _WIDTH - indent - 6, break_long_words=False, break_on_hyphens=False)
    return ("\n" + " " * indent).join(lines)


def _keys(node: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(node) - allowed
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")


def build_resources_context(doc: JsonDict, operations: list[JsonDict]) -> JsonDict:
    """The classes of rest_resources.py.j2. `operations` is `build_rest_context(doc)`'s list
    (one entry per SyncRestApi method, with its `path_args` and `keyword_args`)."""
    top = doc.get("x-sdk", {})
    _keys(top, {"import-as"}, "x-sdk")
    import_as: dict[str, str] = dict(top.get("import-as", {}))
    schemas: JsonDict = doc["components"]["schemas"]

    ops_by_path: dict[str, list[JsonDict]] = {}
    for op in operations:
        ops_by_path.setdefault(op["path"], []).append(op)
    raw_ops = {
        op["operationId"]: op
        for item in doc["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }

    # Which paths are collections, which are contexts, and who owns them.
    annotated = {p: item["x-sdk"] for p, item in doc["paths"].items() if "x-sdk" in item}
    by_shape = {_shape(p): p for p in doc["paths"]}
    collections: dict[str, JsonDict] = {}
    contexts: dict[str, JsonDict] = {}
    family_contexts: dict[str, str] = {}  # instance path -> its family collection's path
    for path, ann in annotated.items():
        _keys(ann, {"class", "doc", "base", "rename"}, path)
        if "class" not in ann:
            raise _fail(path, "a path needs a `class`")
        if path not in ops_by_path:
            raise _fail(path, "the path has no operation SyncRestApi has a method for")
        (contexts if path.endswith("}") else collections)[path] = ann
    for path, ann in collections.items():
        instance = by_shape.get(_shape(path) + "/{}")
        if "base" in ann:
            if instance is None or instance in annotated:
                raise _fail(path, "a family member needs an instance path without x-sdk")
            family_contexts[instance] = path
        elif instance is not None and instance not in contexts:
            raise _fail(instance, "the resources of an annotated collection need a `class`")
    for path in contexts:
        if by_shape.get(_shape(path).rsplit("/", 1)[0]) not in collections:
            raise _fail(path, "a context needs an annotated collection above it")
    in_scope = set(annotated) | set(family_contexts)
    for path, ops in ops_by_path.items():
        if path.startswith("/v1/Services") and path not in in_scope:
            missing = ", ".join(op["operation_id"] for op in ops)
            raise _fail(path, f"{missing} would be missing from sync_sdk.rest: annotate the path")

    models: set[str] = set()
    aliases: dict[str, JsonDict] = {}

    def model(name: str) -> str:
        models.add(name)
        return import_as.get(name, name)

    def sdk_type(arg: JsonDict, where: str) -> str:
        if arg["type"] == _DATA:
            return "Data"
        if arg["type"].startswith("Literal[") and arg.get("component"):
            name = arg["component"]
            if aliases.get(name, {}).get("type", arg["type"]) != arg["type"]:
                raise _fail(where, f"two different enums are called {name}")
            aliases[name] = {"name": name, "type": arg["type"], "doc": arg["doc"]}
            return str(name)
        return str(arg["type"])

    def path_params(path: str, rename: Mapping[str, str]) -> list[JsonDict]:
        args = ops_by_path[path][0]["path_args"]
        unknown = set(rename) - {a["py"] for a in args}
        if unknown:
            raise _fail(path, f"rename names no path parameter: {sorted(unknown)}")
        return [
            {"name": a["py"], "attr": rename.get(a["py"], a["py"]), "type": a["type"]} for a in args
        ]

    def verb_of(op: JsonDict, allowed: set[str], path: str) -> str:
        m = re.match(r"[a-z]+", op["operation_id"])
        verb = _VERBS.get(m.group() if m else "")
        if verb not in allowed:
            raise _fail(path, f"{op['operation_id']}: expected one of {sorted(allowed)}")
        return str(verb)

    def method(op: JsonDict, params: list[JsonDict], hook: bool = False) -> JsonDict:
        """One SyncRestApi operation as a method of the class whose path parameters are
        `params` (the last one is the method's own argument for a family hook)."""
        where = f"{op['operation_id']}"
        ann = raw_ops[op["operation_id"]].get("x-sdk", {})
        _keys(ann, {"args", "positional", "rename", "doc"}, where)
        verb = verb_of(op, set(_VERBS.values()), where)
        api_args = {a["py"]: a for a in op["keyword_args"]}
        default = [n for n in api_args if not (verb == "page" and n in _CURSOR_ARGS)]
        names: list[str] = list(ann.get("args", default))
        positional: list[str] = list(ann.get("positional", []))
        rename: dict[str, str] = dict(ann.get("rename", {}))
        for n in [*names, *rename]:
            if n not in api_args:
                raise _fail(where, f"{n!r} is not an argument of SyncRestApi.{op['name']}")
        if names[: len(positional)] != positional:
            raise _fail(where, "`positional` must name the first of `args`, in order")
        if set(rename) - set(names):
            raise _fail(where, "`rename` names an argument that `args` leaves out")
        args = []
        for n in names:
            a = api_args[n]
            args.append(
                {
                    "name": rename.get(n, n),
                    "api": n,
                    "type": sdk_type(a, where),
                    "required": a["required"],
                    "positional": hook or n in positional,
                }
            )
        own = [p["name"] for p in params]
        sdk_names = [a["name"] for a in args]
        if len(set(sdk_names)) != len(sdk_names) or set(sdk_names) & set(own):
            raise _fail(where, f"two arguments are called the same: {sdk_names + own}")
        seen_optional = False
        for a in args:
            if a["positional"] and not a["required"]:
                seen_optional = True
            elif a["positional"] and seen_optional:
                raise _fail(where, f"required positional {a['name']!r} after an optional one")
        if verb == "page" and (positional or "page_size" not in names):
            raise _fail(where, "a list operation takes `page_size`, and nothing positionally")

        def decl(a: JsonDict) -> str:
            return f"{a['name']}: {a['type']}" + ("" if a["required"] else " | None = None")

        sig = [decl(a) for a in args if a["positional"]]
        keywords = [decl(a) for a in args if not a["positional"]]
        if keywords:
            sig += ["*", *keywords]
        if hook:
            sig = [f"{params[-1]['name']}: {params[-1]['type']}", *sig]
        path_values = [f"self.{p['attr']}" for p in params]
        if hook:
            path_values[-1] = params[-1]["name"]
        call = [*path_values, *(f"{a['api']}={a['name']}" for a in args)]
        summary = raw_ops[op["operation_id"]].get("summary", "")
        return {
            "verb": verb,
            "name": ("_" + verb if hook else verb) if verb != "page" else "page",
            "api": op["name"],
            "signature": ", ".join(sig),
            "args": args,
            "call": ", ".join(call),
            "returns": model(op["returns"]) if op["returns"] else None,
            "doc": "" if hook else docstring(ann.get("doc", summary), 8, where),
        }

    classes: list[JsonDict] = []
    pages: dict[str, JsonDict] = {}
    for path, ann in annotated.items():
        params = path_params(path, dict(ann.get("rename", {})))
        cls: JsonDict = {
            "name": ann["class"],
            "doc": docstring(ann.get("doc", ""), 4, path),
            "params": params,
            "base": None,
            "super_args": None,
            "attributes": list(params),
            "children": [],
            "call": None,
            "methods": [],
            "paged": None,
            "family": "base" in ann,
        }
        if path in contexts:
            for op in ops_by_path[path]:
                verb_of(op, _CONTEXT_VERBS, path)
                cls["methods"].append(method(op, params))
            for child_path, child in collections.items():
                if by_shape.get(_shape(child_path).rsplit("/", 1)[0]) != path:
                    continue
                cls["children"].append(
                    {
                        "attr": _snake(child_path.rsplit("/", 1)[-1]),
                        "cls": child["class"],
                        "args": ", ".join(p["name"] for p in params),
                    }
                )
        else:
            page_op = None
            for op in ops_by_path[path]:
                if verb_of(op, _COLLECTION_VERBS, path) == "page":
                    page_op = op
                else:
                    cls["methods"].append(method(op, params))
            if page_op is not None:
                page_name = page_op["returns"]
                props = dict(schemas[page_name]["properties"])
                props.pop("meta", None)
                if len(props) != 1:
                    raise _fail(path, f"{page_name} must have `meta` and one array of records")
                [(key, prop)] = props.items()
                record = prop.get("items", {}).get("$ref", "").rsplit("/", 1)[-1]
                if prop.get("type") != "array" or not record:
                    raise _fail(path, f"{page_name}.{key} must be an array of a schema")
                page = {
                    "constant": "_" + _snake(page_name).upper(),
                    "model": model(page_name),
                    "record": model(record),
                    "key": key,
                    "noun": key.removesuffix("s"),
                }
                pages[page_name] = page
                m = method(page_op, params)
                simple = [a["api"] for a in m["args"]] == ["page_size"]
                if cls["family"]:
                    if not simple:
                        raise _fail(path, "a family member is paged by `page_size` only")
                    base = ann["base"]
                elif simple:
                    base = "SimplePaged"
                else:
                    base = "Paged"
                    cls["paged"] = {**m, **page}
                    cls["methods"].append(m)
                if simple:
                    cls["methods"].append({**m, "name": "_first", "verb": "first"})
                cls["base"] = f"{base}[{page['record']}, {page['model']}]"
                cls["super_args"] = ", ".join(
                    [page["constant"], *(p["name"] for p in params if cls["family"])]
                )
            elif cls["family"]:
                raise _fail(path, "a family member needs a list operation")
            if cls["family"]:
                cls["attributes"] = []  # the base keeps them
                instance = next(i for i, c in family_contexts.items() if c == path)
                for op in ops_by_path[instance]:
                    verb_of(op, _CONTEXT_VERBS, instance)
                    id_param = path_params(instance, {})[-1]
                    cls["methods"].append(method(op, [*params, id_param], hook=True))
            else:
                instance = by_shape.get(_shape(path) + "/{}")
                if instance is not None:
                    ctx = contexts[instance]
                    own = path_params(instance, dict(ctx.get("rename", {})))[-1]
                    cls["call"] = {
                        "param": own["name"],
                        "type": own["type"],
                        "cls": ctx["class"],
                        "args": ", ".join([*(f"self.{p['attr']}" for p in params), own["name"]]),
                        "doc": docstring(ctx.get("doc", ""), 8, instance),
                    }
        classes.append(cls)

    names = [c["name"] for c in classes]
    taken = set(names) | {import_as.get(n, n) for n in models} | {"Data"}
    clash = [a for a in aliases if a in taken] + [n for n in set(names) if names.count(n) > 1]
    if clash:
        raise _fail("x-sdk", f"names used twice: {sorted(set(clash))}")
    return {
        "classes": classes,
        "pages": list(pages.values()),
        "aliases": [aliases[k] for k in sorted(aliases)],
        "family_bases": sorted({c["base"].split("[")[0] for c in classes if c["family"]}),
        "models": [(name, import_as.get(name, name)) for name in sorted(models, key=str.lower)],
        "exports": sorted([*names, *aliases, "Data"]),
    }
