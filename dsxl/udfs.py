"""Excel user-defined functions over the dsxl model (xlwings). No math here: each UDF converts Excel's
arguments, calls the model and converts the result back.

Windows Excel (classic xlwings): point an ``xlwings.conf`` sheet's ``UDF Modules`` at ``dsxl.udfs`` and
Import Functions. xlwings Lite: ``from dsxl.udfs import *`` in main.py. Without xlwings (Linux, CI)
the decorators are no-ops and the UDFs are plain functions.

UDF parameters carry no type hints on purpose: xlwings turns hints into converters, and these
functions do their own checking so a blank, text or NaN gets a message naming the argument.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields, replace
from functools import lru_cache, wraps
from typing import Any, Callable

import numpy as np

from dsxl.data.catalog import GPU, load_catalog
from dsxl.core.rules import (BATCH, EXPERTS_PER_GPU, GPU_FIELDS, GPU_RANGES, RATE, SCENARIO_RANGES, TOKENS, TP, TP_CHOICES, Range, check)
from dsxl.core.rules import choose, refuse, show

try:  # optional: the core never needs xlwings
    import xlwings as _xw

    _func, _arg = _xw.func, _xw.arg
except ImportError:  # pragma: no cover - exercised by the no-xlwings import test
    def _func(f: Any = None, **_: Any) -> Any:
        return f if callable(f) else (lambda g: g)

    def _arg(*_: Any, **__: Any) -> Callable[[Any], Any]:
        return lambda g: g

CATEGORY = "dsxl"
ARTICLE_SEQ_LEN = 4383
ARTICLE_DECODE_LEN = 1210

# ------------------------------------------------------------------------------------ argument handling


def _blank(x: Any) -> bool:
    return x is None or (isinstance(x, str) and x.strip() == "")


def _number(name: str, x: Any, rng: Range, default: Any = None) -> Any:
    """A number or a range of numbers (nested lists); blanks take the default; text is an error."""
    if _blank(x):
        if default is None:
            raise ValueError(f"{name} is required ({rng.describe()})")
        return default
    if isinstance(x, (list, tuple, np.ndarray)):
        arr = np.array(x, dtype=object)
        if arr.size == 0:
            raise ValueError(f"{name} must be {rng.describe()}; got an empty range")
        flat = [_number(name, v, rng, default) for v in arr.ravel()]
        return np.array(flat, dtype=float).reshape(arr.shape)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be {rng.describe()}; got {show(x)}")
    return check(name, float(x), rng)


def _bool(name: str, x: Any, default: bool) -> bool:
    if _blank(x):
        return default
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, float)) and not isinstance(x, bool) and x in (0, 1):
        return bool(x)
    if isinstance(x, str) and x.strip().upper() in ("TRUE", "FALSE"):
        return x.strip().upper() == "TRUE"
    raise ValueError(f"{name} must be TRUE or FALSE (or 1/0); got {show(x)}")


def _mla_tp(x: Any) -> Any:
    if _blank(x) or (isinstance(x, str) and x.strip().lower() == "auto"):
        return "auto"
    return int(_number("mla_tp", x, TP_CHOICES))


def _gpu_defaults() -> dict[str, Any]:
    """GPU fields a 2-row range may leave out, with their dataclass defaults."""
    return {f.name: f.default for f in fields(GPU) if f.name in GPU_FIELDS and f.default is not MISSING}


@lru_cache(maxsize=64)
def _catalog_gpu(name: str) -> GPU:
    return load_catalog().gpu(name)


def _is_range(x: Any) -> bool:
    return isinstance(x, (list, tuple, np.ndarray))


def _is_gpu_record(x: Any) -> bool:
    """A 2-row range naming GPU fields on top (a custom GPU), as opposed to a range of catalog names."""
    return isinstance(x, (list, tuple)) and len(x) == 2 and all(isinstance(r, (list, tuple)) for r in x) \
        and len(x[0]) == len(x[1]) and any(isinstance(k, str) and k.strip() in GPU_FIELDS + ("name",) for k in x[0])


def _gpu(x: Any) -> GPU:
    """A catalog name (case-insensitive) or a 2-row range: field names on top, values below."""
    if isinstance(x, str) and not _blank(x):
        return _catalog_gpu(x.strip())
    if _is_gpu_record(x):
        row = {str(k).strip(): v for k, v in zip(x[0], x[1]) if not _blank(k)}
        name = row.get("name")
        name = name if isinstance(name, str) and name.strip() else "custom"
        optional = _gpu_defaults() | {"comm_sm": 0}
        values: dict[str, Any] = {}
        for f in GPU_FIELDS:
            if f not in row or _blank(row[f]):
                if f in optional:
                    values[f] = optional[f]
                    continue
                raise ValueError(f"gpu range needs a '{f}' column (fields: {', '.join(GPU_FIELDS)})")
            values[f] = _number(f"gpu.{f}", row[f], GPU_RANGES[f])
        values = {k: int(v) if float(v).is_integer() else v for k, v in values.items()}
        generation = row.get("generation")
        extra = {"generation": generation.strip()} if isinstance(generation, str) and generation.strip() else {}
        return GPU(name=name, **values, **extra)
    known = ", ".join(load_catalog().gpus)
    raise ValueError(f"gpu must be a catalog name ({known}) or a 2-row range of field names and values; got {show(x)}")


def _out(x: Any) -> Any:
    """Scalars as floats; arrays as nested lists (a column in gives a column out)."""
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return float(x)
        return x.astype(float).tolist() if x.ndim == 2 else [[float(v)] for v in x.ravel()]
    return float(x)


def _shape(*xs: Any) -> None:
    """Ranges must broadcast (a column with a row makes a grid; other mismatches are errors)."""
    try:
        np.broadcast_shapes(*[np.shape(x) for x in xs])
    except ValueError:
        raise ValueError("numeric ranges must have matching shapes (or be single cells)") from None


def _decode_cells(gpu: Any, batch_size: Any, seq_len: Any, mla_tp: Any, absorb: bool, key: str) -> Any:
    """One article decode quantity for a cell or a range of batch sizes and context lengths."""
    from dsxl.article.api import decode_breakdown

    g, tp = _gpu(gpu), _mla_tp(mla_tp)

    def cells(a: dict[str, Any]) -> Any:
        bs = _number("batch_size", a["batch_size"], BATCH)
        seq = _number("seq_len", a["seq_len"], SCENARIO_RANGES["seq_len"], ARTICLE_SEQ_LEN)
        _shape(bs, seq)
        return _out(decode_breakdown(g, bs, mla_tp=tp, absorb=absorb, labels=False, seq_len=seq)[key])
    return _each_cell(cells, {"batch_size": batch_size, "seq_len": seq_len})


def _each_cell(call: Callable[[dict[str, Any]], Any], numbers: dict[str, Any]) -> Any:
    """``call(numbers)`` for single cells or whole ranges at once (vectorised); when a range holds a cell that
    breaks a rule, each cell is evaluated alone, so only that cell shows the message (the README's promise)."""
    ranges = {n: v for n, v in numbers.items() if _is_range(v)}
    try:
        value = call(numbers)
    except ValueError:
        if not ranges:
            raise
        return _per_cell(lambda cell: call({**numbers, **cell}), ranges)
    return _fill(value, next(iter(_grids(ranges).values())).shape) if ranges else value


def _grids(ranges: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each range as a grid, broadcast to the sheet grid they make together (a 1-D range is a column; a column with
    a row makes a grid)."""
    grids = {name: _as_grid(v, name) for name, v in ranges.items()}
    try:
        shape = np.broadcast_shapes(*[g.shape for g in grids.values()])
    except ValueError:
        raise ValueError("numeric ranges must have matching shapes (or be single cells)") from None
    return {name: np.broadcast_to(g, shape) for name, g in grids.items()}


def _as_grid(x: Any, name: str = "a range") -> np.ndarray:
    """A range as a 2-D grid of cells (a 1-D range is a column); a ragged or deeper range is an error naming it."""
    a = np.empty(len(x), dtype=object) if isinstance(x, (list, tuple)) else np.array(x, dtype=object)
    if isinstance(x, (list, tuple)):
        a[:] = list(x)
        rows = [r for r in x if isinstance(r, (list, tuple, np.ndarray))]
        if rows:
            if len(rows) < len(x) or len({len(r) for r in rows}) > 1:
                raise ValueError(f"{name} must be a rectangular range")
            a = np.empty((len(x), len(rows[0])), dtype=object)
            for i, r in enumerate(x):
                a[i, :] = list(r)
    if a.ndim > 2 or any(isinstance(v, (list, tuple, np.ndarray)) for v in a.ravel()):
        raise ValueError(f"{name} must be a range of single cells")
    return a if a.ndim == 2 else a.reshape(-1, 1)


def _fill(value: Any, shape: tuple[int, int]) -> list[list[Any]]:
    """A result spread over the grid of its inputs: a quantity that does not depend on a ranged input (dispatch
    time over a range of contexts) still gives one cell per input cell."""
    return np.broadcast_to(_as_grid(value), shape).tolist()


def cell_by_cell(fn: Callable[..., Any], vectorised: tuple[str, ...] = (), spread: bool = True) -> Callable[..., Any]:
    """``fn`` with every range argument evaluated cell by cell, except those ``fn`` computes on a whole range at
    once (``vectorised``) and a GPU given as a field-name range. Each cell that breaks a rule shows its own message;
    with ``spread`` False a range is refused in one line (a UDF that returns a table per call)."""
    signature = inspect.signature(fn)

    @wraps(fn)  # xlwings reads the signature through __wrapped__
    def by_cell(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        ranges = {n: v for n, v in given.items() if _is_range(v) and not (n == "gpu" and _is_gpu_record(v))}
        if not set(ranges) - set(vectorised):
            return fn(**given)
        if not spread:
            raise ValueError(f"{next(iter(ranges))} takes a single cell, not a range")
        return _per_cell(lambda cell: fn(**{**given, **cell}), ranges)
    return by_cell


# ------------------------------------------------------------------------------------ the UDFs
UDF_CATALOG: list[tuple[str, str, str, str]] = []
_ARG_DOCS: dict[str, dict[str, str]] = {}


def udf(signature: str, example: str, vectorised: tuple[str, ...] = (), spread: bool = True,
        **arg_docs: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a UDF: record it for the workbook's UDFs sheet, evaluate ranges cell by cell where the model does
    not take them whole (``vectorised``), and apply the xlwings decorators."""
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        UDF_CATALOG.append((fn.__name__, signature, example, (fn.__doc__ or "").strip().splitlines()[0]))
        _ARG_DOCS[fn.__name__] = arg_docs
        return decorate(cell_by_cell(fn, vectorised, spread), _func, _arg)
    return deco


def decorate(fn: Callable[..., Any], func: Callable[..., Any], arg: Callable[..., Any]) -> Callable[..., Any]:
    """Apply xlwings-style ``func``/``arg`` decorators (the real ones in tests, xw.func/xw.arg at import)."""
    for name, doc in reversed(list(_ARG_DOCS[fn.__name__].items())):
        fn = arg(name, doc=doc)(fn)
    return func(category=CATEGORY)(fn)


DECODE_RANGES = ("batch_size", "seq_len")  # the article decode UDFs compute these over a whole range at once
GPU_DOC = "Catalog name (e.g. \"H800\") or a 2-row range: field names on top, values below"


@udf("MLA_FLOPS(q_len, kv_len, [kv_cache_rate=0], [absorb=FALSE], [part=\"total\"])", "=MLA_FLOPS(1, 1)",
     vectorised=("q_len", "kv_len", "kv_cache_rate"),
     q_len="Query tokens (>= 0)", kv_len="Key/value tokens (>= 0)", kv_cache_rate="Share of KV served from cache, 0..1",
     absorb="TRUE for the matrix-absorbed MLA", part="\"total\", \"gemm\" (FP8) or \"attn\" (FP16)")
def MLA_FLOPS(q_len, kv_len, kv_cache_rate=0, absorb=False, part="total"):  # noqa: N802
    """MLA GFLOPs for q_len queries over kv_len keys (article section 1.1)."""
    from dsxl.article.api import mla_absorb_flops, mla_flops

    which = {"total": 0, "gemm": 1, "attn": 2}[choose("part", part, ("total", "gemm", "attn"), "total")]
    fn = mla_absorb_flops if _bool("absorb", absorb, False) else mla_flops

    def cells(a: dict[str, Any]) -> Any:
        q = _number("q_len", a["q_len"], TOKENS)
        kv = _number("kv_len", a["kv_len"], TOKENS)
        rate = _number("kv_cache_rate", a["kv_cache_rate"], RATE, 0.0)
        _shape(q, kv, rate)
        return _out(fn(q, kv, rate)[which])
    return _each_cell(cells, {"q_len": q_len, "kv_len": kv_len, "kv_cache_rate": kv_cache_rate})


@udf("DECODE_TPOT(gpu, batch_size, [seq_len=4383], [mla_tp=\"auto\"], [overlap=TRUE])", "=DECODE_TPOT(\"H800\", 128)",
     vectorised=DECODE_RANGES, gpu=GPU_DOC, batch_size="Sequences per GPU (whole number >= 1)",
     seq_len="KV length per sequence, tokens",
     mla_tp="\"auto\" (article rule), 1, 4 or 8", overlap="FALSE adds the all-to-all time")
def DECODE_TPOT(gpu, batch_size, seq_len=ARTICLE_SEQ_LEN, mla_tp="auto", overlap=True):  # noqa: N802
    """Decode time per output token per user, ms (article section 3.6)."""
    key = "tpot_overlap_ms" if _bool("overlap", overlap, True) else "tpot_ms"
    return _decode_cells(gpu, batch_size, seq_len, mla_tp, True, key)


@udf("DECODE_TPS(gpu, batch_size, [seq_len=4383], [mla_tp=\"auto\"], [overlap=TRUE], [per=\"user\"])",
     "=DECODE_TPS(\"H20\", 32, , , , \"gpu\")", vectorised=DECODE_RANGES, gpu=GPU_DOC, batch_size="Sequences per GPU",
     seq_len="KV length per sequence, tokens", mla_tp="\"auto\", 1, 4 or 8", overlap="FALSE adds the all-to-all time",
     per="\"user\" (tokens/s per sequence) or \"gpu\" (tokens/s per GPU)")
def DECODE_TPS(gpu, batch_size, seq_len=ARTICLE_SEQ_LEN, mla_tp="auto", overlap=True, per="user"):  # noqa: N802
    """Decode throughput, tokens/s per user or per GPU."""
    ov = _bool("overlap", overlap, True)
    key = ("tps_overlap" if ov else "tps") if choose("per", per, ("user", "gpu"), "user") == "user" else \
        ("total_overlap" if ov else "total")
    return _decode_cells(gpu, batch_size, seq_len, mla_tp, True, key)


DECODE_PARTS = {"dense_mla": "dense_mla_ms", "sparse_mla": "sparse_mla_ms", "mla_tp1": "mla_tp1_ms",
                "mla_tp4": "mla_tp4_ms", "mla_tp8": "mla_tp8_ms", "load_kv_fp8": "load_kv_fp8_ms",
                "dense_mlp": "dense_mlp_ms", "shared_expert": "shared_expert_ms", "routed_expert": "routed_expert_ms",
                "dispatch": "dispatch_ms", "combine": "combine_ms", "time_budget": "time_budget_ms"}


@udf("DECODE_LAYER_MS(gpu, batch_size, part, [seq_len=4383], [mla_tp=\"auto\"], [absorb=TRUE])",
     "=DECODE_LAYER_MS(\"H20\", 64, \"dispatch\")", vectorised=DECODE_RANGES, gpu=GPU_DOC,
     batch_size="Sequences per GPU",
     part="One of " + ", ".join(DECODE_PARTS), seq_len="KV length per sequence, tokens",
     mla_tp="\"auto\", 1, 4 or 8", absorb="FALSE for standard MLA")
def DECODE_LAYER_MS(gpu, batch_size, part, seq_len=ARTICLE_SEQ_LEN, mla_tp="auto", absorb=True):  # noqa: N802
    """One decode per-layer time in ms (sections 3.3 to 3.5), or the overlap time budget (3.7)."""
    key = DECODE_PARTS[choose("part", part, tuple(DECODE_PARTS))]
    return _decode_cells(gpu, batch_size, seq_len, mla_tp, _bool("absorb", absorb, True), key)


@udf("TIME_BUDGET(gpu, batch_size, [seq_len=4383], [mla_tp=\"auto\"])", "=TIME_BUDGET(\"H20_3e\", 64)",
     vectorised=DECODE_RANGES, gpu=GPU_DOC, batch_size="Sequences per GPU", seq_len="KV length per sequence, tokens",
     mla_tp="\"auto\", 1, 4 or 8")
def TIME_BUDGET(gpu, batch_size, seq_len=ARTICLE_SEQ_LEN, mla_tp="auto"):  # noqa: N802
    """Compute left to hide all-to-all behind, ms per layer (negative: it cannot be hidden)."""
    return _decode_cells(gpu, batch_size, seq_len, mla_tp, True, "time_budget_ms")


@udf("MAX_BATCH(gpu, [tp=1], [experts_per_gpu=3], [seq_len=4383], [decode_len=1210], [absorb=TRUE], [kv_fp16=FALSE])",
     "=MAX_BATCH(\"H20\", 4, 3)", vectorised=("tp", "experts_per_gpu", "seq_len", "decode_len"),
     gpu=GPU_DOC, tp="MLA tensor-parallel degree (whole number >= 1)",
     experts_per_gpu="Routed + shared experts held per GPU", seq_len="Prompt tokens per sequence",
     decode_len="Output tokens per sequence", absorb="TRUE: absorbed MLA weights", kv_fp16="TRUE: FP16 KV cache")
def MAX_BATCH(gpu, tp=1, experts_per_gpu=3, seq_len=ARTICLE_SEQ_LEN, decode_len=ARTICLE_DECODE_LEN, absorb=True,  # noqa: N802
              kv_fp16=False):
    """Whole sequences that fit in HBM per GPU (rounded down; 0 when the weights alone do not fit)."""
    from dsxl.article.api import max_batch_size

    g = _gpu(gpu)
    ab, fp16 = _bool("absorb", absorb, True), _bool("kv_fp16", kv_fp16, False)

    def cells(a: dict[str, Any]) -> Any:
        t = _number("tp", a["tp"], TP, 1)
        e = _number("experts_per_gpu", a["experts_per_gpu"], EXPERTS_PER_GPU, 3)
        s = _number("seq_len", a["seq_len"], SCENARIO_RANGES["seq_len"], ARTICLE_SEQ_LEN)
        d = _number("decode_len", a["decode_len"], SCENARIO_RANGES["decode_len"], ARTICLE_DECODE_LEN)
        _shape(t, e, s, d)
        raw = max_batch_size(g, t, e, ab, fp16, seq_len=s, decode_len=d)["max_batch"]
        return _out(np.maximum(np.floor(raw), 0))
    return _each_cell(cells, {"tp": tp, "experts_per_gpu": experts_per_gpu, "seq_len": seq_len,
                              "decode_len": decode_len})


PREFILL_PARTS = {"mla_tp1": "mla_tp1_ms", "mla_tp4": "mla_tp4_ms", "mla_tp8": "mla_tp8_ms", "tp_mla": "tp_mla_ms",
                 "dense_mlp": "dense_mlp_ms", "shared_expert": "shared_expert_ms", "routed_expert": "routed_expert_ms",
                 "dispatch": "dispatch_ms", "combine": "combine_ms", "sum_overlap": "sum_overlap_ms", "sum": "sum_ms"}


@udf("PREFILL_MS(gpu, part, [tp=4], [seq_len=4383], [kv_cache_rate=0.563])", "=PREFILL_MS(\"H800\", \"tp_mla\")",
     gpu=GPU_DOC, part="One of " + ", ".join(PREFILL_PARTS), tp="MLA TP of the deployment (DP = 32 / TP)",
     seq_len="Prompt tokens", kv_cache_rate="Share of prompt tokens served from cache, 0..1")
def PREFILL_MS(gpu, part, tp=4, seq_len=ARTICLE_SEQ_LEN, kv_cache_rate=0.563):  # noqa: N802
    """A prefill per-layer time or whole-model total, ms (article section 2)."""
    key = PREFILL_PARTS[choose("part", part, tuple(PREFILL_PARTS))]
    return _out(_prefill(gpu, tp, seq_len, kv_cache_rate)[key])


@udf("PREFILL_TPS(gpu, [tp=4], [seq_len=4383], [kv_cache_rate=0.563], [overlap=TRUE])", "=PREFILL_TPS(\"H800\")",
     gpu=GPU_DOC, tp="MLA TP of the deployment", seq_len="Prompt tokens", kv_cache_rate="0..1",
     overlap="FALSE exposes the all-to-all")
def PREFILL_TPS(gpu, tp=4, seq_len=ARTICLE_SEQ_LEN, kv_cache_rate=0.563, overlap=True):  # noqa: N802
    """Prefill throughput per node, tokens/s (article section 2.5)."""
    q = _prefill(gpu, tp, seq_len, kv_cache_rate)
    return _out(q["tps_overlap_node"] if _bool("overlap", overlap, True) else q["tps_node"])


def _prefill(gpu: Any, tp: Any, seq_len: Any, kv_cache_rate: Any) -> dict[str, Any]:
    from dsxl.article.api import prefill_breakdown

    g = _gpu(gpu)
    t = int(_number("tp", tp, TP, 4))
    scen = load_catalog().scenario
    gpus = scen.num_node * scen.gpu_per_node
    if gpus % t:
        raise ValueError(f"tp must divide the deployment's {gpus} GPUs (DP = {gpus} / TP); got {t}")
    s = _number("seq_len", seq_len, SCENARIO_RANGES["seq_len"], ARTICLE_SEQ_LEN)
    r = _number("kv_cache_rate", kv_cache_rate, RATE, scen.kv_cache_rate)
    return prefill_breakdown(g, t, replace(scen, seq_len=s, kv_cache_rate=r))


@udf("KV_BYTES_PER_TOKEN([kv_fp16=FALSE])", "=KV_BYTES_PER_TOKEN()", kv_fp16="TRUE for an FP16 KV cache")
def KV_BYTES_PER_TOKEN(kv_fp16=False):  # noqa: N802
    """Latent KV cache bytes per token over all layers (576 values per layer)."""
    from dsxl.physics.memory import latent_kv_bytes_per_token
    m = load_catalog().model()
    return float(latent_kv_bytes_per_token(m.kv_lora_rank, m.qk_rope_head_dim, m.n_layers,
                                           2 if _bool("kv_fp16", kv_fp16, False) else 1))


@udf("DENSE_MLP_FLOPS(tokens)", "=DENSE_MLP_FLOPS(1)", vectorised=("tokens",), tokens="Tokens (>= 0)")
def DENSE_MLP_FLOPS(tokens):  # noqa: N802
    """DenseMLP GFLOPs for a number of tokens."""
    from dsxl.article.api import dense_mlp_gflops
    return _each_cell(lambda a: _out(dense_mlp_gflops(_number("tokens", a["tokens"], TOKENS))), {"tokens": tokens})


@udf("EXPERT_FLOPS(tokens)", "=EXPERT_FLOPS(8)", vectorised=("tokens",), tokens="Tokens (>= 0)")
def EXPERT_FLOPS(tokens):  # noqa: N802
    """One MoE expert's GFLOPs for a number of tokens."""
    from dsxl.article.api import expert_gflops
    return _each_cell(lambda a: _out(expert_gflops(_number("tokens", a["tokens"], TOKENS))), {"tokens": tokens})


@udf("GPU_SPEC(gpu, field)", "=GPU_SPEC(\"B200\", \"mem_bw\")", gpu=GPU_DOC,
     field=", ".join(GPU_FIELDS + ("generation", "source")))
def GPU_SPEC(gpu, field):  # noqa: N802
    """One datasheet field of a GPU (catalog or range); text for 'generation' and 'source', a number otherwise."""
    g = _gpu(gpu)
    names = [f.name for f in fields(GPU) if f.name not in ("name", "kind")]
    f = choose("field", field, tuple(names))
    value = getattr(g, f)
    if value is None:
        raise ValueError(f"{g.name} has no {f} figure in the catalog")
    return value if isinstance(value, str) else float(value)


PREDICT_DECODE_OUTPUTS = ("tpot_ms", "tokens_per_s_per_user", "tokens_per_s_per_gpu", "max_batch", "fits", "step_ms",
                          "weights_gb", "band", "watts_per_gpu", "joules_per_token", "facility_kw_per_instance")
PREDICT_PREFILL_OUTPUTS = ("tokens_per_s_per_gpu", "ttft_ms", "step_ms", "computed_tokens_per_s", "fits", "weights_gb",
                           "band", "watts_per_gpu", "joules_per_token", "facility_kw_per_instance")


CALIBRATION_DOC = "Path of a profile written by dsxl calibrate (blank: the shipped model)"


def _predict_udf(phase: str, gpu: Any, what: Any, outputs: tuple[str, ...], model: Any, numbers: dict[str, Any],
                 texts: dict[str, Any], tbo: Any, calibration: Any = None) -> Any:
    key = choose("what", what, outputs, outputs[0])
    profile = None if _blank(calibration) else str(calibration).strip()  # loaded once per path and mtime
    call = lambda cells: _predict_cells(phase, gpu, key, model, cells, texts, tbo, profile)  # noqa: E731
    ranges = {n: v for n, v in numbers.items() if isinstance(v, (list, tuple, np.ndarray))}
    if key == "band" and ranges:  # a band per cell: each cell's batch and context set its distance from the rows
        return _per_cell(lambda cell: call({**numbers, **cell}), ranges)
    return _each_cell(call, numbers)


def _predict_cells(phase: str, gpu: Any, key: str, model: Any, numbers: dict[str, Any], texts: dict[str, Any],
                   tbo: Any, calibration: str | None = None) -> Any:
    """One predict call for a cell or a range of cells; booleans stay booleans."""
    from dsxl.inputs.request import OPTION
    from dsxl.refined.predict import SPEEDS, predict

    opts: dict[str, Any] = {}
    for name, value in numbers.items():
        o = OPTION[name]
        if o.auto and (_blank(value) or (isinstance(value, str) and value.strip().lower() == "auto")):
            opts[name] = "auto"
        else:
            opts[name] = _number(name, value, o.rng, o.default)
    _shape(*[v for v in opts.values() if not isinstance(v, str)])
    for name, value in texts.items():
        if not (_blank(value) and OPTION[name].default is None):  # else the model's or the engine's own default
            opts[name] = choose(name, value, OPTION[name].choices, OPTION[name].default)
    m = None if _blank(model) else str(model).strip()
    r = predict(phase, _gpu(gpu), m, tbo=None if _blank(tbo) else _bool("tbo", tbo, True), calibration=calibration,
                **opts)
    if r.get(key, 0) is None:  # a speed of a configuration that does not fit
        return "does not fit"
    if key == "band":  # the expected relative error of this configuration
        return float(r["accuracy"]["band"])
    v = np.asarray(r[key])
    if key == "fits":
        return bool(v) if v.ndim == 0 else _as_grid(v).astype(bool).tolist()
    if key in SPEEDS and np.ndim(r["fits"]):  # a range: a speed is a number only in the cells that fit
        fits = _as_grid(r["fits"]).astype(bool)
        speeds = np.broadcast_to(_as_grid(np.asarray(v, dtype=float)), fits.shape)  # object cells: floats stay floats
        return np.where(fits, speeds, "does not fit").tolist()
    return _out(np.asarray(v, dtype=float))


def _per_cell(one: Any, ranges: dict[str, Any]) -> list[list[Any]]:
    """Evaluate ``one`` for every cell of the broadcast ranges (a column with a row makes a grid); a cell whose
    inputs break a rule gets "#VALUE! " and the message, the others their value (booleans stay booleans)."""
    cells = _grids(ranges)
    shape = next(iter(cells.values())).shape
    out, messages = [], set()
    for i in range(shape[0]):
        row = []
        for j in range(shape[1]):
            try:
                value = one({n: (None if a[i, j] is None else a[i, j]) for n, a in cells.items()})
                row.append(value[0][0] if isinstance(value, list) else value)
            except ValueError as exc:
                messages.add(str(exc))
                row.append(f"#VALUE! {exc}")
        out.append(row)
    if len(messages) == 1 and all(isinstance(v, str) and v.startswith("#VALUE! ") for row in out for v in row):
        raise ValueError(messages.pop())  # every cell fails alike: an argument that is not a range is wrong
    return out


@udf("PREDICT_DECODE(gpu, ep, batch, kv_len, [what=\"tpot_ms\"], [attn_tp=1], [tbo=auto], [mtp_draft=0], "
     "[mtp_accept=1], [attn_dtype=\"fp8\"], [kv_dtype=\"fp8\"], [moe_dtype=the model's], [imbalance=1], "
     "[redundant_experts=\"auto\"], [model=\"deepseek_v3\"], [moe_tp=1], [engine=\"sglang\"], [calibration=\"\"])",
     "=PREDICT_DECODE(\"H800\", 128, 128, 4096, \"tokens_per_s_per_gpu\")",
     vectorised=("ep", "batch", "kv_len", "attn_tp", "moe_tp", "mtp_draft", "mtp_accept", "imbalance",
                 "redundant_experts"),
     gpu=GPU_DOC,
     ep="Expert-parallel GPUs", batch="Sequences per attention rank (attn_tp GPUs)",
     kv_len="Mean context per sequence, tokens",
     what="One of " + ", ".join(PREDICT_DECODE_OUTPUTS) + " (band: expected relative error)",
     attn_tp="Attention TP (1 = data parallel)", tbo="Two-batch overlap (blank: auto, on where it makes the step faster)",
     mtp_draft="MTP draft tokens", mtp_accept="Tokens emitted per step, 1..1+draft",
     attn_dtype="fp8 or bf16", kv_dtype="fp8 or bf16", moe_dtype="fp8 or fp4", imbalance="Expert load max/mean",
     redundant_experts="Redundant expert replicas (auto: the fewest that divide)", model="Preset id (dsxl models)",
     moe_tp="MoE tensor parallelism (GPUs per expert)", engine="sglang, trtllm or vllm", calibration=CALIBRATION_DOC)
def PREDICT_DECODE(gpu, ep, batch, kv_len, what="tpot_ms", attn_tp=1, tbo=None, mtp_draft=0, mtp_accept=1,  # noqa: N802
                   attn_dtype="fp8", kv_dtype="fp8", moe_dtype=None, imbalance=1, redundant_experts=None, model=None,
                   moe_tp=1, engine=None, calibration=None):
    """Refined decode prediction on datasheet hardware (TPOT ms, tokens/s, max batch, fits, band ...)."""
    return _predict_udf("decode", gpu, what, PREDICT_DECODE_OUTPUTS, model,
                        {"ep": ep, "batch": batch, "kv_len": kv_len, "attn_tp": attn_tp, "moe_tp": moe_tp,
                         "mtp_draft": mtp_draft, "mtp_accept": mtp_accept, "imbalance": imbalance,
                         "redundant_experts": redundant_experts},
                        {"attn_dtype": attn_dtype, "kv_dtype": kv_dtype, "moe_dtype": moe_dtype, "engine": engine}, tbo,
                        calibration)


@udf("PREDICT_PREFILL(gpu, ep, tokens_per_gpu, prompt_len, [what=\"tokens_per_s_per_gpu\"], [attn_tp=1], "
     "[tbo=auto], [cache_hit=0], [attn_dtype=\"fp8\"], [kv_dtype=\"fp8\"], [moe_dtype=the model's], [imbalance=1], "
     "[redundant_experts=\"auto\"], [model=\"deepseek_v3\"], [moe_tp=1], [engine=\"sglang\"], [calibration=\"\"])",
     "=PREDICT_PREFILL(\"H800\", 32, 16384, 4096)",
     vectorised=("ep", "tokens_per_gpu", "prompt_len", "attn_tp", "moe_tp", "cache_hit", "imbalance",
                 "redundant_experts"),
     gpu=GPU_DOC, ep="Expert-parallel GPUs",
     tokens_per_gpu="Prompt tokens per GPU per forward", prompt_len="Prompt length, tokens",
     what="One of " + ", ".join(PREDICT_PREFILL_OUTPUTS), attn_tp="Attention TP (1 = data parallel)",
     tbo="Two-batch overlap", cache_hit="Share of prompt tokens from the prefix cache, 0..1",
     attn_dtype="fp8 or bf16", kv_dtype="fp8 or bf16", moe_dtype="fp8 or fp4", imbalance="Expert load max/mean",
     redundant_experts="Redundant expert replicas (auto: the fewest that divide)", model="Preset id (dsxl models)",
     moe_tp="MoE tensor parallelism (GPUs per expert)", engine="sglang, trtllm or vllm", calibration=CALIBRATION_DOC)
def PREDICT_PREFILL(gpu, ep, tokens_per_gpu, prompt_len, what="tokens_per_s_per_gpu", attn_tp=1, tbo=None,  # noqa: N802
                    cache_hit=0, attn_dtype="fp8", kv_dtype="fp8", moe_dtype=None, imbalance=1, redundant_experts=None,
                    model=None, moe_tp=1, engine=None, calibration=None):
    """Refined prefill prediction (input tokens/s per GPU, TTFT ms, step ms, fits, band ...)."""
    return _predict_udf("prefill", gpu, what, PREDICT_PREFILL_OUTPUTS, model,
                        {"ep": ep, "tokens_per_gpu": tokens_per_gpu, "prompt_len": prompt_len, "attn_tp": attn_tp,
                         "moe_tp": moe_tp, "cache_hit": cache_hit, "imbalance": imbalance,
                         "redundant_experts": redundant_experts},
                        {"attn_dtype": attn_dtype, "kv_dtype": kv_dtype, "moe_dtype": moe_dtype, "engine": engine}, tbo,
                        calibration)


@udf("DSXL_TABLE(table_id)", "=DSXL_TABLE(\"decode_totals\")", spread=False,
     table_id="An article table id, e.g. decode_totals")
def DSXL_TABLE(table_id):  # noqa: N802
    """An article table with its labels as a 2-D array (spills in dynamic-array Excel)."""
    from dsxl.article.tables import compute_tables, table_ids

    if not isinstance(table_id, str) or table_id.strip() not in table_ids():
        refuse("table_id", table_id, table_ids())
    df = compute_tables(ids=[table_id.strip()])[table_id.strip()]
    head = [df.index.name or ""] + [str(c) for c in df.columns]
    rows = [[str(label)] + [v if isinstance(v, str) else float(v) for v in row]
            for label, row in zip(df.index, df.itertuples(index=False))]
    return [head] + rows


__all__ = [name for name, *_ in UDF_CATALOG]
