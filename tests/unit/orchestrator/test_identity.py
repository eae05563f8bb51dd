"""Published processor names resolve exactly, or not at all (FAILURE-MODES 2, 3)."""
from __future__ import annotations

import pytest

from framework.project import load
from framework.orchestrator.identity import UnknownProcessor, resolve
from projects import write_project


@pytest.fixture
def project(tmp_path):
    write_project(tmp_path)
    return load(tmp_path)


@pytest.mark.parametrize("identity", ["customer_totals", "shop_analytics.customer_totals", "my-gcp-project.shop_analytics.customer_totals"])
def test_name_table_and_project_qualified_table_resolve(project, identity):
    assert resolve(project, identity).name == "customer_totals"


@pytest.mark.parametrize("identity", ["shop_raw.customer_totals", "my-gcp-project.shop_raw.customer_totals"])
def test_a_table_in_another_dataset_is_unknown(project, identity):
    """Only a leading project id may be dropped: `shop_raw.customer_totals` is not the table
    `shop_analytics.customer_totals` writes, so crediting it would be a guess."""
    with pytest.raises(UnknownProcessor):
        resolve(project, identity)
