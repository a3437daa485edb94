"""What the article computes and prints, declared once for Python and the workbook.

*Scopes* are instances of a calculation chain (:mod:`dsxl.chains.step`): the model once, each GPU per
phase, each prefill deployment, each decode (GPU, batch size), each max-batch configuration. A scope
sees its parents' quantities, its GPU's fields and its own parameters.

*Tables* are the article's printed tables. Each cell points at a scope quantity (:class:`Q`), a label
built from quantities (:class:`Cat`), formatted text (:class:`Text`) or a literal. :mod:`dsxl.article.tables`
fills them with numbers; :mod:`dsxl.workbook` fills them with cell references.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dsxl.data.catalog import Catalog
from dsxl.chains import article as chain
from dsxl.chains.scope import MODEL_KEY, Input, Key, Scope

# --------------------------------------------------------------------------------------- scopes


def gpu_prefill_key(gpu: str) -> Key:
    return Key("gpu_prefill", gpu)


def gpu_decode_key(gpu: str) -> Key:
    return Key("gpu_decode", gpu)


def prefill_key(gpu: str, tp: int) -> Key:
    return Key("prefill", gpu, tp=tp)


def decode_key(gpu: str, i: int) -> Key:
    return Key("decode", gpu, index=i)


def decode_std_key(gpu: str, i: int) -> Key:
    return Key("decode_std", gpu, index=i)


def ep_key(i: int) -> Key:
    return Key("ep", index=i)


def maxb_key(gpu: str, tp: int, ep_index: int, absorb: bool, kv_fp16: bool) -> Key:
    return Key("maxb", gpu, tp=tp, index=ep_index, absorb=absorb, kv_fp16=kv_fp16)


MAX_BATCH_TPS = (1, 4, 8)


def network_names(catalog: Catalog, bases: list[str]) -> list[str]:
    return [f"{b}-{v.label}" for b in bases for v in catalog.network_variants]


@dataclass
class Plan:
    """All scopes in evaluation order, and the article's GPU lists."""

    catalog: Catalog
    n_batches: int
    scopes: dict[Key, Scope] = field(default_factory=dict)

    def add(self, scope: Scope) -> None:
        self.scopes[scope.key] = scope

    @property
    def t(self) -> dict[str, Any]:
        return self.catalog.article_tables

    @property
    def n_ep(self) -> int:
        return len(self.catalog.ep_strategies)

    def memory_ep_order(self) -> list[int]:
        """The memory tables list EP strategies from the largest EP down (EP320 ... EP34)."""
        return sorted(range(self.n_ep), key=lambda i: -self.catalog.ep_strategies[i].ep)


def build_plan(catalog: Catalog, n_batches: int) -> Plan:
    plan = Plan(catalog, n_batches)
    t = catalog.article_tables
    plan.add(Scope("model", MODEL_KEY, tuple(chain.MODEL + chain.PREFILL_FLOPS + chain.DECODE_FLOPS),
                   title="Model"))
    for i in range(plan.n_ep):
        plan.add(Scope("ep", ep_key(i), tuple(chain.EP), (MODEL_KEY,),
                       (("ep", Input("ep", i)),)))

    prefill_gpus = list(t["prefill_gpus"]) + network_names(catalog, t["prefill_network_gpus"])
    for g in prefill_gpus:
        plan.add(Scope("gpu_prefill", gpu_prefill_key(g), tuple(chain.PREFILL_EFFECTIVE + chain.PREFILL_GPU),
                       (MODEL_KEY,), gpu=g))
        tps = t["prefill_tps"] if g in t["prefill_gpus"] else t["prefill_tps"][:1]
        for tp in tps:
            plan.add(Scope("prefill", prefill_key(g, tp), tuple(chain.PREFILL_DEPLOY),
                           (MODEL_KEY, gpu_prefill_key(g)), (("tp", tp),), gpu=g))

    decode_gpus = list(t["decode_gpus"]) + network_names(catalog, t["decode_network_gpus"])
    for g in decode_gpus:
        plan.add(Scope("gpu_decode", gpu_decode_key(g), tuple(chain.DECODE_EFFECTIVE + chain.DECODE_GPU),
                       (MODEL_KEY,), gpu=g))
        for i in range(n_batches):
            plan.add(Scope("decode", decode_key(g, i), tuple(chain.DECODE_BATCH), (MODEL_KEY, gpu_decode_key(g)),
                           (("batch_size", Input("batch_sizes", i)),), gpu=g))
    for g in t["decode_detail_gpus"]:
        for i in range(n_batches):
            plan.add(Scope("decode_std", decode_std_key(g, i), tuple(chain.decode_mla_steps(False)),
                           (MODEL_KEY, gpu_decode_key(g)), (("batch_size", Input("batch_sizes", i)),), gpu=g))

    for kv_fp16 in (False, True):
        for g in t["decode_gpus"]:
            for absorb in (False, True):
                for tp in MAX_BATCH_TPS:
                    for e in plan.memory_ep_order():
                        plan.add(Scope("maxb", maxb_key(g, tp, e, absorb, kv_fp16), tuple(chain.MAX_BATCH),
                                       (MODEL_KEY, ep_key(e)),
                                       (("tp", tp), ("absorb", absorb), ("kv_bytes", 2 if kv_fp16 else 1)), gpu=g))
    return plan


