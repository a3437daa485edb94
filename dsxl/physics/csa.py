"""DeepSeek-V4's compressed attention as the refined model sees it: parameters, entries attended, FLOPs and bytes.

Every layer keeps a sliding window of raw tokens; CSA layers add one compressed entry per ``csa_ratio`` tokens
(overlapping windows pooled by a softmax gate) of which the lightning indexer keeps the top ``index_topk``; HCA
layers add one entry per ``hca_ratio`` tokens, all attended. One shared 512-wide latent is both key and value for
every head (MQA), and a grouped low-rank projection maps the heads back to the residual width. Shapes follow the
transformers reference (``modular_deepseek_v4.py``). Quantities are averages per layer over the model's layer mix,
so the chain's per-layer structure stays as for the MLA family; per GPU, per micro-batch as in :mod:`attention`.
"""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import minimum


def window_layers(n_layers: Any, n_csa_layers: Any, n_hca_layers: Any) -> Any:
    """Layers with the sliding window only (no compressor)."""
    return n_layers - n_csa_layers - n_hca_layers


def replicated_params(dim: Any, q_lora_rank: Any, head_dim: Any, index_n_heads: Any, index_head_dim: Any,
                      n_layers: Any, n_csa_layers: Any, n_hca_layers: Any) -> Any:
    """Weights per layer (averaged over the layer mix) that every attention-TP rank holds whole: the query down
    projection, the shared-KV projection, and the compressors (CSA: kv and gate at 2 x head_dim for the overlapping
    windows, the indexer's kv and gate at 2 x index_head_dim and its head weights; HCA: kv and gate at head_dim)."""
    csa = 2 * dim * 2 * head_dim + 2 * dim * 2 * index_head_dim + dim * index_n_heads
    hca = 2 * dim * head_dim
    return dim * q_lora_rank + dim * head_dim + (n_csa_layers * csa + n_hca_layers * hca) / n_layers


def head_params(dim: Any, n_heads: Any, head_dim: Any, q_lora_rank: Any, o_groups: Any, o_lora_rank: Any,
                index_n_heads: Any, index_head_dim: Any, n_layers: Any, n_csa_layers: Any) -> Any:
    """Per-head weights per layer, split by attention TP: the query up projection, the grouped output projection
    (each of o_groups groups maps its heads to o_lora_rank, then one projection to dim), and on CSA layers the
    indexer's query projection."""
    return (q_lora_rank * n_heads * head_dim + n_heads * head_dim * o_lora_rank + o_groups * o_lora_rank * dim
            + n_csa_layers / n_layers * q_lora_rank * index_n_heads * index_head_dim)


def attended_entries(context: Any, sliding_window: Any, n_layers: Any, n_csa_layers: Any, n_hca_layers: Any,
                     csa_ratio: Any, hca_ratio: Any, index_topk: Any) -> Any:
    """Cache entries one query attends per layer, averaged over the layer mix: the window (or the whole context
    when shorter) on every layer, plus the top-k of context / csa_ratio compressed entries on CSA layers and all
    context / hca_ratio on HCA layers."""
    window = minimum(context, sliding_window)
    csa = minimum(index_topk, context / csa_ratio)
    return window + (n_csa_layers * csa + n_hca_layers * context / hca_ratio) / n_layers


def index_keys(context: Any, n_layers: Any, n_csa_layers: Any, csa_ratio: Any) -> Any:
    """Indexer keys one query scores per layer (averaged): every compressed key on CSA layers."""
    return n_csa_layers / n_layers * context / csa_ratio


def core_gflops(queries: Any, n_heads: Any, head_dim: Any, attended: Any) -> Any:
    """Core attention: every head scores its query against each attended entry (head_dim wide) and sums the same
    entry as value (head_dim wide)."""
    return 4 * queries * n_heads * head_dim * attended / 1e9


def entry_bytes(csa_kv_entry_bytes: Any) -> Any:
    """Bytes of one cached entry (raw window token or compressed entry) in FlashMLA's FP8 layout."""
    return csa_kv_entry_bytes


def kv_seq_gb(context: Any, n_layers: Any, loaded_mtp_layers: Any, sliding_window: Any,
              n_csa_layers: Any, n_hca_layers: Any, csa_ratio: Any, hca_ratio: Any, csa_kv_entry_bytes: Any,
              csa_index_entry_bytes: Any) -> Any:
    """Cache one sequence holds on each GPU of its attention rank, GB: the window of every layer (and of the MTP
    layer when drafting, window-only), plus per token of context the CSA entries with their indexer keys and
    the HCA entries."""
    window = (n_layers + loaded_mtp_layers) * minimum(context, sliding_window) * csa_kv_entry_bytes
    per_token = (n_csa_layers * (csa_kv_entry_bytes + csa_index_entry_bytes) / csa_ratio
                 + n_hca_layers * csa_kv_entry_bytes / hca_ratio)
    return (window + context * per_token) / 1e9


def kernels(attn_kernels: Any, dsa_kernels: Any, csa_kernels: Any) -> Any:
    """Kernels on a V4 attention path: the MLA-like path, the indexer's, and the compressors' and mHC's."""
    return attn_kernels + dsa_kernels + csa_kernels


def gemm_kernels(attn_gemm_kernels: Any, dsa_gemm_kernels: Any, csa_gemm_kernels: Any) -> Any:
    return attn_gemm_kernels + dsa_gemm_kernels + csa_gemm_kernels
