"""What --schema, --attach, cost and the usage log cost at start-up: nothing until
their flag (or the reply) needs them (see test_startup.py for the method)."""

from __future__ import annotations

from .test_startup import env, imported  # noqa: F401  (env is a fixture)

LAZY = {"llmcli.core.schema", "llmcli.core.attachments", "llmcli.usage.estimate",
        "llmcli.batch.budget", "sqlite3", "jsonschema", "bpe_openai", "tiktoken"}


def test_help_loads_none_of_it(env):  # noqa: F811
    names = imported("chat", "--help", env=env)
    assert "llmcli.cli.scripting" in names
    assert not names & (LAZY | {"llmcli.usage.prices", "llmcli.usage.log"})


def test_a_plain_chat_loads_only_the_price_table_and_the_log_after_the_reply(api_env):
    names = imported("chat", "hello", env=api_env)
    assert {"llmcli.usage.prices", "llmcli.usage.log", "sqlite3"} <= names
    assert not names & (LAZY - {"sqlite3"})


def test_schema_loads_the_own_validator_not_a_library(api_env):
    names = imported("chat", "--schema", '{"type":"object"}', "hello", env=api_env)
    assert "llmcli.core.schema" in names
    assert not names & {"jsonschema", "llmcli.core.attachments"}


def test_log_false_never_loads_sqlite(api_env, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("log: false\n")
    names = imported("chat", "hello", env=dict(api_env, LLMCLI_CONFIG=str(config)))
    assert "httpx" in names and "sqlite3" not in names
