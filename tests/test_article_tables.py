"""The package reproduces every cell the article prints (tables.json), through DataFrames and the CLI."""

import json

import pytest

from dsxl.cli import main
from dsxl.article.figures import compute_figures
from dsxl.article.tables import compute_tables
from printed import KNOWN_TYPOS, printed_equal, text_equal


def _check_table(spec, df_columns, df_labels, cell, decimals):
    assert df_columns == spec["columns"], spec["id"]
    assert df_labels == [r["label"] for r in spec["rows"]], spec["id"]
    count = 0
    for i, row in enumerate(spec["rows"]):
        for j, printed in enumerate(row["values"]):
            got = cell(i, j)
            known = KNOWN_TYPOS.get((spec["id"], row["label"], j))
            if known is not None:
                assert got == known
            elif isinstance(printed, str):
                assert isinstance(got, str) and text_equal(got, printed), (spec["id"], row["label"], j, got, printed)
            else:
                assert printed_equal(got, printed, decimals), (spec["id"], row["label"], j, got, printed)
            count += 1
    return count


def test_every_table_cell_matches_the_article(article):
    tables = compute_tables()
    assert list(tables) == [t["id"] for t in article["tables"]]
    cells = 0
    for spec in article["tables"]:
        df = tables[spec["id"]]
        cells += _check_table(spec, [str(c) for c in df.columns], [str(x) for x in df.index],
                              lambda i, j, df=df: df.iat[i, j], df.attrs["decimals"])
    assert cells == 891


def test_cli_json_reproduces_every_cell(article, capsys):
    assert main(["report", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    got = {t["id"]: t for t in out["tables"]}
    decimals = {tid: df.attrs["decimals"] for tid, df in compute_tables().items()}
    for spec in article["tables"]:
        t = got[spec["id"]]
        assert set(t) >= {"id", "columns", "rows"}
        _check_table(spec, t["columns"], [r["label"] for r in t["rows"]],
                     lambda i, j, t=t: t["rows"][i]["values"][j], decimals[spec["id"]])


def test_json_floats_are_unrounded(capsys):
    main(["report", "decode_totals", "--format", "json"])
    tpot = json.loads(capsys.readouterr().out)["tables"][0]["rows"][9]["values"][0]
    assert tpot != round(tpot, 3) and abs(tpot - 17.023) < 5e-4


def test_markdown_prints_the_articles_decimals(capsys):
    main(["report", "prefill_tps_tp4", "decode_max_batch_tp1", "decode_totals"])
    out = capsys.readouterr().out
    assert "| Sum(Overlap) | 52240.1 | 9377.0 |" in out
    assert "| H800_FP8 | 289 | 276 | 248 | 194 |" in out
    assert "| TPOT(Overlap) | 9.858 | 19.716 | 39.431 | 61.497 |" in out


def test_figures_quoted_in_the_text(article):
    ours = {f["id"]: f["values"] for f in compute_figures()}
    printed = {f["id"]: f["values"] for f in article["figures"]}
    assert ours["mla_flops_1_1"] == pytest.approx(printed["mla_flops_1_1"], rel=1e-12)
    assert ours["mla_absorb_flops_1_1"] == pytest.approx(printed["mla_absorb_flops_1_1"], rel=1e-12)
    assert ours["absorb_params_m"] == pytest.approx(printed["absorb_params_m"], rel=1e-12)
    assert round(ours["absorb_ratio_1_1"][0], 3) == printed["absorb_ratio_1_1"][0]
    assert int(ours["absorb_ratio_prefill"][0] * 1e4) / 1e4 == printed["absorb_ratio_prefill"][0]  # printed truncated
    assert round(ours["absorb_ratio_decode"][0], 3) == printed["absorb_ratio_decode"][0]
    assert ours["kv_bytes_per_token_kb"] == pytest.approx(printed["kv_bytes_per_token_kb"], abs=0.01)
    # exact counts give 3.149B; the article subtracted from its rounded 671.16B total
    assert ours["other_params"] == pytest.approx(printed["other_params"], rel=0.01)
