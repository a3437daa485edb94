"""Communication terms of the refined model: expert all-to-all (DeepEP) and the attention-TP all-reduce.

Destinations inside the own scale-up (NVLink) domain travel over NVLink, the rest over the NIC; the two run
in parallel and each call pays a fixed latency.
"""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import maximum, minimum, where


def nvlink_share(ep: Any, scaleup: Any) -> Any:
    """Share of an EP group's destinations on other GPUs of the own NVLink domain."""
    return (minimum(ep, scaleup) - 1) / ep


def nic_share(ep: Any, scaleup: Any) -> Any:
    """Share of destinations outside the own NVLink domain."""
    return where(ep > scaleup, 1 - scaleup / ep, 0)


def expert_copies(n_activated_experts: Any, share: Any) -> Any:
    """Copies of a token sent over a link when each of its experts gets its own copy (low-latency kernels; and
    NVLink destinations in both kinds of kernel)."""
    return n_activated_experts * share


def node_copies_nic(n_activated_experts: Any, ep: Any, scaleup: Any, n_expert_groups: Any,
                    n_limited_groups: Any) -> Any:
    """Normal kernels (prefill) send a token once per remote node and forward it inside the node: the expected
    distinct remote nodes among its experts (capped by group-limited routing where the model has groups)."""
    nodes = maximum(ep / scaleup, 1)
    distinct = nodes * (1 - (1 - 1 / nodes) ** n_activated_experts)
    capped = where(n_expert_groups > 1, minimum(distinct, n_limited_groups), distinct)
    return capped * (nodes - 1) / nodes


def a2a_ms(tokens: Any, dim: Any, bytes_per_value: Any, nic_copies: Any, nvlink_copies: Any, ep: Any,
           pcie_bw: Any, nic_eff: Any, nvlink_bw: Any, nvlink_eff: Any, latency_us: Any) -> Any:
    """One dispatch or combine call: NIC and NVLink transfers in parallel plus the call latency; 0 without EP."""
    # ms per token over each link first (small arrays), then one product with the token counts each
    token_mb = dim * bytes_per_value / 1e6
    nic = tokens * (token_mb * nic_copies / (pcie_bw * nic_eff))
    nvl = tokens * (token_mb * nvlink_copies / (nvlink_bw * nvlink_eff))
    return where(ep > 1, maximum(nic, nvl) + latency_us / 1000, 0)


def allreduce_ms(tokens: Any, tp: Any, dim: Any, nvlink_bw: Any, nvlink_eff: Any, latency_us: Any) -> Any:
    """Ring all-reduce over ``tp`` GPUs of their tokens (``tokens`` per GPU) x dim BF16; 0 at TP1."""
    ms_per_token = 2 * (tp - 1) * dim * 2 / 1e6 / (nvlink_bw * nvlink_eff)  # (tp-1)/tp x tp tokens, 2 passes
    return where(tp > 1, tokens * ms_per_token + latency_us / 1000, 0)


def instance_gpus(ep: Any, moe_tp: Any) -> Any:
    """GPUs of one serving instance: ``ep`` expert-parallel ranks of ``moe_tp`` GPUs each."""
    return ep * moe_tp


def a2a_ranks(ep: Any, attn_tp: Any, instance_gpus: Any) -> Any:
    """Ranks an all-to-all spans: none (1) when attention TP covers the whole instance, since every GPU then holds
    every token and only an all-reduce follows the MoE."""
    return where(attn_tp >= instance_gpus, 1, ep)


def issued_a2a_ranks(a2a_ranks: Any, fused_on: Any) -> Any:
    """Ranks a separately issued all-to-all spans, the only kind overlap can hide: 1 (none) where a fused MoE kernel
    dispatches and combines inside itself."""
    return where(fused_on, 1, a2a_ranks)


def moe_reduce_gpus(attn_tp: Any, instance_gpus: Any, moe_tp: Any) -> Any:
    """GPUs whose partial MoE outputs are summed: the instance when attention TP covers it, else the MoE-TP group."""
    return where(attn_tp >= instance_gpus, instance_gpus, moe_tp)


def call_latency_us(instance_gpus: Any, scaleup: Any, nvlink_latency_us: Any, nic_latency_us: Any) -> Any:
    """Fixed time of one all-to-all call: the NVLink-domain floor when the instance fits in one domain."""
    return where(instance_gpus > scaleup, nic_latency_us, nvlink_latency_us)


def forwarded_copies(n_activated_experts: Any, nvlink_share: Any, nic_share: Any) -> Any:
    """Copies per token over NVLink with the normal kernels (prefill): every remote expert copy crosses NVLink once,
    directly inside the own domain or as the forwarding hop inside the remote node it reached over the NIC."""
    return n_activated_experts * (nvlink_share + nic_share)
