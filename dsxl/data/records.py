"""Typed records of the catalog: a model's architecture, a GPU's datasheet, the article's scenario. Each checks
its own fields against the declared input rules (:mod:`dsxl.core.rules`) when it is built; the workbook builder puts
formula references (:class:`dsxl.core.expr.Expr`) in the same fields, which is why the checks skip Expr values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from importlib import resources
import os
from pathlib import Path
from typing import Any

from dsxl.core.rules import (GPU_RANGES, GPU_RULES, MODEL_COUNT, MODEL_RANGES, MODEL_RULES, SCENARIO_RANGES, Range,
                               broken_rule, check, show)


TEMPLATES_ENV = "DSXL_TEMPLATES"  # a folder holding the catalogs in place of the shipped ones (README: Extending)


def _templates_dir() -> Path:
    if os.environ.get(TEMPLATES_ENV):
        return Path(os.environ[TEMPLATES_ENV])
    try:
        return Path(str(resources.files("dsxl.templates")))
    except ModuleNotFoundError:  # running from a source tree (dsxl/data/records.py -> the repository's templates/)
        return Path(__file__).resolve().parents[2] / "templates"


def read_template_text(name: str) -> str:
    return (_templates_dir() / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class ModelArgs:
    """An MLA + MoE architecture of the DeepSeek-V3 family (the article's ``ModelArgs`` plus DSA and MTP fields)."""

    vocab_size: Any = 129280
    dim: Any = 7168
    inter_dim: Any = 18432
    moe_inter_dim: Any = 2048
    n_layers: Any = 61
    n_dense_layers: Any = 3
    n_heads: Any = 128
    n_routed_experts: Any = 256
    n_shared_experts: Any = 1
    n_activated_experts: Any = 8
    n_expert_groups: Any = 8
    n_limited_groups: Any = 4
    route_scale: Any = 2.5
    q_lora_rank: Any = 1536
    kv_lora_rank: Any = 512
    qk_nope_head_dim: Any = 128
    qk_rope_head_dim: Any = 64
    v_head_dim: Any = 128
    index_n_heads: Any = 0  # DSA lightning indexer; 0 = dense attention
    index_head_dim: Any = 0
    index_topk: Any = 0
    n_mtp_layers: Any = 1  # multi-token-prediction modules shipped with the model
    # DeepSeek-V4's compressed attention (0 = the MLA family): shared-KV MQA heads of head_dim, a grouped output
    # projection, a sliding window on every layer, CSA (one entry per csa_ratio tokens, top-k by the indexer) and
    # HCA (one per hca_ratio) layers, a residual stream hc_mult times wide, the first n_hash_layers hash-routed.
    head_dim: Any = 0
    o_groups: Any = 0
    o_lora_rank: Any = 0
    sliding_window: Any = 0
    n_csa_layers: Any = 0
    n_hca_layers: Any = 0
    csa_ratio: Any = 4
    hca_ratio: Any = 128
    hc_mult: Any = 1
    n_hash_layers: Any = 0
    expert_bits: Any = 8  # bits per routed-expert weight as the checkpoint ships them (4: MXFP4)

    def __post_init__(self) -> None:
        for f in fields(self):
            check(f.name, getattr(self, f.name), MODEL_RANGES.get(f.name, MODEL_COUNT))
        broken = broken_rule(MODEL_RULES, {f.name: getattr(self, f.name) for f in fields(self)})
        if broken:
            raise ValueError(broken)

    @property
    def n_sparse_layers(self) -> Any:
        return self.n_layers - self.n_dense_layers

    @property
    def native_moe_dtype(self) -> str:
        """The routed experts' dtype as the checkpoint ships them: the default for moe_dtype."""
        return "fp4" if self.expert_bits == 4 else "fp8"

    @property
    def compressed_attention(self) -> bool:
        """DeepSeek-V4's CSA/HCA attention (head_dim set) rather than the MLA family's."""
        return bool(self.head_dim)


@dataclass(frozen=True)
class GPU:
    """One accelerator's datasheet figures (dense TFLOPS, GB, GB/s) and serving facts.

    ``comm_sm`` is the SMs (CUs) that prefill's all-to-all kernels hold; ``pcie_bw`` the per-GPU
    scale-out (RDMA NIC) bandwidth; ``scaleup`` the GPUs in one NVLink domain (8 for HGX, 72 for NVL72);
    ``fp4_flops`` 0 where the GPU has no FP4 tensor cores; ``generation`` picks the refined model's kernel
    efficiencies; ``mla_tp_alt`` is the article's decode TP rule. Units: :data:`dsxl.core.rules.GPU_UNITS`.
    """

    name: Any
    sm: Any
    comm_sm: Any
    fp16_flops: Any
    fp8_flops: Any
    mem: Any
    mem_bw: Any
    nvlink_bw: Any
    pcie_bw: Any
    mla_tp_alt: Any = 4
    fp4_flops: Any = 0
    scaleup: Any = 8
    price_gpu_hour: Any = 0
    generation: str = "hopper"
    kind: str = "custom"
    source: str = ""

    def __post_init__(self) -> None:
        for name, rng in GPU_RANGES.items():
            check(f"{self.name}.{name}", getattr(self, name), rng)
        if isinstance(self.generation, str) and self.generation not in generations():
            raise ValueError(f"{self.name}.generation must be one of {', '.join(generations())}; "
                             f"got {show(self.generation)}")
        broken = broken_rule(GPU_RULES, {f: getattr(self, f) for f in GPU_RANGES}, f"{self.name}.")
        if broken:
            raise ValueError(broken)

    def with_fields(self, **changes: Any) -> "GPU":
        return replace(self, **changes)


@dataclass(frozen=True)
class Scenario:
    """The article's deployment and workload inputs (the article's names)."""

    seq_len: Any = 4383
    tflops_share: Any = 0.8
    kv_cache_rate: Any = 0.563
    decode_len: Any = 1210
    discount_rate: Any = 0.85
    mem_util_rate: Any = 0.9
    group_gemm_discount: Any = 0.7
    tps_threshold: Any = 20
    num_node: Any = 4
    gpu_per_node: Any = 8
    dispatch_node: Any = 4
    decode_comm_sm: Any = 0
    other_params_gb: Any = 2.91
    mla_params_m: Any = 187.17
    mla_absorb_params_m: Any = 598.14
    expert_params_m: Any = 44.05
    batch_sizes: tuple = (32, 64, 128, 256)
    pcie_bw_3_2t: Any = 50
    pcie_bw_1_6t: Any = 25
    pcie_bw_800g: Any = 12.5

    def __post_init__(self) -> None:
        for name, rng in SCENARIO_RANGES.items():
            check(name, getattr(self, name), rng)
        if not self.batch_sizes:
            raise ValueError("batch_sizes must list at least one batch size")
        for bs in self.batch_sizes:
            check("batch_sizes", bs, Range(1, 1_000_000, integer=True))



@lru_cache(maxsize=1)
def generations() -> tuple[str, ...]:
    return tuple(json.loads(read_template_text("refined.json"))["generations"])