# --------------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Q:
    scope: tuple  # a scope Key, or ("gpu"|"datasheet", name) for catalog rows
    name: str


@dataclass(frozen=True)
class Cat:
    """A label joined from text and quantities, e.g. GPU name + "(FP8)"."""

    parts: tuple


@dataclass(frozen=True)
class Text:
    """A quantity printed as text with a scale and a suffix, e.g. 187172928 -> "187.17M"."""

    q: Q
    scale: float
    decimals: int
    suffix: str = ""


@dataclass(frozen=True)
class TableHead:
    """What every printed table has: its id, title, article section, unit, index header and decimals."""

    id: str
    title: str
    section: str
    unit: str
    index: str | None
    decimals: int


@dataclass(frozen=True)
class Table(TableHead):
    columns: tuple
    rows: tuple  # (label, (cell, ...))
    note: str = ""


@dataclass(frozen=True)
class FilteredTable(TableHead):
    """Configurations kept by a boolean quantity (the SLA filter), in source order.

    ``by_column``: each kept configuration is a column (labels on top, quantities as rows);
    otherwise each is a row (labels on the left, quantities as columns).
    """

    sources: tuple
    keep: str
    label: str
    fields: tuple  # (header, quantity name)
    by_column: bool
    note: str = ""


COUNT_HEADERS = ("BatchSize", "Layers")


def cell_decimals(table_decimals: int, row_label: Any, col_label: Any) -> int:
    """Decimals a printed cell shows: counts (batch sizes, layers) are whole, the rest use the table's."""
    return 0 if row_label in COUNT_HEADERS or col_label in COUNT_HEADERS else table_decimals


def _name(g: str) -> Q:
    """A GPU's name, read from its hardware row (labels follow the catalog)."""
    return Q(("gpu", g), "gpu_name")


def article_tables(plan: Plan) -> list[Table | FilteredTable]:
    """Every table of the article, in its order: the TL;DR, section 1.4's model and GPU figures, prefill, decode."""
    out: list[Table | FilteredTable] = []
    for section in (_tldr_tables, _model_tables, _prefill_tables, _decode_tables):
        section(plan, out)
    return out


def _grid(out: list, id_: str, title: str, section: str, unit: str, index: Any, decimals: int, cols: Any,
          row_labels: Any, cell: Any, note: str = "") -> None:
    """A table whose cell (r, c) is ``cell(r, c)``."""
    rows = tuple((lab, tuple(cell(r, c) for c in range(len(cols)))) for r, lab in enumerate(row_labels))
    out.append(Table(id_, title, section, unit, index, decimals, tuple(cols), rows, note))


def _decode_sources(plan: Plan) -> tuple:
    return tuple(decode_key(g, i) for g in plan.t["decode_gpus"] for i in range(plan.n_batches))


