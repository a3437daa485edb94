"""The fingerprint of what the joint fit rests on: the evidence (calibration rows and the corpus), the constants
and kernel rows, the catalogs and the declared parameters. ``templates/fitted.json`` stores the fingerprint it was
made from; a fit made from other data is stale, and ``dsxl validate`` says so instead of printing it."""

from __future__ import annotations

import hashlib
import json

from dsxl.data.records import read_template_text

FIT_INPUTS = ("measurements.csv", "inferencex_dsr1.csv", "runs.json", "refined.json", "kernels.csv", "engines.json",
              "hardware.csv", "models.json", "fused_moe.csv")
REFIT = "python -m dsxl.refined.calibration --write"
NOT_FITTED = ("step_parts",)  # a parameter's fields the fit does not read (the parts of a step it sets, for bands)


def fit_data_hash() -> str:
    """SHA-256 over the fit's inputs: each file's name and text, then the declared parameters (not the fit's own
    results, which the same file holds, nor the fields only bands read)."""
    h = hashlib.sha256()
    for name in FIT_INPUTS:
        h.update(name.encode() + b"\0" + read_template_text(name).encode() + b"\0")
    declared = json.loads(read_template_text("fitted.json"))["parameters"]
    h.update(json.dumps({k: {f: v for f, v in p.items() if f not in NOT_FITTED} for k, p in declared.items()},
                        sort_keys=True).encode())
    return h.hexdigest()


def stale_fit_reason(fit: dict) -> str | None:
    """None while the stored fit was made from today's data; else one line naming the command that refits."""
    if fit.get("data_hash") == fit_data_hash():
        return None
    return ("templates/fitted.json was fitted to other data than the templates now hold (its data_hash differs); "
            f"refit with: {REFIT}")
