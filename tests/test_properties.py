"""Property tests: random combinator trees over leaf futures, completed in random orders.

A tree is built from leaves with gather / gather_all (with and without
return_exceptions), race, first_success, then (also a raising fn), chain and
recover. Leaves settle with values, errors or cancellations; some outputs are
cancelled along the way.

* Sequentially (one thread, a drawn order), every output must equal a small
  reference model of the semantics, which is deterministic there.
* Concurrently (three threads released by a Barrier), the order is not known,
  so every output is checked against its children's final states (a value or
  error must be one the rule could have produced), and always: every output
  settles, nothing is set twice, no InvalidStateError, nothing only logged.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from _combinator_helpers import WAIT, no_logged_errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import futurekit as fk

__all__ = ["no_logged_errors"]  # fixture, re-exported for pytest

UNARY = ("then", "then_raise", "chain", "recover")
MULTI = ("gather", "gather_re", "gather_all", "gather_all_re", "race", "first_success")

Outcome = tuple[Any, ...]  # ("value", v) | ("error", desc) | ("cancelled",)
CANCELLED: Outcome = ("cancelled",)


class LeafError(Exception):
    def __init__(self, leaf: int) -> None:
        super().__init__(leaf)
        self.leaf = leaf


class UserError(Exception):
    def __init__(self, node: int) -> None:
        super().__init__(node)
        self.node = node


@dataclass
class Tree:
    kinds: list[str]  # per node; "leaf" for leaves
    children: list[list[int]]
    parent: list[int | None] = field(default_factory=list)


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    n_leaves = draw(st.integers(1, 5))
    kinds = ["leaf"] * n_leaves
    children: list[list[int]] = [[] for _ in range(n_leaves)]
    roots = list(range(n_leaves))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(UNARY + MULTI))
        arity = 1 if kind in UNARY else draw(st.integers(1, min(3, len(roots))))
        picked = draw(st.lists(st.sampled_from(roots), min_size=arity, max_size=arity, unique=True))
        for child in picked:
            roots.remove(child)
        kinds.append(kind)
        children.append(picked)
        roots.append(len(kinds) - 1)
    parent: list[int | None] = [None] * len(kinds)
    for node, kids in enumerate(children):
        for kid in kids:
            parent[kid] = node
    return Tree(kinds, children, parent)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Tree, list[tuple[str, int, Outcome]]]:
    tree = draw(trees())
    events: list[tuple[str, int, Outcome]] = []
    for node, kind in enumerate(tree.kinds):
        if kind == "leaf":
            how = draw(st.sampled_from(["value", "value", "error", "cancel"]))
            outcome: Outcome = {
                "value": ("value", node * 10),
                "error": ("error", ("!leaf", node)),
                "cancel": CANCELLED,
            }[how]
            events.append(("leaf", node, outcome))
        elif draw(st.integers(0, 5)) == 0:
            events.append(("cancel", node, CANCELLED))
    order = draw(st.permutations(events))
    return tree, list(order)


# ----------------------------------------------------------------------------- building the real tree


def _then_fn(v: Any) -> Any:
    return ("then", v)


def _build(tree: Tree) -> list[Future[Any]]:
    futs: list[Future[Any]] = []
    for node, kind in enumerate(tree.kinds):
        ins = [futs[c] for c in tree.children[node]]
        out: Future[Any]
        if kind == "leaf":
            out = Future()
        elif kind == "then":
            out = fk.then(ins[0], _then_fn)
        elif kind == "then_raise":

            def boom(_: Any, node: int = node) -> Any:
                raise UserError(node)

            out = fk.then(ins[0], boom)
        elif kind == "chain":
            out = fk.chain(ins[0], lambda v: fk.completed(("chain", v)))
        elif kind == "recover":
            out = fk.recover(ins[0], lambda e: ("recovered",))
        elif kind == "gather":
            out = fk.gather(*ins)
        elif kind == "gather_re":
            out = fk.gather(*ins, return_exceptions=True)
        elif kind == "gather_all":
            out = fk.gather_all(ins)
        elif kind == "gather_all_re":
            out = fk.gather_all(ins, return_exceptions=True)
        elif kind == "race":
            out = fk.race(*ins)
        else:
            out = fk.first_success(*ins)
        futs.append(out)
    return futs


def _norm(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_norm(v) for v in value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, BaseException):
        return _norm_exc(value)
    return value


def _norm_exc(exc: BaseException) -> Any:
    if isinstance(exc, LeafError):
        return ("!leaf", exc.leaf)
    if isinstance(exc, UserError):
        return ("!user", exc.node)
    if isinstance(exc, CancelledError):
        return ("!cancelled",)
    if isinstance(exc, BaseExceptionGroup):
        return ("!group", [_norm_exc(e) for e in exc.exceptions])
    raise AssertionError(f"unexpected exception {exc!r}")


def _describe(fut: Future[Any]) -> Outcome:
    assert fut.done()
    if fut.cancelled():
        return CANCELLED
    exc = fut.exception(timeout=0)
    if exc is None:
        return ("value", _norm(fut.result(timeout=0)))
    return ("error", _norm_exc(exc))


def _apply(futs: list[Future[Any]], event: tuple[str, int, Outcome]) -> None:
    what, node, outcome = event
    fut = futs[node]
    if what == "cancel":
        fut.cancel()
        return
    try:
        if outcome[0] == "value":
            fut.set_result(outcome[1])
        elif outcome[0] == "error":
            fut.set_exception(LeafError(node))
        else:
            fut.cancel()
    except InvalidStateError:
        assert fut.cancelled(), "only cancellation flowing up may settle a leaf first"


# ----------------------------------------------------------------------------- the reference model


class Model:
    """Sequential semantics of the combinators, over a tree (each future has one consumer)."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.state: list[Outcome | None] = [None] * len(tree.kinds)

    def event(self, event: tuple[str, int, Outcome]) -> None:
        what, node, outcome = event
        if what == "cancel" or outcome == CANCELLED:
            self.cancel(node)
        else:
            self.settle(node, outcome)

    def cancel(self, node: int) -> None:
        if self.state[node] is not None:
            return
        self.state[node] = CANCELLED
        for child in self.tree.children[node]:
            self.cancel(child)  # cancelling an output cancels its unfinished inputs
        self.notify(node)

    def settle(self, node: int, outcome: Outcome) -> None:
        if outcome == CANCELLED:
            self.cancel(node)
            return
        if self.state[node] is not None:
            return
        self.state[node] = outcome
        self.notify(node)

    def notify(self, child: int) -> None:
        parent = self.tree.parent[child]
        if parent is None or self.state[parent] is not None:
            return
        kind = self.tree.kinds[parent]
        got = self.state[child]
        assert got is not None
        kids = self.tree.children[parent]
        if got == CANCELLED and kind not in ("gather_re", "gather_all_re", "first_success"):
            self.cancel(parent)
            return
        if kind in ("then", "then_raise", "chain", "recover"):
            if got[0] == "value":
                result = {
                    "then": ("value", ("then", got[1])),
                    "then_raise": ("error", ("!user", parent)),
                    "chain": ("value", ("chain", got[1])),
                    "recover": got,
                }[kind]
            else:
                result = ("value", ("recovered",)) if kind == "recover" else got
            self.settle(parent, result)
        elif kind in ("gather", "gather_all"):
            if got[0] == "error":
                self.settle(parent, got)
                self._cancel_rest(parent)
            elif all(self.state[k] is not None for k in kids):
                values = [self.state[k][1] for k in kids]  # type: ignore[index]
                self.settle(parent, ("value", tuple(values) if kind == "gather" else values))
        elif kind in ("gather_re", "gather_all_re"):
            if all(self.state[k] is not None for k in kids):
                items = [self._as_item(self.state[k]) for k in kids]
                self.settle(parent, ("value", tuple(items) if kind == "gather_re" else items))
        elif kind == "race":
            self.settle(parent, got)
            self._cancel_rest(parent)
        else:  # first_success
            if got[0] == "value":
                self.settle(parent, got)
                self._cancel_rest(parent)
            elif all(self.state[k] is not None for k in kids):
                errors = [self._as_item(self.state[k]) for k in kids]
                self.settle(parent, ("error", ("!group", errors)))

    @staticmethod
    def _as_item(outcome: Outcome | None) -> Any:
        assert outcome is not None
        if outcome == CANCELLED:
            return ("!cancelled",)
        return outcome[1]

    def _cancel_rest(self, parent: int) -> None:
        for kid in self.tree.children[parent]:
            self.cancel(kid)


