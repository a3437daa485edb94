"""The catalog loaded from the editable data in ``templates/``: GPUs, models, the article's scenario, the refined
constants per GPU generation and the engine profiles, as typed records (:mod:`dsxl.data.records`).
"""

from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

from dsxl.data.records import GPU, ModelArgs, Scenario, generations, read_template_text  # noqa: F401 (re-exported)
from dsxl.core.rules import GPU_FIELDS, GPU_RANGES, parse_optional_number, refuse


@dataclass(frozen=True)
class EPStrategy:
    """An EP degree of the article's decode tables; redundant experts are derived from the model's expert count."""

    name: str
    ep: int
    source: str = ""


@dataclass(frozen=True)
class NetworkVariant:
    label: str
    input: str  # the Scenario field holding its pcie_bw
    source: str = ""


@dataclass(frozen=True)
class Catalog:
    gpus: dict[str, GPU]
    datasheets: dict[str, dict[str, Any]]
    models: dict[str, ModelArgs]
    scenario: Scenario
    network_variants: tuple[NetworkVariant, ...]
    ep_strategies: tuple[EPStrategy, ...] = field(default_factory=tuple)
    article_tables: dict[str, Any] = field(default_factory=dict)
    article_hardware: dict[str, dict[str, Any]] = field(default_factory=dict)  # GPU -> fields the article models
    default_model: str = ""  # the article's model (scenarios.json), the default everywhere
    default_gpu: str = ""  # where a request names no GPU (scenarios.json defaults)
    spare_gpu_template: str = ""  # the workbook's spare catalog rows start as this GPU
    model_prices: dict[str, dict[str, Any]] = field(default_factory=dict)  # preset -> list prices ($/M tokens)

    def model(self, name: "str | ModelArgs | None" = None) -> ModelArgs:
        """A preset by id, a Hugging Face config.json by path, or the default model."""
        if isinstance(name, ModelArgs):
            return name
        name = name or self.default_model
        if not isinstance(name, str):
            refuse("model", name, self.models, " or a path to a config.json")
        for key, preset in self.models.items():
            if key.lower() == name.strip().lower():
                return preset
        if str(name).endswith(".json"):
            from dsxl.data.hf_config import load_model
            return load_model(name)
        refuse("model", name, self.models, " or a path to a config.json")

    def article_view(self, gpu: GPU, scenario: Scenario | None = None, keep: tuple[str, ...] = ()) -> GPU:
        """``gpu`` as the article modelled it (see :func:`article_gpu`); fields in ``keep`` stay as given."""
        share = (scenario or self.scenario).tflops_share
        overrides = tuple((k, v) for k, v in self.article_hardware.get(gpu.name, {}).items() if k not in keep)
        return _article_gpu_cached(gpu, share, overrides)

    def gpu(self, name: str) -> GPU:
        """Look a GPU up by name, case-insensitively."""
        if not isinstance(name, str):
            refuse("gpu", name, self.gpus)
        for key, gpu in self.gpus.items():
            if key.lower() == str(name).strip().lower():
                return gpu
        refuse("gpu", name, self.gpus)


