"""The docs contract: every public callable says what it does, shows it, and says what happens in time.

Walks ``futurekit.__all__`` and ``futurekit.testing.__all__``, and every public
method of every public class (methods inherited unchanged from the stdlib, or
from ``typing``, are the stdlib's business and are skipped, as are dunder
methods). Each callable needs a Google-style docstring with an ``Example:``
section holding a doctest and, as its last section, a ``Concurrency:`` section
saying what happens in time, with exactly the keys Blocking, Callbacks, Thread
safety, Cancellation, in that order (the house docstring style; docs/semantics.md
shows the section and states the library-wide rules once). Exception classes
need the docstring and the Example but no ``Concurrency:`` section (they are
plain data), and properties need only a docstring; a ``Concurrency:`` section
that is there anyway is checked all the same. Members of a ``Protocol`` are
declarations, documented by the protocol's own docstring.

It also checks the public face: ``__all__`` is sorted, has no duplicates and
equals the public names bound in ``futurekit/__init__.py``; every exported
class and function reports the public module as its ``__module__``; no builtin
is shadowed; and every Example actually runs as a doctest, here if
``pytest --doctest-modules`` would not collect it (methods of classes whose
``__module__`` was rewritten to ``futurekit`` are invisible to doctest's
finder).
"""

from __future__ import annotations

import ast
import builtins
import doctest
import importlib
import inspect
import io
import pkgutil
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import futurekit
import futurekit.testing

CONCURRENCY_KEYS = ("Blocking", "Callbacks", "Thread safety", "Cancellation")

# Google-style section headers (napoleon's list, plus ours). Only these start a
# section, so a prose line ending in a colon ("For example:") does not.
SECTION_NAMES = frozenset(
    {
        "Args",
        "Arguments",
        "Attention",
        "Attributes",
        "Caution",
        "Concurrency",
        "Danger",
        "Error",
        "Example",
        "Examples",
        "Hint",
        "Important",
        "Keyword Args",
        "Keyword Arguments",
        "Methods",
        "Note",
        "Notes",
        "Other Parameters",
        "Parameters",
        "Raises",
        "References",
        "Return",
        "Returns",
        "See Also",
        "Tip",
        "Todo",
        "Warning",
        "Warnings",
        "Warns",
        "Yield",
        "Yields",
    }
)
_HEADER = re.compile(r"^(?P<name>[A-Z][A-Za-z ]*):\s*$")
_KEY = re.compile(r"^(?P<key>[A-Z][A-Za-z ]*):(?P<text>.*)$")


def _optional_modules() -> tuple[tuple[types.ModuleType, str], ...]:
    """Public modules of optional extras, where the extra is installed (futurekit.dask needs dask)."""
    try:
        import futurekit.dask
    except ImportError:
        return ()
    return ((futurekit.dask, "futurekit.dask"),)


PUBLIC_MODULES: tuple[tuple[types.ModuleType, str], ...] = (
    (futurekit, "futurekit"),
    (futurekit.testing, "futurekit.testing"),
    *_optional_modules(),
)


# --------------------------------------------------------------------------- docstring checks


def _sections(doc: str) -> list[tuple[str, list[str]]]:
    """Split a cleaned docstring into (header, body lines); the summary is header ''."""
    result: list[tuple[str, list[str]]] = [("", [])]
    for line in inspect.cleandoc(doc).splitlines():
        match = _HEADER.match(line)
        if match and match["name"] in SECTION_NAMES:
            result.append((match["name"], []))
        else:
            result[-1][1].append(line)
    return result


def docstring_problems(doc: str | None, *, example: bool = True, concurrency: bool = True) -> list[str]:
    """Everything wrong with ``doc`` under the contract; empty when it complies.

    ``example`` and ``concurrency`` say whether those sections are required; a
    Concurrency: section that is present is checked either way.
    """
    if not doc or not doc.strip():
        return ["missing docstring"]
    problems: list[str] = []
    sections = _sections(doc)
    names = [name for name, _ in sections[1:]]
    for name in sorted(set(names)):
        if names.count(name) > 1:
            problems.append(f"section {name}: appears {names.count(name)} times")

    examples = [body for name, body in sections if name in ("Example", "Examples")]
    if example and not examples:
        problems.append("missing Example: section")
    elif examples and not any(line.lstrip().startswith(">>>") for body in examples for line in body):
        problems.append("Example: section has no doctest (>>>)")

    bodies = [body for name, body in sections if name == "Concurrency"]
    if not bodies:
        if concurrency:
            problems.append("missing Concurrency: section")
        return problems
    if names[-1] != "Concurrency":
        problems.append(f"Concurrency: must be the last section (found {names[-1]}: after it)")
    problems.extend(_concurrency_problems(bodies[0]))
    return problems


