"""An independent, deliberately plain transcription of the article's model, used only by the tests.

It shares no code with dsxl, so agreement at random inputs means the package implements the article's model.
"""

import math

M = dict(dim=7168, inter_dim=18432, moe_inter_dim=2048, n_layers=61, n_dense_layers=3, n_heads=128,
         n_activated_experts=8, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
         v_head_dim=128, n_routed_experts=256, n_shared_experts=1)
GPUS = {
    "H800": dict(sm=132, comm_sm=24, fp16=791.6, fp8=1583.2, mem=80, mem_bw=3350, nvlink=200, pcie=50),
    "H20": dict(sm=78, comm_sm=10, fp16=118.4, fp8=236.8, mem=96, mem_bw=3350, nvlink=400, pcie=50),
    "H20_3e": dict(sm=78, comm_sm=10, fp16=118.4, fp8=236.8, mem=141, mem_bw=4800, nvlink=400, pcie=50),
}
S = dict(seq_len=4383, kv_cache_rate=0.563, decode_len=1210, discount_rate=0.85, mem_util_rate=0.9,
         group_gemm_discount=0.7, tps_threshold=20)


def mla(q, kv, rate, m=M, absorb=False):
    d, r, h, nope, rope, kvr, v = (m["dim"], m["q_lora_rank"], m["n_heads"], m["qk_nope_head_dim"],
                                   m["qk_rope_head_dim"], m["kv_lora_rank"], m["v_head_dim"])
    if absorb:
        g = q * d * r + q * r * h * rope + q * h * r * kvr + kv * d * (kvr + rope) * (1 - rate)
        a = h * (q * rope * kv + q * kvr * kv + q * kv * kvr) + q * h * kvr * d
    else:
        g = q * d * r + q * r * h * (nope + rope) + kv * d * (kvr + rope) * (1 - rate) + kv * kvr * h * nope + kv * kvr * h * v
        a = h * (q * rope * kv + q * nope * kv + q * kv * v) + q * h * v * d
    return (g + a) * 2 / 1e9, g * 2 / 1e9, a * 2 / 1e9


def eff(g, s, comm_sm):
    k = s["discount_rate"]
    return dict(fp16=g["fp16"] * k * (g["sm"] - comm_sm) / g["sm"], fp8=g["fp8"] * k * (g["sm"] - comm_sm) / g["sm"],
                mem_bw=g["mem_bw"] * k, nvlink=g["nvlink"] * k, pcie=g["pcie"] * k)


def prefill(g, tp, s=S, m=M, num_node=4, gpu_per_node=8, dispatch_node=4):
    e = eff(g, s, g["comm_sm"])
    L = s["seq_len"]
    _, gemm, attn = mla(L, L, s["kv_cache_rate"], m)
    tp1 = gemm / e["fp8"] + attn / e["fp16"]
    ar = L * m["dim"] * 2 / 1024 / 1024 / e["nvlink"]
    tpn = tp1 / tp + ar
    dense = 3 * L * m["dim"] * m["inter_dim"] * 2 / 1e9 / e["fp8"]
    devices = num_node * gpu_per_node
    dp = devices / tp
    expert = lambda t: 3 * t * m["dim"] * m["moe_inter_dim"] * 2 / 1e9 / e["fp8"]  # noqa: E731
    shared, routed = expert(dp * L / devices), expert(L * dp * m["n_activated_experts"] / devices)
    dispatch = (dispatch_node - 1) * (gpu_per_node / tp) * L * m["dim"] / 1024 / 1024 / (e["pcie"] * gpu_per_node)
    combine = 2 * dispatch
    nd, ns = m["n_dense_layers"], m["n_layers"] - m["n_dense_layers"]
    so = nd * (tp1 + dense) + ns * (tpn + shared + routed)
    su = so + ns * (dispatch + combine)
    return dict(tp1=tp1, tpn=tpn, dense=dense, shared=shared, routed=routed, dispatch=dispatch, combine=combine,
                sum_overlap=so, sum=su, tps_overlap=dp * L * 1000 / so / num_node, tps=dp * L * 1000 / su / num_node)


def decode(g, bs, s=S, m=M, alt_tp=4, absorb=True):
    e = eff(g, s, 0)
    L = s["seq_len"]
    _, gemm, attn = mla(1, L, 1, m, absorb)
    tp1 = (gemm / e["fp8"] + attn / e["fp16"]) * bs
    ar = L * m["dim"] * 2 / 1024 / 1024 / e["nvlink"]
    t = {1: tp1, 4: tp1 / 4 + ar, 8: tp1 / 8 + ar}
    kv = L * (m["kv_lora_rank"] + m["qk_rope_head_dim"]) * bs / 1024 ** 3 / e["mem_bw"] * 1000
    dense = 3 * bs * m["dim"] * m["inter_dim"] * 2 / 1e9 / e["fp8"]
    ex = lambda tok: 3 * tok * m["dim"] * m["moe_inter_dim"] * 2 / 1e9 / e["fp8"] / s["group_gemm_discount"]  # noqa
    shared, routed = ex(bs), ex(bs * m["n_activated_experts"])
    dispatch = bs * m["dim"] * m["n_activated_experts"] / 1024 / 1024 / e["pcie"]
    combine = 2 * dispatch
    tp = alt_tp if t[1] > t[4] else 1
    dense_mla, sparse_mla = t[1] + kv, t[tp] + kv
    nd, ns = m["n_dense_layers"], m["n_layers"] - m["n_dense_layers"]
    tpot_o = nd * (dense_mla + dense) + ns * (sparse_mla + shared + routed)
    tpot = tpot_o + ns * (dispatch + combine)
    return dict(tp=tp, tp1=t[1], tp4=t[4], tp8=t[8], kv=kv, tpot_overlap=tpot_o, tpot=tpot,
                tps_overlap=1000 / tpot_o, budget=sparse_mla + shared - dispatch - combine)


def max_batch(g, tp, experts, absorb=True, fp16=False, s=S, m=M):
    kv = (s["seq_len"] + s["decode_len"]) * 576 * m["n_layers"] * tp * (2 if fp16 else 1)
    free = (g["mem"] * s["mem_util_rate"] - 2.91 - (598.14 if absorb else 187.17) * m["n_layers"] / tp / 1024
            - 44.05 * (m["n_layers"] - m["n_dense_layers"]) * experts / 1024)
    return free * 1024 ** 3 / kv


def close(a, b, rel=1e-9):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