def _read_csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(read_template_text(name).splitlines()))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The shipped catalog: hardware, article datasheets, model presets and the article scenario."""
    gpus = {}
    for row in _read_csv("hardware.csv"):
        values = {k: parse_optional_number(f"hardware.csv {row['name']}.{k}", row[k]) for k in GPU_FIELDS}
        gpus[row["name"]] = GPU(name=row["name"], kind=row["kind"], generation=row["generation"],
                                source=row["source"], **values)
    datasheets = {row["name"]: {k: (v if k in ("name", "source") else parse_optional_number(k, v))
                                for k, v in row.items()}
                  for row in _read_csv("article_datasheets.csv")}
    arg_names = {f.name for f in fields(ModelArgs)}
    presets = json.loads(read_template_text("models.json"))
    models = {name: ModelArgs(**{k: v for k, v in args.items() if k in arg_names}) for name, args in presets.items()}
    scen = json.loads(read_template_text("scenarios.json"))
    article = {k: v for k, v in scen["article"].items() if k not in ("source", "hardware", "model")}
    article["batch_sizes"] = tuple(article["batch_sizes"])
    return Catalog(
        gpus=gpus,
        datasheets=datasheets,
        models=models,
        scenario=Scenario(**article),
        network_variants=tuple(NetworkVariant(**v) for v in scen["network_variants"]),
        ep_strategies=tuple(EPStrategy(**e) for e in scen["ep_strategies"]),
        article_tables={k: v for k, v in scen["article_tables"].items() if k != "source"},
        article_hardware={k: v for k, v in scen["article"]["hardware"].items() if k != "source"},
        default_model=scen["article"]["model"],
        default_gpu=scen["defaults"]["gpu"],
        spare_gpu_template=scen["defaults"]["spare_gpu_template"],
        model_prices={name: args["prices"] for name, args in presets.items() if "prices" in args},
    )


@lru_cache(maxsize=256)
def _article_gpu_cached(gpu: GPU, tflops_share: Any, overrides: tuple) -> GPU:
    return article_gpu(gpu, tflops_share, dict(overrides))


def article_gpu(gpu: GPU, tflops_share: Any, overrides: dict[str, Any] | None = None) -> GPU:
    """A GPU as the article's model sees it: ``tflops_share`` of the datasheet TFLOPS (the article used 80 %)
    and the article's own figures where it departs from the datasheet (``overrides``, e.g. H20 NVLink 400)."""
    try:
        return replace(gpu, fp16_flops=gpu.fp16_flops * tflops_share, fp8_flops=gpu.fp8_flops * tflops_share,
                       **(overrides or {}))
    except ValueError as exc:  # name the value the user gave, not the scaled one the article models
        if not any(f"{gpu.name}.{f} " in str(exc) for f in ("fp16_flops", "fp8_flops")):
            raise
        field = "fp16_flops" if f"{gpu.name}.fp16_flops " in str(exc) else "fp8_flops"
        lo = GPU_RANGES[field].lo
        raise ValueError(f"{gpu.name}.{field} must be at least {lo / tflops_share:g} here: the article models "
                         f"tflops_share ({tflops_share:g}) of it, which must be at least {lo:g}; got "
                         f"{getattr(gpu, field):g}") from None


def network_variant_gpu(base: GPU, variant: NetworkVariant, scenario: Scenario) -> GPU:
    """A network variant (e.g. ``H20-1.6T``): every field of ``base`` but its own ``pcie_bw``."""
    return replace(base, name=f"{base.name}-{variant.label}", pcie_bw=getattr(scenario, variant.input))


@dataclass(frozen=True)
class RefinedConstant:
    """One constant of the refined model: a value per GPU generation, its unit and its source."""

    name: str
    unit: str
    values: dict[str, float]  # generation -> value
    sources: dict[str, str]  # generation -> source (inherited values say so)


# A calibration profile's values while a workbook is built from it (see :func:`overridden`).
_OVERRIDES: dict[str, dict] = {"constants": {}, "engines": {}}


@contextmanager
def overridden(constants: dict[str, dict[str, tuple[float, str]]], engines: dict[str, dict[str, tuple[float, str]]]):
    """Within the block, refined constants (name -> generation -> (value, source)) and engine numbers
    (engine -> field -> (value, source)) read as given: how ``dsxl build --calibration`` writes a profile's values
    into the workbook's Constants sheet and engine lookups."""
    _OVERRIDES.update(constants=constants, engines=engines)
    load_refined.cache_clear()
    load_engines.cache_clear()
    try:
        yield
    finally:
        _OVERRIDES.update(constants={}, engines={})
        load_refined.cache_clear()
        load_engines.cache_clear()


@lru_cache(maxsize=1)
def attention_kernels() -> dict[str, str]:
    """The attention kernel each GPU generation's constants come from (``refined.json`` ``attention_kernels``),
    by generation: the name a breakdown labels its attention with."""
    data = json.loads(read_template_text("refined.json"))
    return {gen: data["attention_kernels"][gen]["name"] for gen in data["generations"]}


@lru_cache(maxsize=1)
def load_refined() -> dict[str, RefinedConstant]:
    """The refined model's constants (``templates/refined.json``), resolved for every GPU generation."""
    data = json.loads(read_template_text("refined.json"))
    out = {}
    for name, spec in data["constants"].items():
        own = spec.get("by_generation", {})
        values, sources = {}, {}
        for gen in data["generations"]:
            if gen in own:
                values[gen], sources[gen] = own[gen]["value"], own[gen]["source"]
            else:
                values[gen] = spec["value"]
                sources[gen] = spec["source"] if gen == "hopper" else f"as Hopper (no {gen} kernel data): {spec['source']}"
        out[name] = RefinedConstant(name, spec["unit"], values, sources)
    for name, p in load_fit()["parameters"].items():  # the joint fit's values (templates/fitted.json)
        value, why = fitted_value(name)
        if p["kind"] == "constant":
            target = out[p.get("target", name)]
            for gen in p["generations"]:
                target.values[gen], target.sources[gen] = value, why
        elif p["kind"] == "kernel_share":
            for target in p["scales"]:
                for gen in p["generations"]:
                    out[target].values[gen] = round(out[target].values["hopper"] * value, 6)
                    out[target].sources[gen] = (f"no kernel rows: Hopper's x {name} {value:g} "
                                                f"({why.split(':')[0]})")
    for name, by_gen in _OVERRIDES["constants"].items():
        for gen, (value, why) in by_gen.items():
            out[name].values[gen], out[name].sources[gen] = value, why
    return out


