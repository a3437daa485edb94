"""Kernel time as a roofline: the slower of compute and memory traffic, plus a fixed cost per kernel.

Units: GFLOPs / TFLOPS = ms; GB / (GB/s) x 1000 = ms. The refined model counts bytes in SI GB (1e9),
unlike the article's 1024-based convention.
"""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import both, maximum, where


def kernel_ms(gflops: Any, peak_tflops: Any, flops_eff: Any, sm_share: Any, gbytes: Any, bw_gbs: Any,
              bw_eff: Any) -> Any:
    """max(FLOPs / achievable FLOP rate on the SMs left to compute, bytes / achievable bandwidth) in ms."""
    # the per-GPU rate is combined first: one operation over the (often large) FLOPs array
    return maximum(gflops / (peak_tflops * flops_eff * sm_share), traffic_ms(gbytes, bw_gbs, bw_eff))


def launch_ms(kernels: Any, gemm_kernels: Any, kernel_latency_us: Any, op_latency_us: Any) -> Any:
    """Fixed time of a sequence of kernels, ms: each GEMM (and attention) kernel pays its measured small-M
    intercept; each elementwise op pays ``op_latency_us`` (its tail under CUDA graphs with programmatic dependent
    launch in decode, a full launch otherwise)."""
    return (gemm_kernels * kernel_latency_us + (kernels - gemm_kernels) * op_latency_us) / 1000


def op_latency_us(graphs: Any, graph_op_us: Any, kernel_latency_us: Any) -> Any:
    """Fixed time of one elementwise op: its tail inside a captured graph, else a kernel's full fixed time."""
    return where(graphs, graph_op_us, kernel_latency_us)


def sm_share(sm: Any, held_sm: Any) -> Any:
    """Share of SMs left to compute kernels while communication kernels hold ``held_sm`` of them."""
    return (sm - held_sm) / sm


def gemm_peak_tflops(weight_bytes: Any, fp16_flops: Any, fp8_flops: Any, fp4_flops: Any) -> Any:
    """Tensor-core peak for a GEMM whose weights have ``weight_bytes`` per value (2 BF16, 1 FP8, 0.5 FP4). FP4
    weights on a GPU without FP4 tensor cores are upcast in the kernel and run at the FP8 rate (FP8 x FP4)."""
    fp4 = where(fp4_flops > 0, fp4_flops, fp8_flops)
    return where(weight_bytes < 1, fp4, where(weight_bytes < 2, fp8_flops, fp16_flops))


def with_launch(kernel_ms: Any, kernels: Any, kernel_latency_us: Any) -> Any:
    """A kernel time plus the fixed time of ``kernels`` GEMM-like kernels, ms."""
    return kernel_ms + kernels * kernel_latency_us / 1000


def traffic_ms(gbytes: Any, bw_gbs: Any, bw_eff: Any) -> Any:
    """A memory-bound (elementwise) pass over ``gbytes``, ms."""
    return gbytes * (1000 / (bw_gbs * bw_eff))


def activation_gb(tokens: Any, values_per_token: Any) -> Any:
    """BF16 activations written and read back by the elementwise kernels around the GEMMs, GB."""
    return tokens * (values_per_token * 2 * 2 / 1e9)


def grouped_flops_eff(moe_bytes: Any, fp4_flops: Any, layout_eff: Any, fp4_grouped_flops_eff: Any) -> Any:
    """Achievable share of peak for the routed grouped GEMM: the layout's measured FP8 efficiency, or the FP4
    one for FP4 experts on FP4 tensor cores."""
    return where(both(moe_bytes < 1, fp4_flops > 0), fp4_grouped_flops_eff, layout_eff)
