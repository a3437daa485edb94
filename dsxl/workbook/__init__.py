"""The shareable workbook: ``build_workbook(path)`` writes it deterministically and atomically."""

from __future__ import annotations

import io
import os
import re
import zipfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from dsxl.data.catalog import Catalog, load_catalog
from dsxl.render.files import check_target, write_bytes

FIXED_ZIP_TIME = (2025, 3, 14, 0, 0, 0)  # the article's date: byte-identical builds
FIXED_STAMP = "2025-03-14T00:00:00Z"


def workbook_bytes(catalog: Catalog | None = None, model: str | None = None, calibration: Any = None) -> bytes:
    """The workbook as .xlsx bytes for a model (preset id or config.json), calibrated by a profile of
    ``dsxl calibrate`` when given; the same inputs give the same bytes."""
    from dsxl.data.catalog import overridden
    from dsxl.refined.calibrated import load_profile, profile_tables
    from dsxl.workbook.sheets import build

    from dsxl.workbook.cached import values

    profile = load_profile(calibration)
    with overridden(*profile_tables(profile)) if profile else nullcontext():
        wb = build(catalog or load_catalog(), model, profile)
        wb.properties.creator = "dsxl"
        wb.properties.title = "dsxl: DeepSeek-style MoE inference sizing"
        computed = values(wb)
    cached = {f"xl/worksheets/sheet{i + 1}.xml": computed.get(ws.title, {}) for i, ws in enumerate(wb.worksheets)}
    buf = io.BytesIO()
    wb.save(buf)
    return _normalise(buf.getvalue(), cached)


def _normalise(data: bytes, cached: dict[str, dict] | None = None) -> bytes:
    """Fix zip timestamps and the created/modified document properties openpyxl stamps with 'now', and give
    every formula cell its computed value (``cached``: sheet XML path -> coordinate -> value)."""
    from dsxl.workbook.cached import inject

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if cached and info.filename in cached:
                body = inject(body, cached[info.filename])
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)", rb"\g<1>" +
                              FIXED_STAMP.encode() + rb"\g<3>", body)
            zi = zipfile.ZipInfo(info.filename, FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, body)
    return out.getvalue()


def build_workbook(path: str | os.PathLike = Path("workbook") / "dsxl.xlsx", catalog: Catalog | None = None,
                   model: str | None = None, calibration: Any = None) -> Path:
    """Write the workbook to ``path`` atomically, after checking the target can be written (see
    :mod:`dsxl.render.files`); returns the path."""
    path = check_target(Path(path), "-o", (".xlsx",))
    data = workbook_bytes(catalog, model, calibration)  # build fully before touching the target
    return write_bytes(path, data)
