"""dsxl: size DeepSeek-V3/R1 serving clusters with the article's analytic model, from Python or Excel."""

from .config import GPU, Catalog, ModelArgs, Scenario, load_catalog
from .model import (decode_breakdown, decode_tpot_ms, dense_mlp_gflops, expert_gflops, max_batch_size,
                    mla_absorb_flops, mla_flops, prefill_breakdown)

__version__ = "0.1.0"
__all__ = ["GPU", "Catalog", "ModelArgs", "Scenario", "load_catalog", "mla_flops", "mla_absorb_flops",
           "dense_mlp_gflops", "expert_gflops", "prefill_breakdown", "decode_breakdown", "decode_tpot_ms",
           "max_batch_size"]
