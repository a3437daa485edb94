"""A mutation run over every line a user can type: 5,000 CLI calls and 2,000 UDF calls, each a valid call with one
to three things changed (a hostile value, a dropped or repeated token, an unknown flag, another option of the same
command). The options come from the CLI's own parser and the UDFs from their catalog, so new ones are walked without
editing this file. Every call must end in a result or one clear error: no traceback, no NaN or infinity anywhere.

The seed is fixed, so a failure prints the exact call to reproduce."""

import contextlib
import inspect
import io
import json
import math
import os
import random
import re

import numpy as np
import pytest

from dsxl import udfs as u
from dsxl.cli import _parser, main

pytestmark = pytest.mark.slow  # about a minute: pytest -m "not slow" leaves it out

SEED = 20261206
CLI_CALLS = int(os.environ.get("DSXL_MUTATION_CLI", 5000))
UDF_CALLS = int(os.environ.get("DSXL_MUTATION_UDF", 2000))
NON_FINITE = re.compile(r"(?<![\w.-])-?(nan|inf|infinity)(?![\w.])", re.IGNORECASE)
CELL_LIMIT = 32767  # characters an Excel cell holds

BASES = [
    "predict decode --gpu H800 --ep 8 --batch 64 --kv-len 4096",
    "predict decode --gpu GB300 --model deepseek_v4_pro --ep 16 --batch 55 --kv-len 7834 --engine vllm",
    "predict decode --gpu B200 --ep 8 --batch 1 --kv-len 2048 --engine trtllm --mtp-draft 3 --mtp-accept 2.5",
    "predict prefill --gpu H800 --ep 32 --tokens-per-gpu 16384 --prompt-len 4096",
    "predict aggregated --gpu H200 --ep 8 --concurrency 64 --input-len 1000 --output-len 2000 --engine trtllm",
    "predict aggregated --gpu MI300X --ep 1 --moe-tp 8 --attn-tp 8 --batch 32 --input-len 1000 --output-len 1000",
    "plan --gpu H200 --ep-sizes 8,16 --output-tokens-per-s 20000",
    "plan --gpu H200 --ep-sizes 8,16 --requests-per-s 5 --input-len 4000 --output-len 1500 --ttft-p99-ms 2000",
    "plan --gpu B200 --ep-sizes 8 --budget-gpus 16 --serving both",
    "plan --gpu H200 --ep-sizes 16 --recipe vllm --output-tokens-per-s 10000 --peak-to-average 2",
    "validate",
    "models",
    "report decode_totals --set seq_len=5000",
    "calibrate --template",
]
HOSTILE = ["0", "-1", "1e308", "1e-320", "nan", "inf", "-inf", "", "abc", "2.5", "9" * 400, "1..1000", "1,2,3",
           "H9000", "all", "DeepSeek_V4_Pro", "ÿ", "a;echo PWNED;.json", "/nonexistent/x.json", "x" * 300 + ".json",
           "1e12", "100000000", "auto", "--", "-", "seq_len=1e308", "batch_sizes=1..20000", "tflops_share=5e-324"]
CONFIGS = {  # config.json files of the wrong shape (issue 25's reproducers)
    "architectures.json": {"architectures": [{}]}, "rates.json": {"compress_rates": [1, 2]},
    "rotary.json": {"partial_rotary_factor": 1e308}, "mlp.json": {"mlp_layer_types": 5},
    "csa.json": {"compress_rate_csa": [4, 4]}, "hash.json": {"num_hash_layers": [1, 2]},
    "digits.json": "BIG", "deep.json": "DEEP",
}


def _options():
    """Per command: its option strings and, for each, its choices (None: takes a free value; []: a flag)."""
    import argparse
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, parser in sub.choices.items():
        opts = {}
        for a in parser._actions:
            if a.option_strings and "--help" not in a.option_strings:
                opts[a.option_strings[-1]] = [] if a.nargs == 0 else (list(a.choices) if a.choices else None)
        out[name] = opts
    return out


def _write_configs(folder):
    paths = []
    for name, content in CONFIGS.items():
        path = folder / name
        if content == "BIG":
            path.write_text('{"hidden_size": ' + "7" * 5000 + "}")
        elif content == "DEEP":
            path.write_text("[" * 100_000 + "]" * 100_000)
        else:
            path.write_text(json.dumps(content))
        paths.append(str(path))
    return paths