# ----------------------------------------------------------------------------- local consistency (any order)


def _consistent(tree: Tree, outcomes: list[Outcome], node: int) -> bool:
    kind = tree.kinds[node]
    got = outcomes[node]
    if kind == "leaf" or got == CANCELLED:
        return True
    kids = [outcomes[k] for k in tree.children[node]]
    item = Model._as_item
    if kind in ("then", "chain"):
        child = kids[0]
        return got == (("value", (kind, child[1])) if child[0] == "value" else child)
    if kind == "then_raise":
        return got == (("error", ("!user", node)) if kids[0][0] == "value" else kids[0])
    if kind == "recover":
        return got == (("value", ("recovered",)) if kids[0][0] == "error" else kids[0])
    if kind in ("gather", "gather_all"):
        if got[0] == "error":
            return got in kids
        values = [k[1] if k[0] == "value" else object() for k in kids]
        return got == ("value", tuple(values) if kind == "gather" else values)
    if kind in ("gather_re", "gather_all_re"):
        items = [item(k) for k in kids]
        return got == ("value", tuple(items) if kind == "gather_re" else items)
    if kind == "race":
        return got in kids
    if got[0] == "value":  # first_success
        return got in kids
    return all(k[0] != "value" for k in kids) and got == ("error", ("!group", [item(k) for k in kids]))


