"""A second engine: Gnumeric (ssconvert --recalc) must compute every table the way Python and LibreOffice do."""

import math

import pytest
from openpyxl import load_workbook

from dsxl.refined.predict import predict
from dsxl.article.tables import compute_tables
from dsxl.refined.validation import validate
from dsxl.workbook import build_workbook
from dsxl.workbook.gnumeric import recalc, ssconvert
from test_workbook import EDITS
from test_workbook_refined import DEPLOY_EDIT
from workbook_helpers import apply_edits, assert_tables_equal, error_cells, name_range, require_engine, whatif_copies

require_engine(ssconvert(), "Gnumeric")
pytestmark = pytest.mark.slow  # recalculates in a spreadsheet engine: pytest -m "not slow" leaves it out


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    paths = whatif_copies(build_workbook(src / "fresh.xlsx"), src, EDITS)
    paths.append(apply_edits(paths[0], src / "deploy.xlsx", DEPLOY_EDIT))
    outs = recalc(paths, tmp_path_factory.mktemp("gnumeric"))
    return {p.stem: load_workbook(p, data_only=True) for p in outs}


@pytest.mark.parametrize("book", ["fresh", *EDITS])
def test_every_table_equals_python_in_gnumeric(books, book):
    assert_tables_equal(books[book], compute_tables(EDITS.get(book)))
    assert error_cells(books[book]) == []


def test_validation_and_planner_in_gnumeric(books):
    ws, r1, c1, r2, c2 = name_range(books["fresh"], "tbl_validation")
    got = {ws.cell(r, c1).value: ws.cell(r, c1 + 2).value for r in range(r1 + 1, r2 + 1)}
    rows = validate()
    for row in rows:
        assert math.isclose(got[row["id"]], row["refined"], rel_tol=1e-9), row["id"]
    assert {"C3", "C4", "C5", "C6"} <= {r["id"] for r in rows}  # Blackwell, TRT-LLM, vLLM, AMD aggregated too
    ws, r1, c1, r2, c2 = name_range(books["fresh"], "plan_results")
    assert ws.cell(r1 + 1, c1 + 1).value is True


def test_planner_queue_and_costing_in_gnumeric(tmp_path):
    from test_workbook_refined import _planner_queue_walk
    _planner_queue_walk(recalc, tmp_path)


def test_predict_sheet_with_engine_moe_tp_and_band_in_gnumeric(books):
    """One sequence on 8 B200 (attention TP8, MoE EP2 x TP4, TensorRT-LLM), and four requests in flight aggregated:
    the same numbers as Python."""
    from test_workbook_refined import _python
    ws, r1, c1, r2, c2 = name_range(books["deploy"], "predict_results")
    res = {ws.cell(r, c1).value: ws.cell(r, c1 + 1).value for r in range(r1 + 1, r2 + 1)}
    d, _, a = _python(DEPLOY_EDIT)
    assert math.isclose(res["Decode tokens/s per user"], d["tokens_per_s_per_user"], rel_tol=1e-9)
    assert math.isclose(res["Decode expected error (band)"], d["accuracy"]["band"], rel_tol=1e-9)
    assert math.isclose(res["Aggregated output tokens/s per GPU"], a["output_tokens_per_s_per_gpu"], rel_tol=1e-9)
    assert math.isclose(res["Aggregated TTFT"], a["ttft_ms"], rel_tol=1e-9)
    assert math.isclose(res["Aggregated expected error (band)"], a["accuracy"]["band"], rel_tol=1e-9)
    assert error_cells(books["deploy"]) == []


def test_a_v4_predict_sheet_in_gnumeric(tmp_path):
    from test_workbook_refined import V4_EDIT
    src = build_workbook(tmp_path / "v4.xlsx", model="deepseek_v4_pro")
    wb = load_workbook(recalc([apply_edits(src, tmp_path / "v4e.xlsx", V4_EDIT)], tmp_path / "g")[0], data_only=True)
    ws, r1, c1, r2, c2 = name_range(wb, "predict_results")
    res = {ws.cell(r, c1).value: ws.cell(r, c1 + 1).value for r in range(r1 + 1, r2 + 1)}
    d = predict("decode", "H200", "deepseek_v4_pro", ep=8, attn_tp=8, batch=16, kv_len=131072)
    assert math.isclose(res["Decode TPOT"], d["tpot_ms"], rel_tol=1e-9)
    assert res["Max batch per attention rank"] == d["max_batch"]
    assert error_cells(wb) == []


def test_checks_pass_untouched_in_gnumeric(books):
    """Gnumeric stores a typed literal such as 0.563 a last bit apart: the checks compare within a tolerance."""
    wb = books["fresh"]
    passing, total = (name_range(wb, n) for n in ("checks_passing", "checks_total"))
    p = passing[0].cell(passing[1], passing[2]).value
    t = total[0].cell(total[1], total[2]).value
    assert p == t and t > 800


def test_invalid_inputs_show_a_message_and_no_number_in_gnumeric(tmp_path):
    from test_workbook_refined import _assert_refuses, _bad_books
    for name, value, wb in _bad_books(tmp_path, recalc):
        _assert_refuses(name, value, wb)