def _mutate(rng, argv, options, extra_values):
    argv = list(argv)
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        values = [i for i, t in enumerate(argv) if i > 0 and argv[i - 1].startswith("--") and not t.startswith("--")]
        if kind < 0.35 and values:  # a hostile value for a given option
            argv[rng.choice(values)] = rng.choice(HOSTILE + extra_values)
        elif kind < 0.7 and options:  # another option of this command
            flag = rng.choice(sorted(options))
            choices = options[flag]
            if choices == []:
                argv.append(flag)
            else:
                pool = (choices or []) + HOSTILE + extra_values
                argv += [flag, rng.choice(pool)]
        elif kind < 0.8 and len(argv) > 1:  # a dropped token
            del argv[rng.randrange(1, len(argv))]
        elif kind < 0.9:  # a repeated option or an unknown one
            flags = [t for t in argv if t.startswith("--")]
            argv.append(rng.choice(flags) if flags and rng.random() < 0.5 else rng.choice(
                ["--input-lenn", "--json", "--gpus", "-x", "--ep=", "--batch=64"]))
        else:  # a swapped pair
            if len(argv) > 2:
                i, j = rng.sample(range(1, len(argv)), 2)
                argv[i], argv[j] = argv[j], argv[i]
    return argv


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    saved = os.dup(1)  # an environment error points the real stdout at /dev/null before exiting; undo it here
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's own errors (exit 2) and --help (exit 0)
                code = exc.code
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return code, out.getvalue(), err.getvalue()


def _cli_problem(argv, code, out, err):
    if code not in (0, 1, 2):
        return f"exit {code}"
    if code:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        if "error" not in last and "cannot" not in last and "closed" not in last:
            return f"exit {code} without a one-line reason: {err[-300:]!r}"
        return None
    if "--format" in argv and "json" in argv[argv.index("--format") + 1:argv.index("--format") + 2]:
        def refuse(token):
            raise ValueError(f"non-finite {token}")
        try:
            json.loads(out, parse_constant=refuse)
        except ValueError as exc:
            return f"JSON: {exc}"
    elif NON_FINITE.search(out):
        return f"non-finite number in: {NON_FINITE.search(out).group(0)!r}"
    return None


def test_5000_mutated_cli_calls_end_in_a_result_or_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a call writes lands here
    rng = random.Random(SEED)
    options = _options()
    extra = _write_configs(tmp_path) + [str(tmp_path), "/dev/full", str(tmp_path / "out.json")]
    problems = []
    for k in range(CLI_CALLS):
        base = rng.choice(BASES).split()
        argv = _mutate(rng, base, options[base[0]], extra)
        if rng.random() < 0.3 and base[0] in ("predict", "plan", "validate", "calibrate", "report") \
                and "--format" not in argv:
            argv += ["--format", "json"]
        try:
            code, out, err = _run(argv)
        except Exception as exc:  # a traceback a user would see
            problems.append((k, argv, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        problem = _cli_problem(argv, code, out, err)
        if problem:
            problems.append((k, argv, problem))
    assert problems == [], "\n".join(f"call {k}: dsxl {' '.join(map(repr, a))}: {p}" for k, a, p in problems[:20])


# ------------------------------------------------------------------------------------------------------ UDFs

def _example_args(example):
    """The arguments of a UDF's catalog example, typed as Excel passes them."""
    inner = example[example.index("(") + 1:example.rindex(")")]
    args = []
    for token in re.findall(r'"[^"]*"|[^,]+|(?<=,)(?=,)|^(?=,)', inner) if inner else []:
        token = token.strip()
        if token.startswith('"'):
            args.append(token.strip('"'))
        elif token == "":
            args.append(None)
        elif token.upper() in ("TRUE", "FALSE"):
            args.append(token.upper() == "TRUE")
        else:
            args.append(float(token))
    return args


UDF_HOSTILE = [None, "", "x", -1.0, 0.0, 1e308, 1e-320, float("nan"), float("inf"), True, "x" * 100_000,
               [[1.0, "x"]], [[64.0], [None], ["abc"]], [[1e308]], [], [[]], [[1.0], [2.0, 3.0]], np.nan,
               [["name", "mem_bw", "fp8_flops"], ["mine", 1e-305, 1000.0]], "H800", "auto", 4096.0, [[8.0], [16.0]]]


def _finite_everywhere(value):
    if isinstance(value, (list, tuple)):
        return all(_finite_everywhere(v) for v in value)
    if isinstance(value, str):
        return len(value) <= CELL_LIMIT
    if isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def test_2000_mutated_udf_calls_give_finite_values_or_one_clear_error():
    rng = random.Random(SEED)
    catalog = [(name, _example_args(example)) for name, _, example, _ in u.UDF_CATALOG]
    problems = []
    for k in range(UDF_CALLS):
        name, base = rng.choice(catalog)
        fn = getattr(u, name)
        n_params = len(inspect.signature(fn).parameters)
        args = list(base)
        for _ in range(rng.randint(1, 2)):
            i = rng.randrange(n_params)
            args += [None] * (i + 1 - len(args))
            args[i] = rng.choice(UDF_HOSTILE)
        try:
            out = fn(*args)
        except ValueError as exc:
            text = str(exc)
            if not text or "\n" in text or len(text) > CELL_LIMIT:
                problems.append((k, name, args, f"unclear error {text[:200]!r}"))
            continue
        except Exception as exc:
            problems.append((k, name, args, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        if not _finite_everywhere(out):
            problems.append((k, name, args, f"non-finite or oversized result {str(out)[:200]}"))
    shown = [(k, n, [a if not isinstance(a, str) or len(a) < 50 else f"<{len(a)} chars>" for a in args], p)
             for k, n, args, p in problems[:20]]
    assert problems == [], "\n".join(map(str, shown))