# ----------------------------------------------------------------------------- the properties


@pytest.mark.usefixtures("no_logged_errors")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_sequential_trees_match_the_model(scenario: tuple[Tree, list[tuple[str, int, Outcome]]]) -> None:
    tree, events = scenario
    futs = _build(tree)
    model = Model(tree)
    for event in events:
        _apply(futs, event)
        model.event(event)
        for node, fut in enumerate(futs):
            expected = model.state[node]
            if expected is None:
                assert not fut.done(), (node, tree.kinds[node], _describe(fut))
            else:
                assert fut.done(), (node, tree.kinds[node], expected)
                assert _describe(fut) == expected, (node, tree.kinds[node])


@pytest.mark.usefixtures("no_logged_errors")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenarios(), st.integers(1, 3))
def test_concurrent_trees_settle_consistently(
    scenario: tuple[Tree, list[tuple[str, int, Outcome]]], n_threads: int
) -> None:
    tree, events = scenario
    futs = _build(tree)
    barrier = threading.Barrier(n_threads, timeout=WAIT)

    def worker(mine: list[tuple[str, int, Outcome]]) -> None:
        barrier.wait()
        for event in mine:
            _apply(futs, event)

    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        tasks = [pool.submit(worker, events[i::n_threads]) for i in range(n_threads)]
        for task in tasks:
            task.result(timeout=WAIT)
    # Every leaf is settled by now (a value, an error, or a cancellation), so every output must be.
    outcomes: list[Outcome] = []
    for node, fut in enumerate(futs):
        assert fut.done(), (node, tree.kinds[node])
        outcomes.append(_describe(fut))
    for node in range(len(futs)):
        assert _consistent(tree, outcomes, node), (node, tree.kinds[node], outcomes)
