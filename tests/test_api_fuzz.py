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
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from assistant.api import create_app
from assistant.settings import Settings

KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_EXAMPLES = 20
# No 5xx, and every response (errors and event streams included) matches what /openapi.json documents.
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

_statuses: Counter[str] = Counter()


def _api_settings(base: Settings) -> Settings:
    return base.model_copy(
        update={
            "api_keys": KEY,
            "admin_key": SecretStr("fuzz-admin"),
            "teams_secret": SecretStr("aW9tLWFzc2lzdGFudC1leGFtcGxlLXNlY3JldC0wMDA="),
            "rate_limit_per_minute": 1_000_000,
        }
    )


# The schema is read from the app at import time (schemathesis' eager loader); the real
# service on the fixture corpus is attached by the fixture below before any case runs.
app = create_app(None, _api_settings(Settings(_env_file=None)))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def real_service(fixture_service, fixture_settings, request):
    app.state.service = fixture_service
    app.state.settings = _api_settings(fixture_settings)

    class Summary:
        """Prints the case count at the end of the run (the issue's closing note wants it)."""

        def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001
            total = sum(_statuses.values())
            errors = sum(v for k, v in _statuses.items() if k.startswith("5"))
            statuses = ", ".join(f"{k} x{v}" for k, v in sorted(_statuses.items()))
            terminalreporter.write_line(f"schemathesis: {total} cases, {errors} with 5xx; statuses: {statuses}")

    if not request.config.pluginmanager.has_plugin("api-fuzz-summary"):
        request.config.pluginmanager.register(Summary(), "api-fuzz-summary")
    yield
    app.state.service = None


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case):
    response = case.call(headers=AUTH)
    _statuses[str(response.status_code)] += 1
    case.validate_response(response, checks=CHECKS, headers=AUTH)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
