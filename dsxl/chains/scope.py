"""A chain's instances: a *scope* runs a chain's steps once with its own parameters (the model once, a GPU per
phase, a candidate of the planner's grid, a published measurement), seeing its parents' quantities and its GPU's
fields. Python fills a scope with numbers, the workbook builder with cell references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Input:
    """A scenario or catalog input; ``index`` selects one element of a list input (batch_sizes, ep_strategies)."""

    name: str
    index: int | None = None


class Key(NamedTuple):
    """A scope's identity with named parts (unused parts stay None)."""

    kind: str
    gpu: str | None = None
    tp: int | None = None
    index: int | None = None  # batch-size, EP-strategy or candidate index
    absorb: bool | None = None
    kv_fp16: bool | None = None
    name: str | None = None  # e.g. a measurement id


@dataclass(frozen=True)
class Scope:
    kind: str
    key: Key
    steps: tuple
    parents: tuple = ()
    params: tuple = ()  # (name, constant or Input)
    gpu: str | None = None
    title: str = ""


MODEL_KEY = Key("model")


def scope_env(scope: Scope, inputs: dict[str, Any], done: dict[Key, dict[str, Any]],
              gpu_values: Any) -> dict[str, Any]:
    """What a scope's steps see: the inputs, its parents' quantities and its GPU's fields. Python passes numbers,
    the workbook builder cell references: the one rule both interpreters of a plan follow."""
    env = dict(inputs)
    for parent in scope.parents:
        env.update(done[parent])
    if scope.gpu is not None:
        env.update(gpu_values(scope.gpu))
    return env
