"""Every input of the shared sheets (Model, Hardware, Prefill, Decode, Constants) set to an invalid value, one at a
time, and recalculated in LibreOffice and in Gnumeric: a message names the input, and no result that reads it shows
an error value or a number. The invalid values come from the declared rules (dsxl.core.rules), so a new input or
rule is walked without editing this file."""

from dataclasses import fields

import pytest
from openpyxl import load_workbook

from dsxl.data.catalog import ModelArgs, load_catalog, load_refined
from dsxl.inputs.request import constant_range
from dsxl.core.rules import (BATCH, EP_SIZE, GPU_RANGES, GPU_RULES, MODEL_COUNT, MODEL_RANGES, MODEL_RULES,
                               SCENARIO_RANGES, Range)
from dsxl.workbook import build_workbook
from dsxl.workbook.gnumeric import recalc, ssconvert
from dsxl.workbook.libreoffice import convert, soffice
from workbook_helpers import ERROR, name_cell, name_range, recalculated_edits, require_engine

GPU = "H800"  # an article GPU, Predict's and Planner's default: every result reads its catalog row
GENERATION = "hopper"

# Values that break each cross rule with the catalog's other values (each checked against the rule in Python below).
MODEL_BREAKERS = {"n_dense_layers": 70, "n_activated_experts": 300, "dim": 7000, "q_lora_rank": 1000,
                  "kv_lora_rank": 500, "n_limited_groups": 9, "n_routed_experts": 250, "n_csa_layers": 62,
                  "o_groups": ("head_dim", 512)}
GPU_BREAKERS = {"comm_sm": 132}


def invalid_values(rng: Range, i: int) -> object:
    """One value ``rng`` refuses, rotating through the kinds a planner types: blank, text, below, above, a fraction."""
    kinds = [None, "abc"]
    if rng.choices:
        kinds.append(max(rng.choices) + 3)
    else:
        if rng.lo is not None:
            kinds.append(rng.lo if rng.lo_open else rng.lo - 1)
        if rng.hi is not None:
            kinds.append(rng.hi * 10 + 1)
        if rng.integer:
            kinds.append((rng.lo or 0) + 1.5)
    return kinds[i % len(kinds)]


def cases():
    """(id, named edits, table edits, text the message must hold, the groups of results that read the input)."""
    out = []
    model = load_catalog().model(None)
    for i, f in enumerate(fields(ModelArgs)):
        value = invalid_values(MODEL_RANGES.get(f.name, MODEL_COUNT), i)
        out.append((f"{f.name}={value}", {f.name: value}, {}, f.name, "model"))
    for rule in MODEL_RULES:
        name, value = (rule.argument, MODEL_BREAKERS[rule.argument])
        if isinstance(value, tuple):
            name, value = value
        values = {f.name: getattr(model, f.name) for f in fields(model)} | {name: value}
        assert not rule.ok(values), rule.message  # the breaker does break the rule
        out.append((f"rule {rule.argument}: {name}={value}", {name: value}, {}, rule.message, "model"))
    for i, (name, rng) in enumerate(SCENARIO_RANGES.items()):
        value = invalid_values(rng, i)
        out.append((f"{name}={value}", {name: value}, {}, name, "scenario"))
    for i, (name, rng) in enumerate([("batch_size_1", BATCH), ("batch_size_4", BATCH), ("ep_1", EP_SIZE),
                                     ("ep_4", EP_SIZE)]):
        value = invalid_values(rng, i + 2)
        out.append((f"{name}={value}", {name: value}, {}, name, "scenario"))
    out.append(("planner_gpu=H9000", {"planner_gpu": "H9000"}, {}, "planner_gpu", "scenario"))
    out.append(("decode_comm_sm=132", {"decode_comm_sm": 132}, {}, "decode_comm_sm must be less than", "scenario"))
    for i, (name, rng) in enumerate(GPU_RANGES.items()):
        value = invalid_values(rng, i)
        out.append((f"{GPU}.{name}={value}", {}, {("hardware", GPU, name): value}, f"{GPU}.{name}", "hardware"))
    for rule in GPU_RULES:
        edit = {("hardware", GPU, rule.argument): GPU_BREAKERS[rule.argument]}
        out.append((f"rule {rule.argument}", {}, edit, f"{GPU}.{rule.message}", "hardware"))
    out.append(("duplicate name", {}, {("hardware", GPU, "name"): "H20"}, "a name no other row has", "hardware"))
    out.append(("blank name", {}, {("hardware", GPU, "name"): None}, "a name no other row has", "hardware"))
    out.append(("generation", {}, {("hardware", GPU, "generation"): "volta"}, f"{GPU}.generation", "hardware"))
    for i, name in enumerate(load_refined()):
        value = invalid_values(constant_range(name), i)
        out.append((f"{name}={value}", {}, {("refined_constants", name, GENERATION): value}, f"{name} ({GENERATION})",
                    "constants"))
    return out


