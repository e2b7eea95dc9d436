"""Settings: every layer of the precedence, where each value came from, profiles, the
key-unit rule, and errors that name the file, the key and the line."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path
from typing import Any, Optional

import pytest

from llmcli.config import config_dir, config_path, load_settings
from llmcli.config.files import write_private
from llmcli.config.settings import Settings
from llmcli.config.template import TEMPLATE
from llmcli.core.errors import ConfigError
from llmcli.core.options import DEFAULT_BASE_URL

OPENAI_KEY = "sk-openai-000000000000AAAA"
FILE_KEY = "sk-file-1111111111111BBBB"
PROFILE_KEY = "gsk_profile-2222222222CCCC"


@pytest.fixture
def write(tmp_path: Path):
    """``write(yaml_text)`` writes a config file and returns its path as a string."""
    def _write(text: str, name: str = "config.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return str(path)
    return _write


def load(config: Optional[str] = None, profile: Optional[str] = None,
         flags: Optional[dict[str, Any]] = None, **env: str) -> Settings:
    return load_settings(config=config, profile=profile, flags=flags, environ=env)


def config_error(**kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(**kwargs)
    return info.value


LAYERED = """\
    model: file-model
    base_url: http://file.test/v1
    temperature: 0.1
    max_tokens: 100
    timeout: 30
    system: file system
    profiles:
      p:
        model: profile-model
        temperature: 0.5
        max_tokens: 200
"""


# --- precedence ------------------------------------------------------------------------

def test_defaults_without_file_or_env() -> None:
    settings = load()
    assert settings["base_url"] == DEFAULT_BASE_URL
    assert settings["model"] == "gpt-4o-mini"
    assert (settings["timeout"], settings["connect_timeout"], settings["max_retries"]) == (
        600.0, 10.0, 3)
    assert settings["api_key"] is None and settings["temperature"] is None
    assert set(settings.sources.values()) == {"default"}
    assert settings.file_found is False and settings.profile is None


def test_every_layer_overrides_the_one_below(write: Any) -> None:
    path = write(LAYERED)
    settings = load(config=path, profile="p", flags={"max_tokens": 400, "model": None},
                    OPENAI_BASE_URL="http://openai-env.test/v1", LLMCLI_TEMPERATURE="0.9",
                    LLMCLI_MAX_TOKENS="300")
    v, src = settings.values, settings.sources
    assert (v["timeout"], src["timeout"]) == (30, f"file {path}")
    assert (v["system"], src["system"]) == ("file system", f"file {path}")
    assert (v["base_url"], src["base_url"]) == ("http://openai-env.test/v1", "env:OPENAI_BASE_URL")
    assert (v["model"], src["model"]) == ("profile-model", "profile p")    # a None flag is no flag
    assert (v["temperature"], src["temperature"]) == (0.9, "env:LLMCLI_TEMPERATURE")
    assert (v["max_tokens"], src["max_tokens"]) == (400, "flag")
    assert (v["connect_timeout"], src["connect_timeout"]) == (10.0, "default")


@pytest.mark.parametrize("env, flags, expected, source", [
    ({}, {}, "http://file.test/v1", "file"),
    ({"OPENAI_BASE_URL": "http://oa.test/v1"}, {}, "http://oa.test/v1", "env:OPENAI_BASE_URL"),
    ({"OPENAI_BASE_URL": "http://oa.test/v1", "LLMCLI_BASE_URL": "http://ll.test/v1"}, {},
     "http://ll.test/v1", "env:LLMCLI_BASE_URL"),
    ({"LLMCLI_BASE_URL": "http://ll.test/v1"}, {"base_url": "http://flag.test/v1"},
     "http://flag.test/v1", "flag"),
])
def test_base_url_precedence(write: Any, env: dict[str, str], flags: dict[str, Any],
                             expected: str, source: str) -> None:
    path = write("base_url: http://file.test/v1\n")
    settings = load(config=path, flags=flags, **env)
    assert settings["base_url"] == expected
    assert settings.sources["base_url"] == (f"file {path}" if source == "file" else source)


def test_profile_sits_above_openai_env_and_below_llmcli_env(write: Any) -> None:
    path = write("""\
        profiles:
          local:
            base_url: http://127.0.0.1:11434/v1
            model: llama3
    """)
    settings = load(config=path, profile="local", OPENAI_BASE_URL="http://oa.test/v1",
                    LLMCLI_MODEL="qwen")
    assert settings["base_url"] == "http://127.0.0.1:11434/v1"
    assert settings.sources["base_url"] == "profile local"
    assert (settings["model"], settings.sources["model"]) == ("qwen", "env:LLMCLI_MODEL")


@pytest.mark.parametrize("api", ["gemini", "anthropic"])
def test_openai_env_never_hides_a_native_dialect_s_file_settings(write: Any, api: str) -> None:
    """OPENAI_BASE_URL/OPENAI_API_KEY in the shell are OpenAI's: for a file that says
    `api: gemini`, its own base_url and api_key_env hold, not the dialect's default host."""
    path = write(f"""\
        api: {api}
        base_url: http://127.0.0.1:9/v1beta
        api_key_env: MY_NATIVE_KEY
    """)
    settings = load(config=path, OPENAI_BASE_URL="http://oa.test/v1", OPENAI_API_KEY="sk-oa-x" * 3,
                    MY_NATIVE_KEY="native-key-0123456789")
    assert settings["base_url"] == "http://127.0.0.1:9/v1beta"
    assert settings.sources["base_url"] == f"file {path}"
    assert settings.api_key() == "native-key-0123456789"