def _concurrency_problems(body: list[str]) -> list[str]:
    lines = [line for line in body if line.strip()]
    if not lines:
        return ["Concurrency: section is empty"]
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    if indent == 0:
        return ["Concurrency: section body is not indented (or text follows the section)"]
    keys: list[str] = []
    texts: dict[str, str] = {}
    problems: list[str] = []
    for line in lines:
        depth = len(line) - len(line.lstrip())
        if depth == indent:
            match = _KEY.match(line.strip())
            if match is None:
                problems.append(f"Concurrency: line is not 'Key: text': {line.strip()!r}")
                continue
            keys.append(match["key"])
            texts[match["key"]] = match["text"].strip()
        elif keys:  # a continuation line of the current key
            texts[keys[-1]] += " " + line.strip()
    missing = [key for key in CONCURRENCY_KEYS if key not in keys]
    extra = [key for key in keys if key not in CONCURRENCY_KEYS]
    if missing:
        problems.append(f"Concurrency: missing key(s) {', '.join(k + ':' for k in missing)}")
    if extra:
        problems.append(f"Concurrency: unknown key(s) {', '.join(k + ':' for k in extra)}")
    if not missing and not extra and tuple(keys) != CONCURRENCY_KEYS:
        problems.append(
            f"Concurrency: keys must be in the order {', '.join(CONCURRENCY_KEYS)} (found {', '.join(keys)})"
        )
    problems.extend(
        f"Concurrency: key {key}: has no text" for key in CONCURRENCY_KEYS if key in texts and not texts[key].strip()
    )
    return problems


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Item:
    """One documented public object."""

    qualname: str  # as the user spells it, e.g. "futurekit.Executor.submit"
    obj: object  # what carries the docstring (the function, class, or property)
    example: bool  # needs an Example: section (not properties)
    concurrency: bool  # needs a Concurrency: section (not properties, not exception classes)
    globs: dict[str, Any]  # namespace the doctest runs in

    def __str__(self) -> str:
        return self.qualname


def _globals_of(obj: object) -> dict[str, Any]:
    func = inspect.unwrap(obj) if callable(obj) else obj
    if isinstance(func, property) and func.fget is not None:
        func = func.fget
    if isinstance(func, (staticmethod, classmethod)):
        func = func.__func__
    globs = getattr(func, "__globals__", None)
    if isinstance(globs, dict):
        return globs
    module = importlib.import_module(getattr(obj, "__module__", None) or "futurekit")
    return vars(module)


def _is_futurekit_class(klass: type) -> bool:
    return klass.__module__ == "futurekit" or klass.__module__.startswith("futurekit.")


def _is_exception(obj: object) -> bool:
    return inspect.isclass(obj) and issubclass(obj, BaseException)


def _is_protocol(klass: type) -> bool:
    return bool(getattr(klass, "_is_protocol", False))


def _class_members(cls: type, prefix: str) -> Iterator[Item]:
    """Public methods and properties of ``cls`` that futurekit defines or overrides."""
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        owner = next((klass for klass in cls.__mro__ if name in vars(klass)), None)
        if owner is None or not _is_futurekit_class(owner) or _is_protocol(owner):
            continue  # inherited unchanged from the stdlib/typing, or a protocol declaration
        raw = vars(owner)[name]
        qualname = f"{prefix}.{name}"
        if isinstance(raw, property):
            yield Item(qualname, raw, example=False, concurrency=False, globs=_globals_of(raw))
        elif isinstance(raw, (staticmethod, classmethod)):
            yield Item(qualname, raw.__func__, example=True, concurrency=True, globs=_globals_of(raw.__func__))
        elif inspect.isfunction(raw) or inspect.isclass(raw) or callable(raw):
            yield Item(qualname, raw, example=True, concurrency=not _is_exception(raw), globs=_globals_of(raw))
        # Plain data attributes carry no docstring of their own.


def public_items() -> list[Item]:
    """Every public object of futurekit and futurekit.testing, and their public methods."""
    items: list[Item] = []
    seen: set[str] = set()
    for module, public_name in PUBLIC_MODULES:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if obj is None or isinstance(obj, types.ModuleType):
                continue
            qualname = f"{public_name}.{name}"
            if qualname in seen:
                continue
            seen.add(qualname)
            if inspect.isclass(obj):
                concurrency = not _is_exception(obj)
                items.append(Item(qualname, obj, example=True, concurrency=concurrency, globs=_globals_of(obj)))
                items.extend(_class_members(obj, qualname))
            elif callable(obj):
                items.append(Item(qualname, obj, example=True, concurrency=True, globs=_globals_of(obj)))
    return items