def _tldr_tables(plan: Plan, out: list) -> None:
    """TL;DR: prefill throughput at the first deployment, the decode results that meet the SLA."""
    pg, (tp_a, _) = plan.t["prefill_gpus"], plan.t["prefill_tps"]
    _grid(out, "tldr_prefill", f"Prefill throughput per node (tokens/s), TP{tp_a} deployment", "TL;DR",
          "tokens/s per node", None, 1, [_name(g) for g in pg], ["TPS(Overlap)", "TPS"],
          lambda r, c: Q(prefill_key(pg[c], tp_a), ("tps_overlap_node", "tps_node")[r]))
    out.append(FilteredTable(
        "tldr_decode", "Decode results that meet TPS_O > tps_threshold", "TL;DR", "ms / tokens/s", None, 3,
        _decode_sources(plan), "meets_sla", "label",
        (("BatchSize", "batch_size"), ("TPOT(Overlap)", "tpot_overlap_ms"), ("TPOT", "tpot_ms"),
         ("TPS(Overlap)", "tps_overlap"), ("TPS", "tps"), ("Total(Overlap)", "total_overlap"), ("Total", "total")),
        True))


def _model_tables(plan: Plan, out: list) -> None:
    """Section 1.4: parameters and per-block costs, the GPUs' datasheet figures."""
    M = MODEL_KEY
    P = lambda n: Q(M, n)  # noqa: E731
    out.append(Table(
        "params_by_block", "Parameter count by block", "1.4", "parameters", "Block", 2,
        ("Params per layer", "Layers", "Total params"),
        (("MLA", (Text(P("mla_params"), 1e6, 2, "M"), P("n_layers"), Text(P("mla_layers_params"), 1e9, 2, "B"))),
         ("DenseMLP", (Text(P("dense_mlp_params"), 1e6, 2, "M"), P("n_dense_layers"),
                       Text(P("dense_layers_params"), 1e9, 2, "B"))),
         ("Expert", (Cat((Text(P("expert_params"), 1e6, 2, "M"), "x(", P("n_routed_experts"), "_routed+",
                          P("n_shared_experts"), "_shared)")), P("n_sparse_layers"),
                     Text(P("expert_layers_params"), 1e9, 1, "B"))),
         ("Gate", (Text(P("gate_params"), 1e6, 2, "M"), P("n_sparse_layers"), Text(P("gate_layers_params"), 1e6, 2, "M"))),
         ("Embedding", (Text(P("embedding_params"), 1e6, 2, "M"), 1, Text(P("embedding_params"), 1e6, 2, "M"))),
         ("Output", (Text(P("embedding_params"), 1e6, 2, "M"), 1, Text(P("embedding_params"), 1e6, 2, "M"))),
         ("SUM", ("-", "-", Text(P("total_params"), 1e9, 2, "B")))),
        "Exact counts (nn.Linear with bias); the article multiplied rounded figures, so a few totals differ in the last digit."))
    kv = Cat((P("kv_values_per_token"), "B(FP8)"))
    out.append(Table(
        "block_costs", "Per-block parameters, FLOPs per token, KV cache per token", "1.4", "", "Block", 2,
        ("Params", "FLOPs per token", "KV cache per token"),
        (("MLA", (Text(P("mla_params"), 1e6, 2, "M"), Text(P("mla_token_gflops"), 1e-3, 2, "M"), kv)),
         ("MLA_absorb", (Text(P("mla_absorb_params"), 1e6, 2, "M"), Text(P("mla_absorb_token_gflops"), 1e-3, 2, "M"),
                         kv)),
         ("DenseMLP", (Text(P("dense_mlp_params"), 1e6, 2, "M"), Text(P("dense_mlp_token_gflops"), 1e-3, 2, "M"), "-")),
         ("Expert", (Text(P("expert_params"), 1e6, 2, "M"), Text(P("expert_token_gflops"), 1e-3, 1, "M"), "-"))),
        "The article prints 488.1M for Expert FLOPs per token, a typo for the 88.1M its text gives; dsxl shows 88.1M."))
    ds = plan.catalog.datasheets
    spec_fields = ("sm", "fp16_flops", "fp8_flops", "mem", "mem_bw", "nvlink_bw", "pcie_bw")
    _grid(out, "gpu_specs", "H800/H20 datasheet figures as printed", "1.4", "TFLOPS (dense), GB, GB/s", "GPU", 1,
          ["SM", "FP16 TFLOPS", "FP8 TFLOPS", "Memory GB", "Memory BW GB/s", "NVLink GB/s", "PCIe GB/s"],
          list(ds), lambda r, c: Q(("datasheet", list(ds)[r]), spec_fields[c]))



