"""Property-based run of schemathesis against /openapi.json, in-process (ASGI): no 5xx ever.

Bounded to ~20 generated cases per operation so it stays at a minute or two on 2 cores.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error

from assistant.api import create_app

KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_EXAMPLES = 20

_statuses: Counter[str] = Counter()


@pytest.fixture(scope="module")
def api_schema(fixture_service, fixture_settings, request):
    api_settings = fixture_settings.model_copy(
        update={
            "api_keys": KEY,
            "admin_key": SecretStr("fuzz-admin"),
            "teams_secret": SecretStr("aW9tLWFzc2lzdGFudC1leGFtcGxlLXNlY3JldC0wMDA="),
            "rate_limit_per_minute": 1_000_000,
        }
    )
    app = create_app(fixture_service, api_settings)

    def report() -> None:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        total = sum(_statuses.values())
        line = f"schemathesis: {total} cases, 5xx failures: {sum(v for k, v in _statuses.items() if k[0] == '5')}; "
        line += "statuses " + ", ".join(f"{k}x{v}" for k, v in sorted(_statuses.items()))
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line)

    request.addfinalizer(report)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case):
    response = case.call(headers=AUTH)
    _statuses[str(response.status_code)] += 1
    case.validate_response(response, checks=[not_a_server_error], headers=AUTH)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
