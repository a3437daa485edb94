"""The shareable workbook: ``build_workbook(path)`` writes it deterministically and atomically."""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from pathlib import Path

from ..config import Catalog, load_catalog

FIXED_ZIP_TIME = (2025, 3, 14, 0, 0, 0)  # the article's date: byte-identical builds
FIXED_STAMP = "2025-03-14T00:00:00Z"


def workbook_bytes(catalog: Catalog | None = None, model: str | None = None) -> bytes:
    """The workbook as .xlsx bytes for a model (preset id or config.json); the same inputs give the same bytes."""
    from .sheets import build

    from .cached import values

    wb = build(catalog or load_catalog(), model)
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
    from .cached import inject

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
                   model: str | None = None) -> Path:
    """Write the workbook to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    data = workbook_bytes(catalog, model)  # build fully before touching the target
    fd, tmp = tempfile.mkstemp(prefix=".dsxl-", suffix=".xlsx.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