def test_openai_env_still_sets_openai_chat_over_the_file(write: Any) -> None:
    path = write("base_url: http://file.test/v1\n")
    settings = load(config=path, OPENAI_BASE_URL="http://oa.test/v1", OPENAI_API_KEY="sk-oa-x" * 3)
    assert settings["base_url"] == "http://oa.test/v1"
    assert settings.api_key() == "sk-oa-x" * 3


@pytest.mark.parametrize("var, raw, name, value", [
    ("LLMCLI_MAX_RETRIES", "5", "max_retries", 5),
    ("LLMCLI_TIMEOUT", "2.5", "timeout", 2.5),
    ("LLMCLI_MAX_TIME", "0", "max_time", 0.0),
    ("LLMCLI_AUTH_HEADER", "api-key", "auth_header", "api-key"),
    ("LLMCLI_SYSTEM", "be terse", "system", "be terse"),
])
def test_llmcli_env_values_are_parsed(var: str, raw: str, name: str, value: Any) -> None:
    settings = load(**{var: raw})
    assert settings[name] == value and type(settings[name]) is type(value)
    assert settings.sources[name] == f"env:{var}"


@pytest.mark.parametrize("var, raw", [
    ("LLMCLI_MAX_RETRIES", "three"),
    ("LLMCLI_MAX_RETRIES", "2.5"),
    ("LLMCLI_TEMPERATURE", "hot"),
    ("LLMCLI_MAX_RETRIES", "-1"),
    ("LLMCLI_TIMEOUT", "0"),
    ("LLMCLI_MAX_TOKENS", "0"),
])
def test_invalid_env_values_are_config_errors_naming_the_variable(var: str, raw: str) -> None:
    exc = config_error(**{var: raw})
    assert exc.message.startswith(f"${var}={raw!r} is not valid: ")
    assert exc.key == var


def test_empty_env_values_are_ignored() -> None:
    settings = load(LLMCLI_MODEL="", OPENAI_API_KEY="")
    assert settings["model"] == "gpt-4o-mini" and settings["api_key"] is None


def test_client_options_carry_the_settings(write: Any) -> None:
    path = write("""\
        base_url: http://x.test/v1
        api_key: KEY-0123456789
        timeout: 12
        connect_timeout: 3
        max_time: 0
        max_retries: 1
        headers: {X-A: b, X-N: 1}
        query: {api-version: 2024-06-01}
        auth_header: api-key
        auth_scheme: ""
    """)
    options = load(config=path).client_options()
    assert (options.base_url, options.api_key) == ("http://x.test/v1", "KEY-0123456789")
    assert (options.read_timeout, options.connect_timeout, options.max_time) == (12.0, 3.0, None)
    assert options.retry.max_retries == 1
    assert options.headers == {"X-A": "b", "X-N": "1"}
    assert options.query == {"api-version": "2024-06-01"}
    assert options.request_headers()["api-key"] == "KEY-0123456789"


# --- profiles --------------------------------------------------------------------------

PROFILES = """\
    model: top
    default_profile: b
    profiles:
      a:
        model: model-a
      b:
        model: model-b
"""


@pytest.mark.parametrize("profile, env, chosen", [
    (None, {}, "b"),                                  # default_profile
    (None, {"LLMCLI_PROFILE": "a"}, "a"),              # env beats default_profile
    ("b", {"LLMCLI_PROFILE": "a"}, "b"),               # the flag beats env
])
def test_profile_choice(write: Any, profile: Optional[str], env: dict[str, str],
                        chosen: str) -> None:
    settings = load(config=write(PROFILES), profile=profile, **env)
    assert settings.profile == chosen
    assert settings["model"] == f"model-{chosen}"
    assert settings.sources["model"] == f"profile {chosen}"
    assert settings.profiles == ["a", "b"]