FUSED_MOE_TOKENS = (1, 512, 8192, 32768)  # the tokens per rank DeepGEMM's Mega MoE table measures


@lru_cache(maxsize=1)
def load_fused_moe() -> dict[str, dict[str, Any]]:
    """Measured fused-MoE kernels (``templates/fused_moe.csv``): per model, the GPU generation and EP size they were
    measured on and the time per MoE layer per rank (us) at each of :data:`FUSED_MOE_TOKENS` tokens per rank."""
    out: dict[str, dict[str, Any]] = {}
    for r in _read_csv("fused_moe.csv"):
        entry = out.setdefault(r["model"], {"generation": r["generation"], "ep": int(r["ep"]), "us": {}})
        entry["us"][int(r["tokens_per_rank"])] = float(r["us"])
    for name, entry in out.items():
        if tuple(sorted(entry["us"])) != FUSED_MOE_TOKENS:
            raise ValueError(f"fused_moe.csv: {name} must give {', '.join(map(str, FUSED_MOE_TOKENS))} tokens per rank")
    return out


@lru_cache(maxsize=1)
def load_fit() -> dict[str, Any]:
    """``templates/fitted.json``: the jointly fitted parameters (declared priors, bounds and scope; fitted values
    with standard errors; each calibration row's and corpus group's fitted and leave-one-group-out error)."""
    return json.loads(read_template_text("fitted.json"))


def fitted_value(name: str) -> tuple[float, str]:
    """(value, source) of a fitted parameter: the fit's value where it released it, else its prior."""
    data = load_fit()
    p, fit = data["parameters"][name], data.get("fit", {}).get(name)
    if fit is None or not fit.get("released"):
        why = fit["why_kept"].split(":")[0] if fit else "not fitted yet"
        return p["prior"], f"prior, {why} by the joint fit: {p['why']}"
    pinned = ", ".join(fit["groups"])
    return fit["value"], (f"fitted jointly, standard error {fit['relative_se'] * 100:.0f} % (pinned by {pinned}): "
                          f"{p['why']}")


@dataclass(frozen=True)
class Engine:
    """A serving engine's documented behaviour (``templates/engines.json``): numeric fields the refined chain
    reads, text fields that describe, each field's source."""

    name: str
    label: str
    numbers: dict[str, float]  # ENGINE_NUMBERS
    text: dict[str, str]
    sources: dict[str, str]


ENGINE_NUMBERS = ("micro_batch_overlap", "single_batch_overlap", "decode_graphs", "step_overhead_ms",
                  "request_overhead_us", "mixed_prefill", "prefill_chunk_tokens", "tbo_min_tokens",
                  "tbo_min_prefill_tokens", "chunk_split_by_dp", "mem_util", "kv_free_share")


@lru_cache(maxsize=1)
def load_engines() -> dict[str, Engine]:
    data = json.loads(read_template_text("engines.json"))
    out = {}
    for name, spec in data["engines"].items():
        fields_ = {k: v for k, v in spec.items() if k != "label"}
        numbers = {k: fields_[k]["value"] for k in ENGINE_NUMBERS}
        params = load_fit()["parameters"]
        for key, p in params.items():  # the joint fit's value for this engine
            if p["kind"] == "engine" and name in p["engines"]:
                value, why = fitted_value(key)
                numbers[p["target"]], fields_[p["target"]] = value, dict(fields_[p["target"]], source=why)
        for field_, (value, why) in _OVERRIDES["engines"].get(name, {}).items():
            numbers[field_], fields_[field_] = value, dict(fields_[field_], source=why)
        out[name] = Engine(name, spec["label"], numbers,
                           {k: v["value"] for k, v in fields_.items() if k not in ENGINE_NUMBERS},
                           {k: v["source"] for k, v in fields_.items()})
    return out


def default_engine() -> str:
    return json.loads(read_template_text("engines.json"))["default"]
