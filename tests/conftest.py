import json
from pathlib import Path

import pytest

ARTICLE = Path(__file__).resolve().parents[2] / "shared" / "article"
TABLES_JSON = Path(__file__).resolve().parent / "data" / "tables.json"


@pytest.fixture(scope="session")
def article() -> dict:
    """The article's printed tables (a copy lives in tests/data so a clone tests on its own)."""
    return json.loads(TABLES_JSON.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def article_tables(article) -> dict:
    return {t["id"]: t for t in article["tables"]}