def test_no_profile_chosen_uses_the_top_level(write: Any) -> None:
    settings = load(config=write("model: top\nprofiles:\n  a:\n    model: model-a\n"))
    assert settings.profile is None and settings["model"] == "top"


def test_unknown_profile_lists_the_profiles(write: Any) -> None:
    exc = config_error(config=write(PROFILES), profile="c")
    assert "'c'" in exc.message and "a, b" in exc.message
    exc = config_error(LLMCLI_PROFILE="nope")
    assert "'nope'" in exc.message and "none defined" in exc.message


def test_default_profile_that_does_not_exist_names_its_line(write: Any) -> None:
    path = write("model: x\ndefault_profile: missing\nprofiles:\n  a: {}\n")
    exc = config_error(config=path)
    assert exc.line == 2 and exc.key == "default_profile"
    assert exc.message.startswith(f"{path}:2: ")


def test_empty_profiles_section_and_empty_profile(write: Any) -> None:
    # What is left after commenting out the template's example profile, or its keys.
    settings = load(config=write("model: m\nprofiles:\n#  local:\n#    model: llama3\n"))
    assert settings["model"] == "m" and settings.profiles == []
    settings = load(config=write("model: m\nprofiles:\n  local:\n#    model: llama3\n"),
                    profile="local")
    assert settings["model"] == "m" and settings.profile == "local"
    exc = config_error(config=write("profiles:\n  local: fast\n"))
    assert (exc.line, exc.key) == (2, "profiles.local")
    assert "a profile must be a mapping of settings" in exc.message


def test_the_init_template_is_a_valid_config(write: Any) -> None:
    settings = load(config=write(TEMPLATE))
    assert settings.profiles == ["local"]
    assert load(config=write(TEMPLATE), profile="local")["model"] == "llama3.2"


# --- the key ---------------------------------------------------------------------------

def test_openai_api_key_is_used_by_default_and_masked_when_shown() -> None:
    settings = load(OPENAI_API_KEY=OPENAI_KEY)
    assert settings.api_key() == OPENAI_KEY
    assert settings.sources["api_key"] == "env:OPENAI_API_KEY"
    rows = {name: (value, source) for name, value, source in settings.shown()}
    assert rows["api_key"] == ("sk-...AAAA", "env:OPENAI_API_KEY")
    assert all(OPENAI_KEY not in value for _, value, _ in settings.shown())


def test_profile_with_its_own_base_url_and_no_key_does_not_get_openai_api_key(write: Any) -> None:
    path = write("profiles:\n  groq:\n    base_url: https://api.groq.test/openai/v1\n")
    settings = load(config=path, profile="groq", OPENAI_API_KEY=OPENAI_KEY)
    assert settings["base_url"] == "https://api.groq.test/openai/v1"
    assert settings.api_key() is None
    assert settings.client_options().api_key is None
    assert settings.sources["api_key"] == "profile groq"


