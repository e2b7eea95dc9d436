"""docs/exit-codes.md and the ExitCode table must say the same thing."""

from __future__ import annotations

import re

from llmcli.cli.errors import ExitCode, exit_code_for
from llmcli.core import errors as e

from .conftest import ROOT


def test_every_exit_code_is_documented_with_its_name():
    text = (ROOT / "docs" / "exit-codes.md").read_text()
    rows = dict(re.findall(r"^\|\s*(\d+)\s*\|\s*`(\w+)`", text, flags=re.M))
    assert rows == {str(int(code)): code.name for code in ExitCode}


def test_each_failure_class_has_its_own_code():
    expected = {
        e.ConfigError("x"): ExitCode.CONFIG,
        e.AuthenticationError("x", status=401): ExitCode.AUTH,
        e.PermissionDeniedError("x", status=403): ExitCode.AUTH,
        e.NotFoundError("x", status=404): ExitCode.API,
        e.RateLimitError("x", status=429): ExitCode.API,
        e.ServerError("x", status=500): ExitCode.API,
        e.InvalidResponseError("x"): ExitCode.API,
        e.APIConnectionError("x"): ExitCode.NETWORK,
        e.APITimeoutError("x"): ExitCode.NETWORK,
    }
    assert {type(exc): exit_code_for(exc) for exc in expected} == \
        {type(exc): code for exc, code in expected.items()}
