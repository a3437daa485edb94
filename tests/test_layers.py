"""The architecture as a test: each module belongs to a layer, imports only from its own layer or below, and no
import cycle exists (every import statement counts, those inside functions too). Imports are read with ``ast``."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dsxl"

# Lowest first. A request passes through each once: a surface resolves inputs, a front door runs chains over
# physics on data, rendering shapes the result.
LAYERS = [
    ("core", ["dsxl.core", "dsxl._version"]),                # the expression type, every input's declared rule
    ("data", ["dsxl.data"]),                                   # templates -> typed records
    ("input resolution", ["dsxl.inputs"]),                     # requests checked and resolved
    ("physics", ["dsxl.physics"]),                             # quantity functions
    ("chains", ["dsxl.chains"]),                               # article and refined chains of steps
    ("front doors", ["dsxl.article", "dsxl.refined", "dsxl.planner"]),
    ("rendering", ["dsxl.render"]),
    ("surfaces", ["dsxl.cli", "dsxl.udfs", "dsxl.workbook", "dsxl"]),
]


def layer_of(module: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (i, len(p))
    assert best is not None, f"{module} belongs to no layer"
    return best[0]


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(module: str, path: Path) -> set[str]:
    """The dsxl modules a module imports (a name imported from a package counts as its submodule when it is one)."""
    known = modules()
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "dsxl"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != "dsxl":
                continue
            for a in node.names:
                found.add(f"{name}.{a.name}" if f"{name}.{a.name}" in known else name)
    return {m for m in found if m != module}


def test_every_module_imports_only_its_layer_or_below():
    bad = []
    for module, path in modules().items():  # no module is exempt: the package's front page is a surface
        for dep in imports(module, path):
            if layer_of(dep) > layer_of(module):
                bad.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {m: {d for d in imports(m, p) if d in modules()} for m, p in modules().items()}
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(graph[m]):
            visit(d)
        stack.pop()
    for m in sorted(graph):
        visit(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_layers_are_folders_a_newcomer_sees():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"core", "inputs", "data", "physics", "chains", "article", "refined", "planner", "render",
            "workbook"} <= folders


def test_checks_live_in_the_inputs_layer():
    """Range and choice checks are declared in dsxl.core.rules and applied in dsxl.inputs; other modules call
    them."""
    offenders = []
    for module, path in modules().items():
        if module.startswith(("dsxl.inputs", "dsxl.core.rules", "dsxl.data.records")):
            continue
        text = path.read_text()
        for needle in ("Range(", "must be one of"):
            if needle in text:
                offenders.append(f"{module}: {needle}")
    assert not offenders, "\n".join(offenders)


def _catalog_names() -> set[str]:
    from dsxl.data.catalog import load_catalog, load_engines
    cat = load_catalog()
    return set(cat.gpus) | set(cat.models) | set(load_engines())


def test_no_gpu_model_or_engine_is_named_in_code():
    """A GPU, model or engine is a data row (templates/): no string in dsxl's code names one, docstrings aside.
    Defaults are data too (scenarios.json's defaults and article model, engines.json's default). The one exception
    is the recipe builders' map: each engine's launch command has its own shape (its flags are data)."""
    names, found = _catalog_names(), []
    for module, path in modules().items():
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docs:
                found.append(f"{module}:{node.lineno} {node.value!r}")
    found = [f for f in found if not (f.startswith("dsxl.planner.recipes:") and "BUILDERS" in _line(f))
             and not f.startswith("dsxl.data.hf_config:")]  # Hugging Face model_type strings, not presets
    assert not found, found


def _line(found: str) -> str:
    module, rest = found.split(":", 1)
    return modules()[module].read_text().splitlines()[int(rest.split()[0]) - 1]


def test_no_function_is_longer_than_its_layer_allows():
    """A function reads on a screen or two: none in dsxl over 120 lines, none in the workbook layer (layout that
    is easy to let grow) over 80."""
    long = []
    for module, path in modules().items():
        limit = 80 if module.startswith("dsxl.workbook") else 120
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    long.append(f"{module}.{node.name}: {length} lines (limit {limit})")
    assert not long, long


def test_a_prediction_and_a_plan_look_each_gpu_and_the_model_up_once(monkeypatch):
    """The request is resolved once at predict's door (dsxl.inputs.request.resolve) and the records flow down:
    one catalog look-up of the GPU and one of the model per call, whatever the phase, and whether TBO is left to
    the engine (which predicts twice) or a list of GPUs is asked for (one each); a plan the same."""
    from dsxl import plan, predict
    from dsxl.data.catalog import Catalog
    looked: list[tuple[str, str]] = []
    gpu, model = Catalog.gpu, Catalog.model

    def count(kind, original):
        def lookup(self, name=None, *args, **kwargs):
            if name is None or isinstance(name, str):  # a name resolved (records pass through)
                looked.append((kind, name))
            return original(self, name, *args, **kwargs)
        return lookup

    predict("decode", "H800", ep=32, batch=64, kv_len=4096)  # warm the catalog's own caches
    monkeypatch.setattr(Catalog, "gpu", count("gpu", gpu))
    monkeypatch.setattr(Catalog, "model", count("model", model))
    for phase, kw in (("decode", dict(ep=32, batch=64, kv_len=4096)),
                      ("prefill", dict(ep=32, tokens_per_gpu=16384, prompt_len=4096)),
                      ("aggregated", dict(ep=8, concurrency=64, input_len=1000, output_len=1000))):
        looked.clear()
        predict(phase, "H800", "deepseek_v3", **kw)
        assert sorted(looked) == [("gpu", "H800"), ("model", "deepseek_v3")], (phase, looked)
    looked.clear()
    predict("decode", ["H800", "B200"], ep=32, batch=64, kv_len=4096)
    assert sorted(looked) == [("gpu", "B200"), ("gpu", "H800"), ("model", None)]
    # a plan resolves each of its GPUs and its model once (dsxl.inputs.plan_request.resolve_plan), whatever it
    # searches, sizes, costs and bands: both serving modes, a budget, a prefill/decode pair
    for kw, gpus in ((dict(gpus="H800,B200", serving="both"), ["B200", "H800"]),
                     (dict(gpus="H800", budget_gpus=256), ["H800"]),
                     (dict(prefill_gpu="H800", decode_gpu="B200", serving="disaggregated"), ["B200", "H800"])):
        looked.clear()
        plan(model="deepseek_v3", output_tokens_per_s=200_000, **kw)
        assert sorted(looked) == [("gpu", g) for g in gpus] + [("model", "deepseek_v3")], (kw, looked)
