"""dsxl: size DeepSeek-style MoE serving clusters (refined and article models) from Python, Excel or the shell."""

from dsxl._version import __version__
from dsxl.data.catalog import GPU, Catalog, ModelArgs, Scenario, load_catalog
from dsxl.article.api import (decode_breakdown, decode_tpot_ms, dense_mlp_gflops, expert_gflops, max_batch_size,
                              mla_absorb_flops, mla_flops, prefill_breakdown)
from dsxl.planner.plan import plan
from dsxl.refined.predict import predict
from dsxl.data.hf_config import load_model
from dsxl.planner.recipes import recipe
from dsxl.refined.validation import validate

__all__ = ["__version__", "GPU", "Catalog", "ModelArgs", "Scenario", "load_catalog", "mla_flops", "mla_absorb_flops",
           "dense_mlp_gflops", "expert_gflops", "prefill_breakdown", "decode_breakdown", "decode_tpot_ms",
           "max_batch_size", "predict", "plan", "validate", "load_model", "recipe"]
