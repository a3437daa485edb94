"""Launch recipes: the engine commands that run a plan's prefill and decode instances.

``recipe(plan_result, engine)`` turns the cheapest GPU's plan into one command per instance size and role, using
only the flags recorded in ``templates/recipes/<engine>.json`` (each list taken from that engine's server-arguments
code at the version it names; a test checks every emitted flag against it). Multi-node instances get the engine's
node-rank arguments with ``$HEAD`` and ``$RANK`` for the operator to fill in.
"""

from __future__ import annotations

import json
import shlex
import textwrap
from functools import lru_cache
from typing import Any

from dsxl.core.shell import continued
from dsxl.data.catalog import default_engine, load_catalog, load_engines, read_template_text
from dsxl.core.rules import refuse


def _memory(builder: Any, number: str) -> float:
    """The memory budget the refined model sized KV with for a builder's engine (engines.json mem_util,
    kv_free_share)."""
    engine = next(name for name, b in BUILDERS.items() if b is builder)
    return load_engines()[engine].numbers[number]


@lru_cache(maxsize=None)
def recorded(engine: str) -> dict[str, Any]:
    """The recorded flag list of an engine (``templates/recipes/<engine>.json``)."""
    if engine not in RECIPE_ENGINES:
        refuse("recipe engine", engine, RECIPE_ENGINES)
    return json.loads(read_template_text(f"recipes/{engine}.json"))


def model_path(model: str) -> str:
    """The checkpoint to load, quoted for a shell: a preset's Hugging Face repository, or the folder of a
    config.json."""
    presets = json.loads(read_template_text("models.json"))
    if model in presets:
        return shlex.quote(presets[model]["hf_repo"])
    return shlex.quote(str(model).rsplit("/", 1)[0] if "/" in str(model) else ".")


def _json_arg(value: Any) -> str:
    """A JSON option value as one shell word."""
    return shlex.quote(json.dumps(value))


