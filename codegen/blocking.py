"""The blocking client's surface, read from the async classes' source with `ast`.

spec/client.yaml `Blocking` lists the async classes to mirror and the file each lives in.
For each one this module collects, from the class and the private bases it has in the
same file (in method resolution order, the first definition winning):

- `async def` methods (and their `@overload`s): a plain method with the same signature and
  docstring that runs the coroutine on the client's event-loop thread and waits for it;
- `@property`s and public class-level annotations: a property reading the async object's;
- `ClassVar`s: the async class's value;
- other public methods and dunders (`__repr__`): delegated as they are;
- `_add_listener`, which the typed `on()` of the generated `<Name>Events` base calls.

A return type naming another mirrored class (`SyncMap[M]`, `Paginator[SyncListItem[T]]`) is
wrapped in its blocking counterpart. Bases from elsewhere (`SyncMapEvents[T]`, `Generic[I]`)
are kept, so `on()` has the same overloads. Every name the copied signatures use is imported
from where the source file got it. What this cannot mirror (an async generator, a mirrored
class as a parameter or inside another type) stops generation with a message.
"""

from __future__ import annotations

import ast
import builtins
import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SKIPPED_DUNDERS = {"__init__", "__aenter__", "__aexit__"}
_LISTENER = "_add_listener"


@dataclass
class BlockingClass:
    name: str
    source: str  # e.g. sync_sdk/objects.py
    module: str  # the async class's module, e.g. sync_sdk.objects
    module_alias: str  # the async module, imported under this name
    root: bool
    bases: list[str]
    type_params: list[str]
    docstring: str
    init_args: str = ""  # root only: the async __init__'s parameters (without self)
    init_call: str = ""  # root only: how they are forwarded
    members: list[str] = field(default_factory=list)


@dataclass
class _Source:
    path: str
    module: str  # dotted name, e.g. sync_sdk.objects
    tree: ast.Module
    classes: dict[str, ast.ClassDef]
    bindings: dict[str, str]  # module-level name -> the import statement that provides it


def _module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _read_source(root: Path, path: str) -> _Source:
    tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=path)
    module = _module_name(path)
    package = module.rsplit(".", 1)[0]
    classes: dict[str, ast.ClassDef] = {}
    bindings: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if base == "__future__":
                continue
            for alias in node.names:
                local = alias.asname or alias.name
                suffix = f" as {alias.asname}" if alias.asname else ""
                bindings[local] = f"from {base} import {alias.name}{suffix}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name
                bindings[local] = f"import {alias.name}" + (
                    f" as {alias.asname}" if alias.asname else ""
                )
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = node
            bindings[node.name] = f"from {module} import {node.name}"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            bindings[node.name] = f"from {module} import {node.name}"
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bindings[target.id] = f"from {module} import {target.id}"
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            bindings[node.target.id] = f"from {module} import {node.target.id}"
    return _Source(path, module, tree, classes, bindings)


def _base_name(node: ast.expr) -> str | None:
    """`_Collection` for `_Collection[T]` or `_Collection`; None for anything else."""
    if isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _mro(source: _Source, cls: ast.ClassDef) -> tuple[list[ast.ClassDef], list[ast.expr]]:
    """The class and its bases defined in the same file (depth first, as the single
    inheritance chains of the SDK resolve), and every other base, in order."""
    local: list[ast.ClassDef] = []
    external: list[ast.expr] = []

    def visit(c: ast.ClassDef) -> None:
        if c in local:
            return
        local.append(c)
        for base in c.bases:
            name = _base_name(base)
            if name is not None and name in source.classes:
                visit(source.classes[name])
            elif ast.unparse(base) not in {ast.unparse(b) for b in external}:
                external.append(base)

    visit(cls)
    return local, external


