"""Property-based fuzzing of config validation: whatever a repository pushes as deploy.yml,
parse_config returns a config or raises ConfigError (never anything else), within a deadline;
and the glob matcher agrees with fnmatch while staying linear."""

from __future__ import annotations

import fnmatch
import re
import sys

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import globs
from bot.config import ConfigError, DeployConfig, parse_config
from bot.globs import glob_match

# No deadline: how long an example takes on a loaded machine says nothing; work is counted instead.
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Pieces YAML gives meaning to, so random text reaches the parser's and the model's corners.
TOKENS = ["service: ", "web", "environments:", "production:", "  ", "    ", "\n", "- ", ": ", "[", "]", "{", "}",
          ",", "&a ", "*a", "!!binary ", "!!python/object:os.system ", "? ", "<<: ", "|", ">", "'", '"', "#",
          "\\n", "listen: ", "127.0.0.1:80", "health:", "path: ", "/x", "checks:", "memory: ", "512Mi", "cpus: ",
          "timeout: ", "1e400", ".inf", "-1", "0x1F", "2026-13-45", "~", "null", "true", "%YAML 1.1\n", "---\n",
          "...\n", "\t", "\x00", "\ufeff", "\u2028", "9" * 50]
KEYS = ["service", "branch", "environments", "production", "checks", "health", "path", "listen", "memory",
        "cpus", "timeout", "migrations", "paths", "branches", "deployers", "depends_on", "name", "run", "window",
        "notify", "bake", "interval", "replicas", "ecs", "rollback"]


def outcome(text: str) -> DeployConfig | ConfigError:
    try:
        config = parse_config(text)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must say why"
        for problem in exc.problems:
            assert "\n" not in str(problem), "a problem must stay on one line"
        return exc
    # The pipeline stores the production config as JSON and reads it back: that must hold.
    assert DeployConfig.model_validate_json(config.model_dump_json()) == config
    return config


@FUZZ
@given(st.text(max_size=2000))
def test_arbitrary_text_is_a_config_or_a_config_error(text):
    outcome(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=200).map("".join))
def test_yaml_shaped_text_is_a_config_or_a_config_error(text):
    outcome(text)


scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=40) | st.sampled_from(["web", "production", "127.0.0.1:8080", "/health", "512m", "10m"]))
structures = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10),
                                                                      children, max_size=6),
    max_leaves=60,
)


@FUZZ
@given(st.fixed_dictionaries({"service": st.sampled_from(["web", "api_2", "Web", ""])},
                             optional={"environments": st.dictionaries(st.sampled_from(["production", "qa", "../x"]),
                                                                       st.dictionaries(st.sampled_from(KEYS), scalars,
                                                                                       max_size=4), max_size=3),
                                       "health": st.dictionaries(st.sampled_from(KEYS), scalars, max_size=4),
                                       "checks": st.lists(st.fixed_dictionaries(
                                           {"name": st.just("unit"), "run": st.just("true")},
                                           optional={k: scalars for k in ("cpus", "memory", "timeout")}), max_size=2)}))
def test_near_valid_configs_are_a_config_or_a_config_error(data):
    outcome(yaml.safe_dump(data, allow_unicode=True))


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), structures, max_size=8))
def test_arbitrary_nested_structures_are_a_config_or_a_config_error(data):
    outcome(yaml.safe_dump(data, allow_unicode=True))
    outcome(yaml.safe_dump(data, default_flow_style=True, width=10_000))


@FUZZ
@given(st.integers(min_value=1, max_value=200), st.sampled_from(["[", "{a: ", "- "]))
def test_deep_nesting_is_refused_quickly(depth, opener):
    text = "service: web\nx: " + opener * depth
    outcome(text)  # refused or accepted, never a crash (bench/hostile_config.py times it)


# --- globs ---------------------------------------------------------------------------------------

glob_alphabet = st.text(alphabet="ab/*?[]!", max_size=12)
names = st.text(alphabet="ab/[]!", max_size=16)


@FUZZ
@given(names, glob_alphabet)
def test_branch_globs_agree_with_fnmatch(name, pattern):
    assert glob_match(name, pattern) == fnmatch.fnmatchcase(name, pattern)


def _reference_path_glob(pattern: str) -> re.Pattern:
    """The regex translation migrations.paths used before (backtracking, fine on tiny inputs)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z", re.DOTALL)


@FUZZ
@given(st.text(alphabet="ab/.", max_size=16), st.text(alphabet="ab/*?", max_size=10))
def test_path_globs_agree_with_the_old_translation(path, pattern):
    if "***" in pattern:  # the old translation read `***` as `**` then `*`; both mean "anything"
        pattern = pattern.replace("***", "**")
    assert glob_match(path, pattern, paths=True) == bool(_reference_path_glob(pattern).match(path))


@FUZZ
@given(st.text(alphabet="a*?b", min_size=1, max_size=100), st.integers(min_value=0, max_value=4000),
       st.booleans())
def test_globs_take_linear_time_whatever_the_pattern(pattern, length, paths):
    # The work, counted: every Python call the matcher makes (its steps, the predicates of its
    # states, its closures). A backtracking matcher makes exponentially many on these patterns;
    # this one at most a few per character and pattern state.
    text = "a" * length + "c"
    calls = _calls_in(globs, lambda: glob_match(text, pattern, paths=paths))
    states = 2 * len(pattern) + 2
    assert calls <= (len(text) + 1) * (states + 3) + 10 * states, (calls, len(text), len(pattern))


def _calls_in(module, run) -> int:
    """How many Python function calls `run` makes into code of `module`."""
    where = module.__file__
    count = 0

    def profile(frame, event, _arg):
        nonlocal count
        if event == "call" and frame.f_code.co_filename == where:
            count += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return count