def _prefill_tables(plan: Plan, out: list) -> None:
    """Section 2: prefill's per-layer times, totals, throughput, scale-out bandwidth and KV transfer."""
    t = plan.t
    M = MODEL_KEY
    P = lambda n: Q(M, n)  # noqa: E731
    pg, (tp_a, tp_b) = t["prefill_gpus"], t["prefill_tps"]
    grid = lambda *args, **kw: _grid(out, *args, **kw)  # noqa: E731
    GP = gpu_prefill_key
    grid("prefill_mla", "Prefill MLA time per layer", "2.1", "ms", "GPU", 3, ["TP1", "TP4", "TP8"], [_name(g) for g in pg],
         lambda r, c: Q(GP(pg[r]), ("mla_tp1_ms", "mla_tp4_ms", "mla_tp8_ms")[c]))
    grid("prefill_dense_mlp", "Prefill DenseMLP time per layer", "2.2", "ms", "GPU", 3, ["DenseMLP"],
         [_name(g) for g in pg], lambda r, c: Q(GP(pg[r]), "dense_mlp_ms"))
    for tp in (tp_a, tp_b):
        dp_text = f"TP{tp} DP{{}}".format(int(plan_devices(plan) / tp))
        grid(f"prefill_moe_tp{tp}", f"Prefill MoE expert time per layer, {dp_text}", "2.3", "ms", "GPU", 3,
             ["Shared Expert", "Routed Expert"], [_name(g) for g in pg],
             lambda r, c, tp=tp: Q(prefill_key(pg[r], tp), ("shared_expert_ms", "routed_expert_ms")[c]))
    for tp in (tp_a, tp_b):
        grid(f"prefill_a2a_tp{tp}", f"Prefill all-to-all time per layer, TP{tp}", "2.4", "ms", "GPU", 3,
             ["Dispatch", "Combine"], [_name(g) for g in pg],
             lambda r, c, tp=tp: Q(prefill_key(pg[r], tp), ("dispatch_ms", "combine_ms")[c]))
    detail_rows = [("MLA", "n_dense_layers", "gpu", "mla_tp1_ms"), ("DenseMLP", "n_dense_layers", "gpu", "dense_mlp_ms"),
                   ("TP_MLA", "n_sparse_layers", "dep", "tp_mla_ms"),
                   ("Shared Expert", "n_sparse_layers", "dep", "shared_expert_ms"),
                   ("Routed Expert", "n_sparse_layers", "dep", "routed_expert_ms"),
                   ("Dispatch", "n_sparse_layers", "dep", "dispatch_ms"), ("Combine", "n_sparse_layers", "dep", "combine_ms")]

    def detail(tp, gpus, rows):
        def cell(r, c, tp=tp):
            _, layers, where, q = rows[r]
            if c == 0:
                return P(layers)
            g = gpus[c - 1]
            return Q(GP(g) if where == "gpu" else prefill_key(g, tp), q)
        return cell

    for tp in (tp_a, tp_b):
        dp = int(plan_devices(plan) / tp)
        grid(f"prefill_detail_tp{tp}", f"Prefill per-layer times and layer counts, TP{tp} DP{dp}", "2.5", "ms", None, 3,
             ["Layers"] + [_name(g) for g in pg], [r[0] for r in detail_rows], detail(tp, pg, detail_rows))
        grid(f"prefill_sum_tp{tp}", f"Prefill total time per DP-group batch, TP{tp} DP{dp}", "2.5", "ms", None, 3,
             [_name(g) for g in pg], ["Sum(Overlap)", "Sum"],
             lambda r, c, tp=tp: Q(prefill_key(pg[c], tp), ("sum_overlap_ms", "sum_ms")[r]))
    for tp in (tp_a, tp_b):
        dp = int(plan_devices(plan) / tp)
        grid(f"prefill_tps_tp{tp}", f"Prefill throughput per node, TP{tp} DP{dp}", "2.5", "tokens/s per node", None, 1,
             [_name(g) for g in pg], ["Sum(Overlap)", "Sum"],
             lambda r, c, tp=tp: Q(prefill_key(pg[c], tp), ("tps_overlap_node", "tps_node")[r]))
    net = network_names(plan.catalog, t["prefill_network_gpus"])
    net_rows = [detail_rows[i] for i in (2, 3, 5, 4, 6)]
    grid("prefill_h20_network_detail", f"Prefill per-layer times by scale-out bandwidth, TP{tp_a}", "2.6", "ms", None, 3,
         ["Layers"] + [_name(g) for g in net], [r[0] for r in net_rows], detail(tp_a, net, net_rows))
    grid("prefill_h20_network_sum", "Prefill totals by scale-out bandwidth", "2.6", "ms", None, 3,
         [_name(g) for g in net], ["Sum(Overlap)", "Sum"],
         lambda r, c: Q(prefill_key(net[c], tp_a), ("sum_overlap_ms", "sum_ms")[r]))
    kv_cols = [(g, p) for p in ("FP8", "FP16") for g in pg]
    grid("prefill_kv_transfer", f"KV cache produced per node per second by prefill, TP{tp_a}", "2.7", "GB/s", "GB/s", 1,
         [Cat((_name(g), f"({p})")) for g, p in kv_cols], ["Sum(Overlap)", "Sum"],
         lambda r, c: Q(prefill_key(kv_cols[c][0], tp_a),
                        {("FP8", 0): "kv_gbps_fp8_overlap", ("FP8", 1): "kv_gbps_fp8",
                         ("FP16", 0): "kv_gbps_fp16_overlap", ("FP16", 1): "kv_gbps_fp16"}[(kv_cols[c][1], r)]))