def _is_overload(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(ast.unparse(d) in ("overload", "typing.overload") for d in fn.decorator_list)


def _is_property(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(ast.unparse(d) == "property" for d in fn.decorator_list)


def _is_async_generator(fn: ast.AsyncFunctionDef) -> bool:
    def walk(node: ast.AST) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue  # a nested function's yield is its own
            yield child
            yield from walk(child)

    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in walk(fn))


def _names(node: ast.AST | None, *, annotation: bool = True) -> set[str]:
    """Every bare name a piece of an annotation or default uses (`builtins` for
    `builtins.list`; names in string annotations too)."""
    if node is None:
        return set()
    found = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for n in ast.walk(node) if annotation else ():
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            try:
                found |= _names(ast.parse(n.value, mode="eval"))
            except SyntaxError:
                pass
    return found


def _annotations(args: ast.arguments) -> list[ast.expr | None]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    return [a.annotation for a in every]


def _forward(args: ast.arguments) -> str:
    """The arguments of a call passing a function's parameters on (without `self`)."""
    positional = [a.arg for a in [*args.posonlyargs, *args.args] if a.arg != "self"]
    parts = list(positional)
    if args.vararg is not None:
        parts.append(f"*{args.vararg.arg}")
    parts += [f"{a.arg}={a.arg}" for a in args.kwonlyargs]
    if args.kwarg is not None:
        parts.append(f"**{args.kwarg.arg}")
    return ", ".join(parts)


def _docstring_node(text: str | None) -> list[ast.stmt]:
    return [] if not text else [ast.Expr(ast.Constant(text))]


def _function(
    name: str,
    args: ast.arguments,
    returns: ast.expr | None,
    body: str,
    docstring: str | None,
    decorators: list[ast.expr] | None = None,
) -> str:
    fn = ast.parse(f"def {name}(): pass").body[0]  # every field of this Python's FunctionDef
    assert isinstance(fn, ast.FunctionDef)
    fn.args = copy.deepcopy(args)
    fn.body = [*_docstring_node(docstring), *ast.parse(body).body]
    fn.decorator_list = decorators or []
    fn.returns = copy.deepcopy(returns)
    return ast.unparse(ast.fix_missing_locations(fn))


class _ClassBuilder:
    """Mirrors one async class; collects the names its copied code uses."""

    def __init__(self, source: _Source, cls: ast.ClassDef, mirrored: set[str], alias: str):
        self.source = source
        self.cls = cls
        self.mirrored = mirrored
        self.alias = alias
        self.used: set[str] = set()
        self.where = f"{source.path}: {cls.name}"

    def fail(self, what: str) -> SystemExit:
        return SystemExit(f"codegen (blocking client), {self.where}: {what}")

    def use(self, *nodes: ast.AST | None) -> None:
        for node in nodes:
            self.used |= _names(node)

    def wrap(self, returns: ast.expr | None, call: str, member: str) -> str:
        """`call`, wrapped in the blocking class its return type names, if any."""
        self.use(returns)
        if returns is None:
            return call
        head = _base_name(returns)
        inner = returns.slice if isinstance(returns, ast.Subscript) else None
        if head in self.mirrored:
            if _names(inner) & self.mirrored:
                raise self.fail(f"{member} returns {ast.unparse(returns)}: nested wrapping")
            return f"{head}(self._portal, {call})"
        if _names(returns) & self.mirrored:
            raise self.fail(
                f"{member} returns {ast.unparse(returns)}: only a mirrored class itself "
                "(not inside another type) can be wrapped"
            )
        return call

    def check_params(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        nodes = _annotations(fn.args)
        self.use(*nodes)
        for default in [*fn.args.defaults, *fn.args.kw_defaults]:
            self.used |= _names(default, annotation=False)
        for node in nodes:
            if node is not None and _names(node) & self.mirrored:
                raise self.fail(f"{fn.name} takes a mirrored class ({ast.unparse(node)})")

    def method(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
        doc = ast.get_docstring(fn, clean=False)
        self.check_params(fn)
        if _is_overload(fn):
            self.use(*fn.decorator_list, fn.returns)
            return _function(fn.name, fn.args, fn.returns, "...", None, fn.decorator_list)
        if fn.decorator_list and not _is_property(fn):
            decorators = ", ".join(ast.unparse(d) for d in fn.decorator_list)
            raise self.fail(f"{fn.name}: unsupported decorator(s) {decorators}")
        if _is_property(fn):
            call = self.wrap(fn.returns, f"self._wrapped.{fn.name}", fn.name)
            return _function(
                fn.name, fn.args, fn.returns, f"return {call}", doc, [ast.Name("property")]
            )
        call = f"self._wrapped.{fn.name}({_forward(fn.args)})"
        if isinstance(fn, ast.AsyncFunctionDef):
            if _is_async_generator(fn):
                raise self.fail(f"{fn.name} is an async generator: not mirrored yet")
            call = f"self._portal.run({call})"
        call = self.wrap(fn.returns, call, fn.name)
        returns_none = fn.returns is not None and ast.unparse(fn.returns) == "None"
        return _function(
            fn.name, fn.args, fn.returns, call if returns_none else f"return {call}", doc
        )

    def attribute(self, node: ast.AnnAssign, doc: str | None) -> str:
        assert isinstance(node.target, ast.Name)
        name = node.target.id
        annotation = node.annotation
        self.use(annotation)
        if _base_name(annotation) == "ClassVar":
            if node.value is None:
                raise self.fail(f"ClassVar {name} has no value")
            return f"{name}: {ast.unparse(annotation)} = {self.alias}.{self.cls.name}.{name}"
        if _names(annotation) & self.mirrored:
            raise self.fail(f"attribute {name} holds a mirrored class")
        args = ast.arguments(
            posonlyargs=[], args=[ast.arg("self")], kwonlyargs=[], kw_defaults=[], defaults=[]
        )
        return _function(
            name, args, annotation, f"return self._wrapped.{name}", doc, [ast.Name("property")]
        )

    def members(self, classes: list[ast.ClassDef]) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        for cls in classes:
            body = cls.body
            for i, node in enumerate(body):
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    name = node.target.id
                    if name.startswith("_") or name in seen:
                        continue
                    seen.add(name)
                    following = body[i + 1] if i + 1 < len(body) else None
                    doc = (
                        following.value.value
                        if isinstance(following, ast.Expr)
                        and isinstance(following.value, ast.Constant)
                        and isinstance(following.value.value, str)
                        else None
                    )
                    out.append(self.attribute(node, doc))
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    name = node.name
                    dunder = name.startswith("__") and name.endswith("__")
                    if name in _SKIPPED_DUNDERS or (name.startswith("_") and not dunder):
                        if name == _LISTENER and name not in seen:
                            seen.add(name)
                            out.append(self.listener(node))
                        continue
                    if name in seen:
                        continue  # overridden by a subclass
                    if _is_overload(node):
                        out.append(self.method(node))  # the implementation follows
                        continue
                    seen.add(name)
                    out.append(self.method(node))
        return out

    def listener(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
        self.check_params(fn)
        self.use(fn.returns)
        call = f"self._wrapped.{fn.name}({_forward(fn.args)})"
        return _function(fn.name, fn.args, fn.returns, f"return {call}", None)


def _class_docstring(cls: ast.ClassDef) -> str:
    return " ".join((ast.get_docstring(cls) or "").split())


def build_blocking_context(root: Path, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The classes of the blocking module, and the imports their code needs."""
    sources: dict[str, _Source] = {}
    mirrored = set(spec)
    classes: list[BlockingClass] = []
    imports: set[str] = set()
    provided: dict[str, str] = {}  # name -> the import statement that provides it
    roots = [name for name, entry in spec.items() if entry.get("root")]
    if len(roots) != 1:
        raise SystemExit(f"client.yaml Blocking: exactly one class must be root, got {roots}")
    for name, entry in spec.items():
        path = str(entry["source"])
        if path not in sources:
            sources[path] = _read_source(root, path)
        source = sources[path]
        if name not in source.classes:
            raise SystemExit(f"client.yaml Blocking: {path} defines no class {name}")
        alias = "_async_" + Path(path).stem
        cls = source.classes[name]
        builder = _ClassBuilder(source, cls, mirrored, alias)
        local, external = _mro(source, cls)
        subscripted = [b for b in external if isinstance(b, ast.Subscript)]
        bases = [b for b in external if not (_base_name(b) == "Generic" and len(subscripted) > 1)]
        bases.sort(key=lambda b: _base_name(b) == "Generic")  # Generic[...] goes last
        builder.use(*bases)
        type_params: list[str] = []
        for b in cls.bases:
            if isinstance(b, ast.Subscript):
                for n in ast.walk(b.slice):
                    if isinstance(n, ast.Name) and n.id not in type_params:
                        type_params.append(n.id)
        blocking = BlockingClass(
            name=name,
            source=path,
            module_alias=alias,
            root=bool(entry.get("root")),
            bases=[ast.unparse(b) for b in bases],
            type_params=type_params,
            docstring=_class_docstring(cls),
            module=source.module,
            members=builder.members(local),
        )
        if blocking.root:
            init = next(
                (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
                None,
            )
            if init is None:
                raise SystemExit(f"client.yaml Blocking: the root class {name} has no __init__")
            builder.check_params(init)
            signature = ast.unparse(init.args)
            blocking.init_args = signature.removeprefix("self, ").removeprefix("self")
            blocking.init_call = _forward(init.args)
        for used in sorted(builder.used - mirrored):
            if hasattr(builtins, used):
                continue
            statement = source.bindings.get(used)
            if statement is None:
                raise SystemExit(f"codegen (blocking client), {path}: where is {used!r} from?")
            if provided.setdefault(used, statement) != statement:
                raise SystemExit(
                    f"codegen (blocking client): {used!r} comes from two places: "
                    f"{provided[used]!r} and {statement!r}; import it from one"
                )
            imports.add(statement)
        imports.add(f"import {source.module} as {alias}")
        classes.append(blocking)
    return {"classes": classes, "imports": sorted(imports), "root": roots[0]}
