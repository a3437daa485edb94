import json
import pytest

from dsxl.data.catalog import read_template_text


@pytest.fixture(scope="session")
def article() -> dict:
    """The article's printed tables (shared/article/tables.json, shipped as templates/article_values.json)."""
    return json.loads(read_template_text("article_values.json"))


@pytest.fixture(scope="session")
def article_tables(article) -> dict:
    return {t["id"]: t for t in article["tables"]}