def test_profile_with_base_url_and_its_own_key_env(write: Any, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    path = write("""\
        profiles:
          groq:
            base_url: https://api.groq.test/openai/v1
            api_key_env: GROQ_API_KEY
    """)
    settings = load(config=path, profile="groq", OPENAI_API_KEY=OPENAI_KEY,
                    GROQ_API_KEY=PROFILE_KEY)
    assert settings.api_key() == PROFILE_KEY
    assert settings["api_key"] is None           # OPENAI_API_KEY was dropped as a unit


def test_profile_without_base_url_keeps_openai_api_key(write: Any) -> None:
    settings = load(config=write("profiles:\n  fast:\n    model: gpt-4o-mini\n"),
                    profile="fast", OPENAI_API_KEY=OPENAI_KEY)
    assert settings.api_key() == OPENAI_KEY


def test_a_file_key_is_overridden_by_openai_api_key_as_a_unit(write: Any) -> None:
    path = write("api_key_env: SOME_VAR\n")
    settings = load(config=path, OPENAI_API_KEY=OPENAI_KEY, SOME_VAR=FILE_KEY)
    assert settings["api_key_env"] is None
    assert settings.api_key() == OPENAI_KEY


def test_the_highest_layer_that_sets_a_key_field_decides_the_key(write: Any) -> None:
    path = write(f"""\
        api_key: {FILE_KEY}
        profiles:
          p:
            api_key_cmd: printf 'from-cmd-key\\n'
    """)
    settings = load(config=path, profile="p")
    assert settings["api_key"] is None              # the file's literal key is dropped
    assert settings.api_key() == "from-cmd-key"
    assert settings.sources["api_key_cmd"] == "profile p"
    settings = load(config=path, profile="p", LLMCLI_API_KEY_ENV="MY_KEY", MY_KEY=PROFILE_KEY)
    assert settings["api_key_cmd"] is None
    assert settings.api_key() == PROFILE_KEY
    assert settings.sources["api_key_env"] == "env:LLMCLI_API_KEY_ENV"


def test_api_key_env_set_and_unset(write: Any) -> None:
    path = write("api_key_env: MY_LLM_KEY\n")
    assert load(config=path, MY_LLM_KEY=FILE_KEY).api_key() == FILE_KEY
    settings = load(config=path)
    with pytest.raises(ConfigError, match=r"\$MY_LLM_KEY, which is not set") as info:
        settings.api_key()
    assert info.value.key == "api_key_env"
    assert settings.client_options(resolve_key=False).api_key is None


def test_api_key_cmd_runs_a_real_command(write: Any) -> None:
    path = write("api_key_cmd: printf '  sk-from-cmd-0000DDDD  \\nsecond line\\n'\n")
    settings = load(config=path)
    assert settings.api_key() == "sk-from-cmd-0000DDDD"
    assert settings.client_options().api_key == "sk-from-cmd-0000DDDD"


@pytest.mark.parametrize("command, exit_code", [("printf 'sk-x\\n'; exit 3", 3),
                                                ("true", 0),
                                                ("printf '   \\n'", 0)])
def test_a_failing_or_silent_api_key_cmd_is_a_config_error(write: Any, command: str,
                                                           exit_code: int) -> None:
    settings = load(config=write(f"api_key_cmd: \"{command}\"\n"))
    with pytest.raises(ConfigError) as info:
        settings.api_key()
    assert f"exit {exit_code}" in info.value.message and info.value.key == "api_key_cmd"
    assert "sk-x" not in info.value.message


# --- errors name the file, the key and the line -----------------------------------------

def test_unknown_key_names_file_key_and_line(write: Any) -> None:
    path = write("model: m\n\n# a comment\ntimout: 30\n")
    exc = config_error(config=path)
    assert exc.line == 4 and exc.key == "timout" and exc.path == path
    assert exc.message == f"{path}:4: unknown key 'timout' (did you mean timeout?)"


def test_unknown_key_inside_a_profile(write: Any) -> None:
    path = write("""\
        model: m
        profiles:
          local:
            base_url: http://127.0.0.1/v1
            modle: llama
    """)
    exc = config_error(config=path, profile="local")
    assert exc.line == 5 and exc.key == "profiles.local.modle"
    assert exc.message.startswith(f"{path}:5: unknown key 'modle'")


@pytest.mark.parametrize("line, expected", [
    ("timeout: '30'", "timeout must be a positive number of seconds, not str"),
    ("timeout: -1", "timeout must be a positive number of seconds, not int"),
    ("max_retries: 1.5", "max_retries must be a whole number >= 0, not float"),
    ("max_retries: true", "max_retries must be a whole number >= 0, not bool"),
    ("max_tokens: 0", "max_tokens must be a positive integer, not int"),
    ("model: [a, b]", "model must be a string, not list"),
    ("headers: {X-A: [1]}", "headers must be a mapping of header names to strings, not dict"),
    ("verify: 'no'", "verify must be true or false, not str"),
    ("profiles: [a, b]", "profiles must be a mapping of profile names"),
])
def test_wrong_type_names_file_key_and_line(write: Any, line: str, expected: str) -> None:
    path = write(f"# llmcli\nmodel: ok\n{line}\n".replace("model: ok\nmodel:", "model:"))
    exc = config_error(config=path)
    key = line.split(":")[0]
    assert exc.key == key
    assert exc.line == (2 if key == "model" else 3)
    assert exc.message == f"{path}:{exc.line}: {expected}"


def test_wrong_type_inside_a_profile(write: Any) -> None:
    path = write("profiles:\n  p:\n    model: m\n    temperature: warm\n")
    exc = config_error(config=path)
    assert (exc.line, exc.key) == (4, "profiles.p.temperature")
    assert "temperature must be a number, not str" in exc.message


@pytest.mark.parametrize("text, line", [
    ("model: m\nbase_url: http://x\n  timeout: 3\n", 3),          # bad indentation
    # something left open is blamed on the line where it starts, not where (or after
    # which) PyYAML gave up: the file's end may be many lines, or no line, further
    ("model: m\nheaders: {X-A: b\ntimeout: 3\n", 2),              # unclosed flow mapping
    ("model: m\n\tbase_url: x\n", 2),                             # a tab
    ("model: 'unterminated\n", 1),
])
def test_broken_yaml_names_file_and_line(write: Any, text: str, line: int) -> None:
    path = write(text)
    exc = config_error(config=path)
    assert exc.line == line and exc.path == path
    assert exc.message.startswith(f"{path}:{line}: broken YAML: ")


def test_a_file_that_is_not_a_mapping(write: Any) -> None:
    path = write("- model\n- base_url\n")
    exc = config_error(config=path)
    assert exc.path == path and "must be a mapping" in exc.message


def test_empty_and_comment_only_files_are_fine(write: Any) -> None:
    assert load(config=write(""))["model"] == "gpt-4o-mini"
    settings = load(config=write("# nothing yet\n"))
    assert settings.file_found and settings["model"] == "gpt-4o-mini"


def test_null_values_mean_unset(write: Any) -> None:
    settings = load(config=write("model:\ntemperature: ~\n"))
    assert settings["model"] == "gpt-4o-mini" and settings.sources["model"] == "default"


def test_explicit_config_that_does_not_exist(tmp_path: Path) -> None:
    exc = config_error(config=str(tmp_path / "nope.yaml"))
    assert "does not exist" in exc.message and exc.path == str(tmp_path / "nope.yaml")


# --- where the file is, and writing it -----------------------------------------------

def test_config_path_honours_flag_then_llmcli_config_then_xdg(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LLMCLI_CONFIG", raising=False)
    assert config_dir() == tmp_path / "xdg" / "llmcli"
    assert config_path() == tmp_path / "xdg" / "llmcli" / "config.yaml"
    monkeypatch.setenv("LLMCLI_CONFIG", str(tmp_path / "env.yaml"))
    assert config_path() == tmp_path / "env.yaml"
    assert config_path(str(tmp_path / "flag.yaml")) == tmp_path / "flag.yaml"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path("~/my.yaml") == tmp_path / "home" / "my.yaml"


def test_config_dir_without_xdg_is_under_home(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_dir() == tmp_path / "home" / ".config" / "llmcli"


def test_load_settings_finds_the_file_through_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "xdg" / "llmcli").mkdir(parents=True)
    (tmp_path / "xdg" / "llmcli" / "config.yaml").write_text("model: from-xdg\n")
    (tmp_path / "env.yaml").write_text("model: from-env-var\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_settings()["model"] == "from-xdg"
    monkeypatch.setenv("LLMCLI_CONFIG", str(tmp_path / "env.yaml"))
    settings = load_settings()
    assert settings["model"] == "from-env-var" and settings.path == tmp_path / "env.yaml"
    # environ= is the whole environment: LLMCLI_CONFIG is read from it too.
    monkeypatch.delenv("LLMCLI_CONFIG")
    assert load_settings(environ={"LLMCLI_CONFIG": str(tmp_path / "env.yaml")})[
        "model"] == "from-env-var"


def test_write_private_creates_0600_in_a_0700_dir(tmp_path: Path) -> None:
    path = tmp_path / "new" / "llmcli" / "config.yaml"
    write_private(path, "model: m\n")
    assert path.read_text() == "model: m\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_write_private_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model: keep\n")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="already exists") as info:
        write_private(path, "model: new\n")
    assert info.value.path == str(path)
    assert path.read_text() == "model: keep\n"
    write_private(path, "model: new\n", force=True)
    assert path.read_text() == "model: new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_settings_repr_never_shows_a_literal_key(write: Any) -> None:
    settings = load(config=write(f"api_key: {FILE_KEY}\n"))
    assert settings.api_key() == FILE_KEY
    assert FILE_KEY not in repr(settings)


def test_a_config_named_by_llmcli_config_must_exist(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    error = config_error(LLMCLI_CONFIG=missing)
    assert missing in error.message and "does not exist" in error.message


def test_config_show_masks_header_credentials_and_proxy_password(write: Any) -> None:
    token, password = "sk-headerSECRET0000111122223333", "proxyPASSWORD99"
    settings = load(config=write(f"headers:\n  Authorization: Bearer {token}\n  X-Title: me\n"
                                 f"proxy: http://user:{password}@proxy:3128\n"))
    shown = {name: value for name, value, _ in settings.shown()}
    assert token not in shown["headers"] and "X-Title=me" in shown["headers"]
    assert password not in shown["proxy"] and "@proxy:3128" in shown["proxy"]