CASES = cases()
ARTICLE_RESULTS = ("tbl_", "your_gpu")
REFINED_RESULTS = ("predict_results", "predict_breakdown", "plan_results", "start_headline")
READS = {"model": ARTICLE_RESULTS + REFINED_RESULTS + ("tbl_validation",),
         "hardware": ARTICLE_RESULTS + REFINED_RESULTS + ("tbl_validation",),
         "scenario": ARTICLE_RESULTS + ("tbl_validation",),
         "constants": REFINED_RESULTS + ("tbl_validation",)}
NOT_RESULTS = {"tbl_gpu_specs"}  # the article's datasheet table, printed as data


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    return build_workbook(tmp_path_factory.mktemp("inputs") / "fresh.xlsx")


def _formula_cells(path):
    """name -> the (sheet, row, column) of each formula cell in the result ranges, from the uncalculated file."""
    wb = load_workbook(path)
    out = {}
    for name in wb.defined_names:
        if name.startswith(ARTICLE_RESULTS + REFINED_RESULTS + ("tbl_validation",)) and name not in NOT_RESULTS:
            ws, r1, c1, r2, c2 = name_range(wb, name)
            out[name] = [(ws.title, r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)
                         if isinstance(ws.cell(r, c).value, str) and ws.cell(r, c).value.startswith("=")]
    return out


def _refusal_problems(case, wb, formulas):
    """What is wrong with how ``wb`` refuses ``case`` (empty when it names the input and shows no result)."""
    label, _, _, message, group = case
    problems = name_cell(wb, "input_problems").value
    if not (isinstance(problems, str) and message in problems):
        return [(label, "message", problems)]
    found = []
    for name, cells in formulas.items():
        reads = name.startswith(READS[group])
        for sheet, r, c in cells:
            v = wb[sheet].cell(r, c).value
            if isinstance(v, str) and ERROR.match(v) or reads and isinstance(v, (int, float)) and not isinstance(v, bool):
                found.append((label, name, wb[sheet].cell(r, c).coordinate, v))
    return found[:3]


def _walk(fresh, engine, tmp_path):
    formulas = _formula_cells(fresh)
    books = recalculated_edits(engine, fresh, tmp_path, [(names, cells) for _, names, cells, _, _ in CASES],
                               ARTICLE_RESULTS + REFINED_RESULTS + ("tbl_validation", "input_problems"))
    found = [p for case, wb in zip(CASES, books) for p in _refusal_problems(case, wb, formulas)]
    assert found == []


@pytest.mark.slow
def test_every_shared_input_refused_in_libreoffice(fresh, tmp_path):
    require_engine(soffice(), "LibreOffice", module=False)
    _walk(fresh, convert, tmp_path)


@pytest.mark.slow
def test_every_shared_input_refused_in_gnumeric(fresh, tmp_path):
    require_engine(ssconvert(), "Gnumeric", module=False)
    _walk(fresh, recalc, tmp_path)


def test_the_walk_covers_every_declared_input():
    walked = {n for _, names, _, _, _ in CASES for n in names} | {k[1:] for _, _, cells, _, _ in CASES for k in cells}
    assert {f.name for f in fields(ModelArgs)} <= walked
    assert set(SCENARIO_RANGES) <= walked
    assert {(GPU, f) for f in GPU_RANGES} <= walked
    assert {(n, GENERATION) for n in load_refined()} <= walked