ITEMS = public_items()


@pytest.mark.parametrize("item", ITEMS, ids=str)
def test_docstring_contract(item: Item) -> None:
    # __doc__, not inspect.getdoc: an override must not borrow its base's docstring.
    problems = docstring_problems(item.obj.__doc__, example=item.example, concurrency=item.concurrency)
    assert not problems, f"{item.qualname}: " + "; ".join(problems)


# --------------------------------------------------------------------------- examples run


def _collected_docstrings() -> set[str]:
    """Docstrings whose examples ``pytest --doctest-modules futurekit`` collects."""
    finder = doctest.DocTestFinder()
    found: set[str] = set()
    package_dir = Path(futurekit.__file__).parent
    names = ["futurekit"] + [
        info.name
        for info in pkgutil.walk_packages([str(package_dir)], "futurekit.")
        if not info.name.endswith(".__main__")  # pytest skips __main__.py
    ]
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra that is not installed; pytest reports it
            continue
        for test in finder.find(module, name):
            if test.examples and test.docstring:
                found.add(test.docstring)
    return found


@pytest.fixture(scope="module")
def collected_docstrings() -> set[str]:
    return _collected_docstrings()


@pytest.mark.parametrize("item", ITEMS, ids=str)
def test_example_runs(item: Item, collected_docstrings: set[str]) -> None:
    doc = item.obj.__doc__
    if not doc or ">>>" not in doc:
        return  # nothing to run; test_docstring_contract reports the missing example
    if doc in collected_docstrings:
        return  # pytest --doctest-modules runs it
    test = doctest.DocTestParser().get_doctest(doc, dict(item.globs), item.qualname, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    out = io.StringIO()
    result = runner.run(test, out=out.write, clear_globs=True)
    assert result.failed == 0, f"{item.qualname}: example fails:\n{out.getvalue()}"


# --------------------------------------------------------------------------- the public face


def _public_names_bound_in(path: Path) -> list[str]:
    """Public names a module's top level binds, by reading its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            names.extend(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.extend(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if not name.startswith("_")]


@pytest.mark.parametrize(("module", "public_name"), PUBLIC_MODULES, ids=[name for _, name in PUBLIC_MODULES])
def test_all_is_sorted_unique_and_exists(module: types.ModuleType, public_name: str) -> None:
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{public_name}.__all__ is not sorted"
    assert len(exported) == len(set(exported)), f"{public_name}.__all__ has duplicates"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{public_name}.__all__ names missing attributes: {missing}"


def test_init_all_equals_public_names_defined() -> None:
    bound = set(_public_names_bound_in(Path(futurekit.__file__)))
    exported = set(futurekit.__all__)
    assert not bound - exported, f"public in futurekit/__init__.py but not in __all__: {sorted(bound - exported)}"
    assert not exported - bound, f"in __all__ but not defined in futurekit/__init__.py: {sorted(exported - bound)}"


def test_testing_all_equals_public_definitions() -> None:
    defined = {
        name
        for name, obj in vars(futurekit.testing).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == "futurekit.testing"
    }
    exported = set(futurekit.testing.__all__)
    assert defined == exported, f"defined publicly {sorted(defined)} vs exported {sorted(exported)}"


@pytest.mark.parametrize(("module", "public_name"), PUBLIC_MODULES, ids=[name for _, name in PUBLIC_MODULES])
def test_public_objects_report_the_public_module(module: types.ModuleType, public_name: str) -> None:
    wrong = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType):
            continue
        if inspect.isclass(obj) or callable(obj):
            reported = getattr(obj, "__module__", None)
            if reported != public_name:
                wrong[name] = reported
    assert not wrong, f"__module__ should be {public_name!r}: {wrong}"


@pytest.mark.parametrize(("module", "public_name"), PUBLIC_MODULES, ids=[name for _, name in PUBLIC_MODULES])
def test_no_builtin_is_shadowed(module: types.ModuleType, public_name: str) -> None:
    shadowed = sorted(set(module.__all__) & set(dir(builtins)))
    assert not shadowed, f"{public_name}.__all__ shadows builtins: {shadowed}"


def test_walk_covers_executor_methods_and_testing_helpers() -> None:
    names = {item.qualname for item in ITEMS}
    assert "futurekit.testing.ShuffledExecutor.run_all" in names
    assert "futurekit.testing.InlineExecutor.submit" in names
    assert "futurekit.RemoteError" in names
    assert "futurekit.WorkerCrashedError.signal_name" in names  # a property: docstring only
    by_name = {item.qualname: item for item in ITEMS}
    for exc in ("RemoteError", "SerializationError", "WorkerCrashedError"):  # exception classes: no Concurrency:
        assert by_name[f"futurekit.{exc}"].example
        assert not by_name[f"futurekit.{exc}"].concurrency
    assert by_name["futurekit.Executor"].concurrency
    # Inherited unchanged from BaseException / the Protocol machinery: not ours to document.
    assert "futurekit.RemoteError.with_traceback" not in names
    assert "futurekit.FutureLike.result" not in names
    # Executor.map/submit are checked if and only if futurekit overrides them.
    for method in ("submit", "map", "shutdown"):
        overridden = any(method in vars(k) for k in futurekit.Executor.__mro__ if _is_futurekit_class(k))
        assert (f"futurekit.Executor.{method}" in names) == overridden


# --------------------------------------------------------------------------- the checker itself


GOOD = """Do a thing.

    Args:
        x: The thing.

    Example:
        >>> 1 + 1
        2

    Concurrency:
        Blocking: Never blocks;
            returns at once.
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable.
    """


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (GOOD, []),
        (None, ["missing docstring"]),
        ("   ", ["missing docstring"]),
        (GOOD.replace("    Example:\n", "    For example:\n"), ["missing Example: section"]),
        (GOOD.replace(">>> 1 + 1", "1 + 1"), ["Example: section has no doctest (>>>)"]),
        (GOOD.replace("Concurrency:", "Threads:"), ["missing Concurrency: section"]),
        (GOOD.replace("        Callbacks: None.\n", ""), ["Concurrency: missing key(s) Callbacks:"]),
        (
            GOOD.replace("Thread safety:", "Threadsafety:"),
            ["Concurrency: missing key(s) Thread safety:", "Concurrency: unknown key(s) Threadsafety:"],
        ),
        (
            GOOD.replace("        Callbacks: None.\n", "").replace(
                "Cancellation: Not applicable.", "Cancellation: No.\n        Callbacks: None."
            ),
            [
                "Concurrency: keys must be in the order Blocking, Callbacks, Thread safety, Cancellation"
                " (found Blocking, Thread safety, Cancellation, Callbacks)"
            ],
        ),
        (GOOD.replace("Callbacks: None.", "Callbacks:"), ["Concurrency: key Callbacks: has no text"]),
        (GOOD + "\n    Note:\n        Late.\n", ["Concurrency: must be the last section (found Note: after it)"]),
    ],
    ids=lambda value: "" if not isinstance(value, str) or len(value) > 40 else value,
)
def test_checker_flags_each_violation(doc: str | None, expected: list[str]) -> None:
    assert docstring_problems(doc) == expected


def test_checker_property_needs_only_a_docstring() -> None:
    assert docstring_problems("Name of the signal.", example=False, concurrency=False) == []
    assert docstring_problems(None, example=False, concurrency=False) == ["missing docstring"]


def test_checker_exception_class_needs_no_concurrency_section() -> None:
    without = GOOD[: GOOD.index("    Concurrency:")]
    assert docstring_problems(without, concurrency=False) == []
    assert docstring_problems(without) == ["missing Concurrency: section"]
    assert docstring_problems(without.replace(">>> 1 + 1", "1 + 1"), concurrency=False) == [
        "Example: section has no doctest (>>>)"
    ]


def test_checker_optional_concurrency_section_is_still_checked() -> None:
    broken = GOOD.replace("        Callbacks: None.\n", "")
    expected = ["Concurrency: missing key(s) Callbacks:"]
    assert docstring_problems(broken, concurrency=False) == expected
    prop = "Name of the signal.\n\n" + broken[broken.index("    Concurrency:") :]
    assert docstring_problems(prop, example=False, concurrency=False) == expected
    assert docstring_problems(GOOD, example=False, concurrency=False) == []


def test_checker_continuation_lines_belong_to_their_key() -> None:
    doc = GOOD.replace("Callbacks: None.", "Callbacks:\n            fn runs in the calling thread.")
    assert docstring_problems(doc) == []


def test_checker_on_a_class_walk() -> None:
    class Base:
        def inherited(self) -> None:
            """Documented in the base."""

    Base.__module__ = "futurekit._fake"

    class Child(Base, Exception):
        def method(self) -> None:
            pass

        @property
        def prop(self) -> int:
            return 1

    Child.__module__ = "futurekit"
    names = {item.qualname: item for item in _class_members(Child, "futurekit.Child")}
    assert set(names) == {"futurekit.Child.inherited", "futurekit.Child.method", "futurekit.Child.prop"}
    prop = names["futurekit.Child.prop"]
    assert not prop.example
    assert not prop.concurrency
    assert names["futurekit.Child.method"].concurrency
    assert docstring_problems(names["futurekit.Child.method"].obj.__doc__) == ["missing docstring"]
