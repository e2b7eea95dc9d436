"""Cost: the price table and overrides, `cost` in every output, `--max-cost` stopping a
batch that `--resume` then finishes, and the `--dry-run` figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from llmcli.config import load_settings
from llmcli.core.errors import ConfigError
from llmcli.usage.estimate import estimate, prompt_tokens, text_tokens
from llmcli.usage.prices import Price, PriceError, load_table, parse_entry, shipped

# USD per 1M tokens for the test server's model: 1 token = $0.001 in, $0.002 out.
PRICED = "prices:\n  test-model: {input: 1000, output: 2000, cached_input: 500, batch_discount: 0.5}\n"


@pytest.fixture
def priced(clean_env: Path) -> Path:
    clean_env.mkdir(parents=True, exist_ok=True)
    (clean_env / "config.yaml").write_text(PRICED)
    return clean_env


def test_every_shipped_entry_is_a_price_with_date_and_source():
    for model, entry in shipped().items():
        assert isinstance(parse_entry(model, entry), Price)
        assert len(entry["date"]) == 10 and entry["source"].startswith("https://")
    doc = (Path(__file__).parent.parent / "docs" / "cost.md").read_text()
    assert all(f"| `{model}` |" in doc for model in shipped())


def test_lookup_strips_provider_prefixes_and_snapshot_dates():
    table = load_table()
    mini = table.lookup("gpt-4o-mini")
    assert mini is not None
    assert table.lookup("gpt-4o-mini-2024-07-18") is mini is table.lookup("openai/gpt-4o-mini")
    assert table.lookup("claude-sonnet-4-20250514") is table.lookup("claude-sonnet-4")
    assert table.lookup("gpt-4o-audio-preview") is None and table.lookup(None) is None


def test_cost_counts_cached_tokens_and_the_batch_discount():
    price = Price(input=2.0, output=8.0, cached_input=0.5, batch_discount=0.5)
    usage = {"prompt_tokens": 1000, "completion_tokens": 100,
             "prompt_tokens_details": {"cached_tokens": 400}}
    assert price.cost(usage) == pytest.approx((600 * 2 + 400 * 0.5 + 100 * 8) / 1e6)
    assert price.cost(usage, batch=True) == pytest.approx(price.cost(usage) / 2)
    assert price.cost({"prompt_tokens": 10, "cache_read_input_tokens": 10}) == pytest.approx(10 * 0.5 / 1e6)
    assert price.cost(None) is None and price.cost({"total_tokens": 3}) is None


def test_negative_token_counts_from_a_broken_server_never_make_a_refund():
    """A negative cost would give budget back to `--max-cost` and lower `usage` totals."""
    price = Price(input=2.0, output=8.0, cached_input=0.5)
    assert price.cost({"prompt_tokens": -10, "completion_tokens": -5}) is None
    assert price.cost({"prompt_tokens": 10, "completion_tokens": -5}) == pytest.approx(20 / 1e6)
    cheated = {"prompt_tokens": 10, "completion_tokens": 0,
               "prompt_tokens_details": {"cached_tokens": -100}}
    assert price.cost(cheated) == pytest.approx(20 / 1e6)


def test_config_prices_override_and_a_profile_adds_to_them(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("prices:\n  gpt-4o: {input: 1, output: 2}\n  mine: {input: 3, output: 4}\n"
                   "profiles:\n  p:\n    prices:\n      theirs: {input: 5, output: 6}\n")
    settings = load_settings(config=str(cfg), profile="p", environ={})
    table = load_table(settings["prices"])
    assert table.lookup("gpt-4o") == Price(1.0, 2.0)
    assert table.lookup("mine") == Price(3.0, 4.0) and table.lookup("theirs") == Price(5.0, 6.0)
    assert table.lookup("gpt-4o-mini") is not None       # the shipped table stays under it
    with pytest.raises(PriceError, match="prices.x needs output"):
        load_table({"x": {"input": 1}})
    cfg.write_text("prices: [1, 2]\n")
    with pytest.raises(ConfigError, match="prices must be"):
        load_settings(config=str(cfg), environ={})


def test_a_bad_price_in_the_config_is_a_config_error(cli, clean_env):
    clean_env.mkdir(parents=True, exist_ok=True)
    (clean_env / "config.yaml").write_text("prices:\n  test-model: {input: -1, output: 1}\n")
    done = cli("chat", "hi")
    assert done.returncode == 3 and "prices.test-model.input" in done.stderr


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_a_price_of_nan_or_infinity_is_a_config_error_not_a_cost_of_nan(cli, clean_env, value):
    """`cost: NaN` is not JSON: `jq` and every strict parser refuse the whole line."""
    clean_env.mkdir(parents=True, exist_ok=True)
    (clean_env / "config.yaml").write_text(f"prices:\n  test-model: {{input: {value}, output: 1}}\n")
    done = cli("chat", "--json", "hi")
    assert done.returncode == 3 and "prices.test-model.input" in done.stderr
    assert "NaN" not in done.stdout


def test_chat_and_stream_json_carry_the_cost(cli, priced):
    chat = json.loads(cli("chat", "--json", "one two three").stdout)
    usage = chat["usage"]
    assert chat["cost"] == pytest.approx(usage["prompt_tokens"] * 0.001 + usage["completion_tokens"] * 0.002)
    stream = cli("stream", "--json", "one two")
    done = json.loads(stream.stdout.splitlines()[-1])
    assert done["type"] == "done" and done["cost"] == pytest.approx(
        done["usage"]["prompt_tokens"] * 0.001 + done["usage"]["completion_tokens"] * 0.002)


def test_schema_retries_count_every_request_in_the_cost(cli, priced):
    schema = '{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}'
    once = json.loads(cli("chat", "--json", "--schema", schema, "q").stdout)
    twice = json.loads(cli("chat", "--json", "--schema", schema, "--schema-retries", "1",
                           "q #invalid-schema").stdout)
    assert twice["cost"] > once["cost"] > 0


def test_batch_records_summary_and_progress_carry_the_spend(cli, priced, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("alpha beta\ngamma\n")
    summary = tmp_path / "s.json"
    done = cli("batch", str(src), "--summary-json", str(summary))
    assert done.returncode == 0, done.stderr
    records = [json.loads(x) for x in done.stdout.splitlines()]
    costs = [r["usage"]["prompt_tokens"] * 0.001 + r["usage"]["completion_tokens"] * 0.002 for r in records]
    assert [r["cost"] for r in records] == pytest.approx(costs)
    assert json.loads(summary.read_text())["cost"] == {"usd": pytest.approx(sum(costs)), "unpriced": 0}
    assert f"llmcli: cost ${sum(costs):.4f}" in done.stderr
    unpriced = cli("batch", str(src), "-m", "test-model-large")
    assert [json.loads(x)["cost"] for x in unpriced.stdout.splitlines()] == [None, None]
    assert "2 replies of models with no known price" in unpriced.stderr


def test_max_cost_stops_before_the_budget_and_resume_finishes(cli, priced, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"p{i}\n" for i in range(20)))
    out = tmp_path / "out.jsonl"
    # worst case of one item: (8 estimated prompt tokens x 1.6) x $0.001 + 10 x $0.002
    # = $0.0328; a reply really costs 1 x 0.001 + 2 x 0.002 = $0.005.
    first = cli("batch", str(src), "-o", str(out), "-c", "1", "--max-tokens", "10", "--max-cost", "0.06")
    assert first.returncode == 9, first.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    spent = sum(r["cost"] for r in records)
    assert len(records) == 6 and spent <= 0.06
    assert math.isclose(spent, 0.03) and "--max-cost: the next request could cost up to" in first.stderr
    resume = [line for line in first.stderr.splitlines() if "to finish the run" in line][0]
    assert "--resume" in resume and "14 item(s) not run" in resume
    second = cli("batch", str(src), "-o", str(out), "--max-tokens", "10", "--resume")
    assert second.returncode == 0, second.stderr
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert sorted(ids, key=int) == [str(i) for i in range(1, 21)]


def test_max_cost_holds_with_requests_in_flight(cli, priced, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"p{i} #latency:20\n" for i in range(40)))
    out = tmp_path / "out.jsonl"
    done = cli("batch", str(src), "-o", str(out), "-c", "8", "--max-tokens", "10", "--max-cost", "0.1")
    assert done.returncode == 9, done.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert 0 < len(records) < 40 and sum(r["cost"] for r in records) <= 0.1


def test_max_cost_needs_a_known_price_and_a_bound(cli, priced, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("a\n")
    unknown = cli("batch", str(src), "-m", "test-model-large", "--max-tokens", "5", "--max-cost", "1")
    assert unknown.returncode == 2 and "no price for model 'test-model-large'" in unknown.stderr
    # a wheel has no docs/ folder: the message names the command that shows the page
    assert "llmcli docs cost" in unknown.stderr and "docs/cost.md" not in unknown.stderr
    unbounded = cli("batch", str(src), "--max-cost", "1")
    assert unbounded.returncode == 9 and "no max_tokens" in unbounded.stderr


def test_max_cost_stops_before_a_pdf_it_cannot_bound(cli, priced, server, tmp_path):
    """A PDF's pages are billed but not estimated (0 tokens): admitting it would let a
    run pass --max-cost (measured: $0.60 spent under --max-cost 0.5)."""
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4\n" + b"x" * 100)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "read", "attachments": [str(tmp_path / "doc.pdf")]}) + "\n")
    before = server.stats()["total_requests"]
    done = cli("batch", str(src), "-o", str(tmp_path / "out.jsonl"), "--max-tokens", "5",
               "--max-cost", "1")
    assert done.returncode == 9 and "attaches a PDF" in done.stderr, done.stderr
    assert server.stats()["total_requests"] == before


def test_dry_run_prints_the_figures_and_sends_nothing(cli, priced, server, tmp_path):
    prompts = ["hello world", "a" * 40, "é" * 10]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts) + "not json\n")
    summary = tmp_path / "est.json"
    before = server.stats()["total_requests"]
    done = cli("batch", str(src), "--dry-run", "--max-tokens", "10", "--summary-json", str(summary))
    assert done.returncode == 0, done.stderr
    assert server.stats()["total_requests"] == before
    tokens = sum(3 + 4 + text_tokens(p) for p in prompts)
    assert tokens == 3 * 7 + 3 + 10 + 5
    data = json.loads(summary.read_text())
    assert (data["items"], data["invalid_input"], data["prompt_tokens"]) == (4, 1, tokens)
    assert data["max_output_tokens"] == 30
    assert data["cost"] == {"min": pytest.approx(tokens * 0.001), "max": pytest.approx(tokens * 0.001 + 30 * 0.002)}
    assert data["batch_cost"]["max"] == pytest.approx(data["cost"]["max"] / 2)
    assert f"~{tokens:,}" in done.stdout and "at most 30 (max_tokens)" in done.stdout
    assert f"${tokens * 0.001:,.4f} to ${tokens * 0.001 + 0.06:,.4f}" in done.stdout


def test_dry_run_needs_no_key_and_says_what_it_cannot_bound(tmp_path, clean_env):
    from .conftest import run_cli

    src = tmp_path / "in.txt"
    src.write_text("x\n")
    done = run_cli("batch", str(src), "--dry-run", "-m", "no-such-model")
    assert done.returncode == 0, done.stderr
    assert "no upper bound" in done.stdout and "no price for model 'no-such-model'" in done.stdout


def test_estimate_counts_images_and_keeps_one_counter_per_model():
    body = {"model": "gpt-4o", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "abcd"},
                                     {"type": "image_url", "image_url": {"url": "https://x"}}]}]}
    assert prompt_tokens(body) == 3 + 4 + 1 + 765
    est = estimate(iter([body] * 1000 + [None]), load_table())
    assert est.items == 1001 and est.invalid == 1 and list(est.models) == ["gpt-4o"]
    low, high = est.cost_range()
    assert low == pytest.approx(773_000 * 2.5 / 1e6) and high == pytest.approx(low + 5000 * 10 / 1e6)


def test_remote_dry_run_lists_the_parts_then_the_discounted_cost(cli, priced, server, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("alpha\nbeta\ngamma\n")
    summary = tmp_path / "est.json"
    before = server.stats()["total_requests"]
    done = cli("batch", str(src), "-o", str(tmp_path / "out.jsonl"), "--remote", "--dry-run",
               "--max-tokens", "10", "--summary-json", str(summary))
    assert done.returncode == 0, done.stderr
    assert server.stats()["total_requests"] == before and not (tmp_path / "out.jsonl").exists()
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["part", "lines", "bytes"]
    assert any(line.startswith("with --remote") for line in lines)
    data = json.loads(summary.read_text())
    assert data["items"] == 3 and data["batch_cost"]["max"] == pytest.approx(data["cost"]["max"] / 2)
    refused = cli("batch", str(src), "-o", str(tmp_path / "o2.jsonl"), "--remote", "--max-cost", "1")
    assert refused.returncode == 2 and "--max-cost is for runs" in refused.stderr


class _Words:
    """A stand-in encoding: one token per word (the test server's count)."""

    def encode_ordinary(self, text: str) -> list[int]:
        return [0] * len(text.split())


def test_bpe_openai_counts_openai_models_exactly_when_installed(monkeypatch):
    import sys
    import types

    from llmcli.usage import estimate as est

    fake = types.SimpleNamespace(get_encoding=lambda name: _Words())
    monkeypatch.setitem(sys.modules, "bpe_openai", fake)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two three four five six"}]}
    assert est.encoding_for("openai/gpt-5-mini") == "o200k_base" and est.encoding_for("gpt-4") == "cl100k_base"
    assert est.encoding_for("claude-sonnet-4") is None
    exact = est.estimate([body] * 3, load_table())
    assert exact.method == "exact" and exact.prompt_tokens == 3 * (3 + 4 + 6)
    other = {**body, "model": "claude-sonnet-4"}
    mixed = est.estimate([body, other], load_table())
    assert mixed.method == "mixed" and mixed.models["claude-sonnet-4"].method == "heuristic"
    monkeypatch.setattr(est, "SAMPLE", 2)
    calibrated = est.estimate([body] * 4 + [{**body, "messages": [{"role": "user", "content": "x " * 40}]}], load_table())
    m = calibrated.models["gpt-4o-mini"]
    assert m.method == "calibrated" and m.sampled == 2
    heuristic = est.estimate([body] * 4 + [{**body, "messages": [{"role": "user", "content": "x " * 40}]}],
                             load_table(), exact=False)
    assert calibrated.prompt_tokens == round(heuristic.prompt_tokens * 13 / prompt_tokens(body))
    assert "calibrated on 2 items" in "\n".join(est.describe(calibrated))


def test_without_bpe_openai_the_heuristic_is_used(monkeypatch):
    import sys

    from llmcli.usage import estimate as est

    monkeypatch.setitem(sys.modules, "bpe_openai", None)     # import fails
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "abcd"}]}
    result = est.estimate([body], load_table())
    assert result.method == "heuristic" and result.to_dict()["method"] == "heuristic"