def _nodes(gpus: int, per_node: int) -> int:
    return max(-(-gpus // per_node), 1)


def _sglang(role: str, c: dict[str, Any], model: str, per_node: int) -> list[str]:
    gpus = c["ep"]
    args = ["--model-path", model_path(model), "--trust-remote-code", "--tp-size", gpus, "--ep-size", gpus]
    if c["attn_tp"] < gpus:
        args += ["--dp-size", gpus // c["attn_tp"], "--enable-dp-attention"]
    if gpus > 1:
        args += ["--moe-a2a-backend", "deepep", "--deepep-mode", "low_latency" if role == "decode" else "normal",
                 "--ep-num-redundant-experts", c.get("redundant_experts", 0)]
    if c["tbo"]:
        args += ["--enable-two-batch-overlap"]
    if role == "decode" and c.get("mtp_draft"):
        args += ["--speculative-algorithm", "EAGLE", "--speculative-num-steps", c["mtp_draft"],
                 "--speculative-eagle-topk", 1, "--speculative-num-draft-tokens", c["mtp_draft"] + 1]
    args += ["--kv-cache-dtype", "fp8_e4m3", "--mem-fraction-static", _memory(_sglang, "mem_util"),
             "--disaggregation-mode", role, "--disaggregation-transfer-backend", "mooncake"]
    if role == "decode":
        args += ["--cuda-graph-max-bs", c["batch"], "--max-running-requests", c["batch"] * gpus // c["attn_tp"]]
    else:
        args += ["--chunked-prefill-size", c["tokens_per_forward"] * gpus // c["attn_tp"]]
    nodes = _nodes(gpus, per_node)
    if nodes > 1:
        args += ["--nnodes", nodes, "--node-rank", "$RANK", "--dist-init-addr", "$HEAD:5000"]
    return ["python -m sglang.launch_server " + " ".join(map(str, args))]


def _vllm(role: str, c: dict[str, Any], model: str, per_node: int) -> list[str]:
    gpus, tp = c["ep"], c["attn_tp"]
    dp = gpus // tp
    args = [model_path(model), "--trust-remote-code", "--tensor-parallel-size", tp, "--data-parallel-size", dp]
    if gpus > 1:
        args += ["--enable-expert-parallel", "--all2all-backend",
                 "deepep_low_latency" if role == "decode" else "deepep_high_throughput"]
        if c.get("redundant_experts"):
            args += ["--enable-eplb", "--eplb-config", _json_arg({"num_redundant_experts": c["redundant_experts"]})]
    if c["tbo"]:
        args += ["--enable-dbo"]
    if role == "decode" and c.get("mtp_draft"):
        args += ["--speculative-config", _json_arg({"method": "deepseek_mtp", "num_speculative_tokens": c["mtp_draft"]})]
    args += ["--kv-cache-dtype", "fp8", "--gpu-memory-utilization", _memory(_vllm, "mem_util"), "--kv-transfer-config",
             _json_arg({"kv_connector": "NixlConnector", "kv_role": "kv_both"})]
    args += ["--max-num-seqs", c["batch"]] if role == "decode" else ["--max-num-batched-tokens", c["tokens_per_forward"] * tp]
    nodes = _nodes(gpus, per_node)
    head = "vllm serve " + " ".join(map(str, args))
    if nodes == 1:
        return [head]
    # one launch per node: the head (node 0) serves the API; every other node runs headless from its start rank
    local = ["--data-parallel-size-local", dp // nodes, "--data-parallel-address", "$HEAD",
             "--data-parallel-rpc-port", 13345]
    worker = local + ["--data-parallel-start-rank", f'"$((RANK * {dp // nodes}))"', "--headless"]
    return ["# node 0 (head, serves the API):", head + " " + " ".join(map(str, local)),
            f"# nodes 1..{nodes - 1} ($RANK = 1..{nodes - 1}):", head + " " + " ".join(map(str, worker))]


def _trtllm(role: str, c: dict[str, Any], model: str, per_node: int) -> list[str]:
    gpus = c["ep"]
    experts = load_catalog().model(model).n_routed_experts + c.get("redundant_experts", 0)
    yaml = [f"enable_attention_dp: {'true' if c['attn_tp'] == 1 else 'false'}",
            "moe_config:", "  backend: WIDEEP", "  load_balancer:", f"    num_slots: {experts}"]
    if role == "decode" and c.get("mtp_draft"):
        yaml += ["speculative_config:", "  decoding_type: MTP", f"  num_nextn_predict_layers: {c['mtp_draft']}"]
    yaml += ["kv_cache_config:", "  dtype: fp8", f"  free_gpu_memory_fraction: {_memory(_trtllm, 'kv_free_share')}",
             "cache_transceiver_config:", "  backend: DEFAULT",
             f"disable_overlap_scheduler: {'false' if role == 'decode' else 'true'}"]
    if role == "decode":
        yaml += ["cuda_graph_config:", f"  max_batch_size: {c['batch']}"]
    name = f"{role}_ep{gpus}.yaml"
    launch = "trtllm-llmapi-launch " if _nodes(gpus, per_node) > 1 else ""
    size = ["--max_batch_size", c["batch"]] if role == "decode" else ["--max_num_tokens", c["tokens_per_forward"]]
    cmd = (f"{launch}trtllm-serve {model_path(model)} --trust_remote_code --tp_size {gpus} --ep_size {gpus} "
           f"{' '.join(map(str, size))} --extra_llm_api_options {name}")
    return [f"cat > {name} <<'EOF'\n" + "\n".join(yaml) + "\nEOF", cmd]


BUILDERS = {"sglang": _sglang, "vllm": _vllm, "trtllm": _trtllm}  # launch-command shapes; their flags are data
RECIPE_ENGINES = tuple(BUILDERS)


def recipe(plan_result: dict[str, Any], engine: str | None = None, gpu: str | None = None) -> dict[str, Any]:
    """``{engine, version, gpu, prefill, decode}``: per pool, one entry per instance size with its count, nodes and
    the commands (or config file and command) that start one instance. ``engine`` defaults to the catalog's
    (``engines.json``), ``gpu`` to the cheapest."""
    engine = engine or default_engine()
    spec = recorded(engine)
    key = gpu or (plan_result["ranking"][0] if plan_result["ranking"] else None)
    if key is None or not plan_result["gpus"][key]["feasible"]:
        raise ValueError("recipe needs a feasible plan; this one has none (see its reason)")
    x = plan_result["gpus"][key]
    model = plan_result["inputs"]["model"]
    per_node = plan_result["inputs"]["gpu_per_node"]
    out: dict[str, Any] = {"engine": engine, "version": spec["version"], "source": spec["source"], "gpu": key}
    for role in ("prefill", "decode"):
        pool = x[role]
        if pool is None:
            out[role] = None
            continue
        out[role] = [{"gpu": pool["gpu"], "instances": m["instances"], "gpus_per_instance": m["ep"],
                      "nodes_per_instance": _nodes(m["ep"], per_node),
                      "commands": BUILDERS[engine](role, m, model, per_node)} for m in pool["mix"]]
    return out


def recipe_text(r: dict[str, Any]) -> str:
    lines = ["", *textwrap.wrap(f"Launch recipe: {recorded(r['engine'])['label']} {r['version']} (flags from "
                                f"{r['source']})", 120, subsequent_indent="  ")]
    for role in ("prefill", "decode"):
        for part in r[role] or []:
            lines += ["", f"# {role}: {part['instances']} instance(s) of {part['gpus_per_instance']} x {part['gpu']} "
                          f"({part['nodes_per_instance']} node(s) each; $HEAD = first node's address, $RANK = node rank)"]
            lines += _fitted(part["commands"])
    return "\n".join(lines) + "\n"


def _fitted(commands: list[str], width: int = 120) -> list[str]:
    """Command lines within ``width`` columns (backslash continuations); a here-document (several lines) stays as
    written."""
    return [line for command in commands
            for line in ([command] if "\n" in command else continued(command, width))]


__all__ = ["RECIPE_ENGINES", "recipe", "recipe_text", "recorded"]
