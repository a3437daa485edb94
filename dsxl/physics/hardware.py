"""Effective hardware figures: the article's GPU_perf getters."""

from __future__ import annotations

from typing import Any


def effective_tflops(peak_tflops: Any, discount_rate: Any, sm: Any, comm_sm: Any) -> Any:
    """Achievable TFLOPS: peak x discount x share of SMs left after communication SMs."""
    return peak_tflops * discount_rate * (sm - comm_sm) / sm


def effective_bw(bw: Any, discount_rate: Any) -> Any:
    """Achievable bandwidth in GB/s."""
    return bw * discount_rate


def compute_ms(gflops: Any, tflops: Any) -> Any:
    """GFLOPs / TFLOPS = milliseconds."""
    return gflops / tflops


def grouped_compute_ms(gflops: Any, tflops: Any, group_gemm_discount: Any) -> Any:
    """Grouped-GEMM (decode experts) time with its extra efficiency factor, ms."""
    return gflops / tflops / group_gemm_discount
