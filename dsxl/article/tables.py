"""The article's tables as pandas DataFrames, computed from the model for any inputs.

>>> from dsxl.article.tables import compute_tables
>>> compute_tables()["decode_totals"].loc["TPOT"]            # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from dsxl.data.catalog import GPU, Catalog, ModelArgs, Scenario, load_catalog, network_variant_gpu
from dsxl.inputs.article_request import WhatIf
from dsxl.article.layout import Cat, FilteredTable, Plan, Q, Table, Text, article_tables, build_plan
from dsxl.chains.scope import Input, scope_env
from dsxl.article.api import gpu_fields, model_env
from dsxl.chains.step import run
from dsxl.core.rules import refuse


@dataclass
class Evaluation:
    """Every scope of the plan evaluated with numbers."""

    plan: Plan
    scenario: Scenario
    model: ModelArgs
    gpus: dict[str, GPU]
    values: dict[tuple, dict[str, Any]]

    def resolve(self, cell: Any) -> Any:
        if isinstance(cell, Q):
            kind = cell.scope[0]
            if kind == "gpu":
                gpu = self.gpus[cell.scope[1]]
                return gpu.name if cell.name == "gpu_name" else getattr(gpu, cell.name)
            if kind == "datasheet":
                return self.plan.catalog.datasheets[cell.scope[1]][cell.name]
            return _plain(self.values[cell.scope][cell.name])
        if isinstance(cell, Cat):
            return "".join(_label(self.resolve(p)) for p in cell.parts)
        if isinstance(cell, Text):
            return f"{self.resolve(cell.q) / cell.scale:.{cell.decimals}f}{cell.suffix}"
        return cell


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    return x


def _label(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def _gpus_for(catalog: Catalog, scenario: Scenario, hardware: dict[str, dict[str, Any]]) -> dict[str, GPU]:
    """Every catalog GPU as the article models it; a field the user sets replaces the article's own figure."""
    gpus = {}
    for name, gpu in catalog.gpus.items():
        changes = hardware.get(name, {})
        gpus[name] = catalog.article_view(replace(gpu, **changes), scenario, keep=tuple(changes))
    t = catalog.article_tables
    for base in set(t["prefill_network_gpus"]) | set(t["decode_network_gpus"]):
        for v in catalog.network_variants:
            variant = network_variant_gpu(gpus[base], v, scenario)
            gpus[variant.name] = variant
    return gpus


def evaluate(whatif: WhatIf | None = None, catalog: Catalog | None = None) -> Evaluation:
    """Evaluate every quantity behind the article's tables, with optional what-if changes."""
    whatif = whatif or WhatIf()
    catalog = catalog or load_catalog()
    scenario = replace(catalog.scenario, **whatif.scenario)
    model = replace(catalog.model(whatif.preset), **whatif.model)
    if whatif.gpus:
        catalog = replace(catalog, article_tables={**catalog.article_tables, **{
            k: tuple(catalog.gpu(g).name for g in whatif.gpus) for k in ("prefill_gpus", "decode_gpus",
                                                                          "decode_detail_gpus")}})
    for tp in catalog.article_tables["prefill_tps"]:
        if scenario.gpu_per_node % tp:
            raise ValueError(f"gpu_per_node must be a multiple of the prefill TP degrees "
                             f"({', '.join(map(str, catalog.article_tables['prefill_tps']))}); got {scenario.gpu_per_node}")
    if scenario.dispatch_node > scenario.num_node:
        raise ValueError(f"dispatch_node must be at most num_node ({scenario.num_node}); got {scenario.dispatch_node}")
    gpus = _gpus_for(catalog, scenario, whatif.hardware)
    plan = build_plan(catalog, len(scenario.batch_sizes))
    base = model_env(model, scenario)
    values: dict[tuple, dict[str, Any]] = {}
    for key, scope in plan.scopes.items():
        env = scope_env(scope, base, values, lambda g: gpu_fields(gpus[g]))
        for name, source in scope.params:
            env[name] = _input(source, scenario, catalog) if isinstance(source, Input) else source
        values[key] = run(list(scope.steps), env)
    return Evaluation(plan, scenario, model, gpus, values)


def _input(source: Input, scenario: Scenario, catalog: Catalog) -> Any:
    if source.name == "batch_sizes":
        return scenario.batch_sizes[source.index]
    if source.name == "ep":
        return getattr(catalog.ep_strategies[source.index], source.name)
    raise KeyError(source.name)


def render(table: Table | FilteredTable, ev: Evaluation) -> pd.DataFrame:
    """One article table as a DataFrame laid out as printed (duplicate labels allowed)."""
    if isinstance(table, Table):
        columns = [_label(ev.resolve(c)) for c in table.columns]
        labels = [_label(ev.resolve(lab)) for lab, _ in table.rows]
        data = [[ev.resolve(c) for c in cells] for _, cells in table.rows]
    else:
        kept = [k for k in table.sources if bool(ev.values[k][table.keep])]
        kept_labels = [_label(ev.values[k][table.label]) for k in kept]
        if table.by_column:
            columns, labels = kept_labels, [h for h, _ in table.fields]
            data = [[_plain(ev.values[k][q]) for k in kept] for _, q in table.fields]
        else:
            columns, labels = [h for h, _ in table.fields], kept_labels
            data = [[_plain(ev.values[k][q]) for _, q in table.fields] for k in kept]
    df = pd.DataFrame(data, index=pd.Index(labels, name=table.index), columns=columns, dtype=object)
    note = table.note
    if table.unit == "sequences" and any(v == 0 for row in data for v in row if not isinstance(v, str)):
        note = (note + " " if note else "") + "0 = does not fit: the weights alone exceed the usable HBM."
    df.attrs.update(id=table.id, title=table.title, section=table.section, unit=table.unit,
                    decimals=table.decimals, note=note)
    return df


def table_specs(n_batches: int = 4, catalog: Catalog | None = None) -> list[Table | FilteredTable]:
    return article_tables(build_plan(catalog or load_catalog(), n_batches))


def compute_tables(whatif: WhatIf | None = None, ids: list[str] | None = None,
                   catalog: Catalog | None = None) -> dict[str, pd.DataFrame]:
    """Every article table (or those in ``ids``) by id, in the article's order."""
    ev = evaluate(whatif, catalog)
    specs = article_tables(ev.plan)
    known = [t.id for t in specs]
    for i in ids or []:
        if i not in known:
            refuse("table id", i, known)
    return {t.id: render(t, ev) for t in specs if not ids or t.id in ids}


def table_ids() -> list[str]:
    return [t.id for t in table_specs()]