def _decode_tables(plan: Plan, out: list) -> None:
    """Section 3: decode's EP strategies, memory, per-layer times, totals and overlap budgets."""
    t = plan.t
    n_b = plan.n_batches
    dg, ddg = t["decode_gpus"], t["decode_detail_gpus"]
    decode_sources = _decode_sources(plan)
    grid = lambda *args, **kw: _grid(out, *args, **kw)  # noqa: E731
    eps = plan.catalog.ep_strategies
    grid("ep_strategies", "Decode expert-parallel strategies", "3.1", "", None, 0,
         ["Redundant experts", "Routed experts per GPU"], [Cat(("EP", Q(ep_key(i), "ep"))) for i in range(len(eps))],
         lambda r, c: Q(ep_key(r), ("redundant_experts", "routed_per_gpu")[c]))
    order = plan.memory_ep_order()
    mb_rows = [(g, fp16, absorb) for fp16 in (False, True) for g in dg for absorb in (False, True)]
    for tp in MAX_BATCH_TPS:
        grid(f"decode_max_batch_tp{tp}", f"Max decode batch per GPU, MLA TP{tp}", "3.2", "sequences",
             "MLA:TP=1" if tp == 1 else "GPU", 0,
             [Cat(("EP", Q(ep_key(e), "ep"))) for e in order],
             [Cat((_name(g), "_FP16" if fp16 else "_FP8", "_Absorb" if absorb else "")) for g, fp16, absorb in mb_rows],
             lambda r, c, tp=tp: Q(maxb_key(mb_rows[r][0], tp, order[c], mb_rows[r][2], mb_rows[r][1]), "max_batch"))
    by_bs = [(g, i) for g in ddg for i in range(n_b)]
    mla_cols = ["BatchSize", "TP1", "TP4", "TP8", "LoadKV_FP8", "LoadKV_FP16"]
    mla_q = ["batch_size", "mla_tp1_ms", "mla_tp4_ms", "mla_tp8_ms", "load_kv_fp8_ms", "load_kv_fp16_ms"]
    for id_, key, what in (("decode_mla_absorb", decode_key, "matrix-absorbed"),
                           ("decode_mla_standard", decode_std_key, "standard (not absorbed)")):
        grid(id_, f"Decode MLA time per layer, {what}", "3.3", "ms", "GPU", 3, mla_cols, [_name(g) for g, _ in by_bs],
             lambda r, c, key=key: Q(key(*by_bs[r]), mla_q[c]))
    for id_, title, section, cols, qs in (
            ("decode_dense_mlp", "Decode DenseMLP time per layer", "3.4", ["BatchSize", "DenseMLP"],
             ["batch_size", "dense_mlp_ms"]),
            ("decode_moe", "Decode MoE expert time per layer (grouped GEMM)", "3.5",
             ["BatchSize", "SharedExpert", "RoutedExpert"], ["batch_size", "shared_expert_ms", "routed_expert_ms"]),
            ("decode_a2a", "Decode all-to-all time per layer", "3.5", ["BatchSize", "Dispatch", "Combine"],
             ["batch_size", "dispatch_ms", "combine_ms"])):
        grid(id_, title, section, "ms", "GPU", 3, cols, [_name(g) for g, _ in by_bs],
             lambda r, c, qs=qs: Q(decode_key(*by_bs[r]), qs[c]))
    comp_rows = list(zip(mla_cols + ["DenseMLP", "SharedExpert", "RoutedExpert", "Dispatch", "Combine"],
                         mla_q + ["dense_mlp_ms", "shared_expert_ms", "routed_expert_ms", "dispatch_ms", "combine_ms"]))
    grid("decode_components", "Decode per-layer components", "3.6", "ms", None, 3, [_name(g) for g, _ in by_bs],
         [r[0] for r in comp_rows], lambda r, c: Q(decode_key(*by_bs[c]), comp_rows[r][1]))
    tot_rows = (("BatchSize", "batch_size"), ("DenseMLA", "dense_mla_ms"), ("DenseMLP", "dense_mlp_ms"),
                ("SparseMLA", "sparse_mla_ms"), ("Combine", "combine_ms"), ("SharedExpert", "shared_expert_ms"),
                ("RoutedExpert", "routed_expert_ms"), ("Dispatch", "dispatch_ms"), ("TPOT(Overlap)", "tpot_overlap_ms"),
                ("TPOT", "tpot_ms"), ("TPS_O", "tps_overlap"), ("TPS", "tps"), ("Total_O", "total_overlap"),
                ("Total", "total"))
    grid("decode_totals", "Decode TPOT and throughput with the chosen MLA TP per GPU", "3.6", "ms, tokens/s", None, 3,
         [Q(k, "label") for k in decode_sources], [r[0] for r in tot_rows],
         lambda r, c: Q(decode_sources[c], tot_rows[r][1]))
    out.append(FilteredTable("decode_totals_sla", "Decode results with TPS_O > tps_threshold", "3.6", "ms, tokens/s",
                             None, 3, decode_sources, "meets_sla", "label", tot_rows, True))
    budget = (("BatchSize", "batch_size"), ("TimeBudget", "time_budget_ms"))
    out.append(FilteredTable("decode_time_budget", "Overlap time budget per layer (SparseMLA + SharedExpert - "
                             "Dispatch - Combine), configurations meeting the SLA", "3.7", "ms", "GPU", 3,
                             decode_sources, "meets_sla", "label", budget, False))
    dnet = network_names(plan.catalog, t["decode_network_gpus"])
    out.append(FilteredTable("decode_time_budget_network", "Overlap time budget by scale-out bandwidth, "
                             "configurations meeting the SLA", "3.7", "ms", "GPU", 3,
                             tuple(decode_key(g, i) for g in dnet for i in range(n_b)), "meets_sla", "label", budget,
                             False))


def plan_devices(plan: Plan) -> Any:
    s = plan.catalog.scenario
    return s.num_node * s.gpu_per_node
