"""Settings layers: defaults < config file < workflow file < PARDAG_* environment < flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pardag
from pardag.config import SettingsError, find_config_file, resolve
from pardag.model import Settings
from pardag.states import Mode, OnFailure


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def file_workflow(tmp_path: Path, **declared: object) -> pardag.Workflow:
    """A workflow as a file reader leaves it: its source and the settings the file declared."""
    wf = pardag.Workflow("flow")
    wf.source = str(tmp_path / "flow.yaml")
    wf.file_settings = dict(declared)
    return wf


def test_defaults_when_no_layer_sets_anything(tmp_path: Path) -> None:
    resolved = resolve(None, environ={}, cwd=tmp_path)
    assert resolved.settings() == Settings()
    assert set(resolved.sources.values()) == {"default"}
    assert resolved.store == ".pardag/runs.db" and resolved.debug is False
    assert resolved.config_file is None


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    write(
        tmp_path / "pardag.toml", 'mode = "levels"\nmax_concurrency = 3\non_failure = "continue"\n'
    )
    wf = file_workflow(tmp_path, max_concurrency=4, timeout=30.0)
    env = {"PARDAG_MAX_CONCURRENCY": "5", "PARDAG_TIMEOUT": "2m"}
    resolved = resolve(wf, flags={"max_concurrency": "6"}, environ=env, cwd=tmp_path)
    assert resolved.values["mode"] is Mode.LEVELS
    assert resolved.values["on_failure"] is OnFailure.CONTINUE
    assert resolved.values["max_concurrency"] == 6
    assert resolved.values["timeout"] == 120.0
    assert resolved.sources == {
        "mode": "pardag.toml",
        "max_concurrency": "--max-concurrency",
        "on_failure": "pardag.toml",
        "timeout": "PARDAG_TIMEOUT",
        "executor": "default",
        "pools": "default",
        "http.allow": "default",
        "http.deny": "default",
        "dask.address": "default",
        "keep_outputs_on_cluster": "default",
        "store": "default",
        "debug": "default",
    }
    without_flag = resolve(wf, environ=env, cwd=tmp_path)
    assert (without_flag.values["max_concurrency"], without_flag.sources["max_concurrency"]) == (
        5,
        "PARDAG_MAX_CONCURRENCY",
    )
    without_env = resolve(wf, environ={}, cwd=tmp_path)
    assert without_env.values["max_concurrency"] == 4
    assert without_env.sources["max_concurrency"] == f"workflow file {wf.source}"
    assert without_env.values["timeout"] == 30.0


def test_what_the_workflow_file_does_not_declare_comes_from_the_config_file(
    tmp_path: Path,
) -> None:
    write(tmp_path / "pardag.toml", 'mode = "sequential"\n')
    wf = file_workflow(tmp_path, max_concurrency=2)  # Workflow's own mode default is dynamic
    resolved = resolve(wf, environ={}, cwd=tmp_path)
    assert resolved.settings().mode is Mode.SEQUENTIAL
    assert resolved.settings().max_concurrency == 2


def test_pools_merge_by_name_and_keep_a_source_each(tmp_path: Path) -> None:
    write(tmp_path / "pardag.toml", '[pools]\ndb = 2\napi = {size = 4, rate = "10/s"}\n')
    wf = file_workflow(tmp_path, pools={"db": 1})
    env = {"PARDAG_POOLS": '{"gpu": 1}'}
    resolved = resolve(wf, environ=env, cwd=tmp_path)
    assert resolved.settings().pools == {"db": 1, "api": (4, 10.0), "gpu": 1}
    assert resolved.pool_sources == {
        "db": f"workflow file {wf.source}",
        "api": "pardag.toml",
        "gpu": "PARDAG_POOLS",
    }
    rows = {name: (value, source) for name, value, source in resolved.rows()}
    assert rows["pools.api"] == ("4 at 10/s", "pardag.toml")
    assert resolved.as_json()["pools.api"]["value"] == {"size": 4, "rate": 10.0}


def test_config_file_is_found_upward_and_pardag_toml_wins_in_a_directory(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.pardag]\nmode = "levels"\n')
    write(tmp_path / "pardag.toml", 'mode = "sequential"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    resolved = resolve(None, environ={}, cwd=deep)
    assert resolved.values["mode"] is Mode.SEQUENTIAL
    assert resolved.sources["mode"] == str(Path("..", "..", "pardag.toml"))
    assert resolved.config_file == tmp_path / "pardag.toml"


def test_pyproject_without_a_pardag_table_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.pardag]\nmax_concurrency = 7\n")
    write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "other"\n')
    resolved = resolve(None, environ={}, cwd=tmp_path / "sub")
    assert resolved.values["max_concurrency"] == 7
    assert resolved.sources["max_concurrency"] == str(Path("..", "pyproject.toml")) + (
        " [tool.pardag]"
    )


def test_the_search_stops_at_the_git_root(tmp_path: Path) -> None:
    write(tmp_path / "pardag.toml", 'mode = "levels"\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    assert find_config_file(repo / "src") is None
    assert resolve(None, environ={}, cwd=repo / "src").values["mode"] is Mode.DYNAMIC
    write(repo / "pardag.toml", 'mode = "sequential"\n')
    assert resolve(None, environ={}, cwd=repo / "src").values["mode"] is Mode.SEQUENTIAL


def test_config_toml_execution_table_with_max_parallel_steps(tmp_path: Path) -> None:
    write(
        tmp_path / "config.toml",
        '[server]\nport = 80\n\n[execution]\nmode = "levels"\nmax_parallel_steps = 4\n'
        "retries = 2\n",
    )
    resolved = resolve(None, environ={}, cwd=tmp_path)
    assert resolved.values["mode"] is Mode.LEVELS
    assert resolved.values["max_concurrency"] == 4
    assert resolved.sources["max_concurrency"] == "config.toml [execution]"
    # another tool's key in a shared file is a warning, not an error
    (warning,) = resolved.warnings
    assert warning.startswith("unknown setting 'retries' in config.toml:7; the settings are: mode")


def test_execution_table_inside_pardag_toml(tmp_path: Path) -> None:
    write(tmp_path / "pardag.toml", 'store = "runs.db"\n\n[execution]\nmax_parallel_steps = 3\n')
    resolved = resolve(None, environ={}, cwd=tmp_path)
    assert resolved.values["max_concurrency"] == 3
    assert resolved.store == "runs.db"


def test_invalid_env_value_names_the_variable_and_the_accepted_values(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        resolve(None, environ={"PARDAG_MAX_CONCURRENCY": "abc"}, cwd=tmp_path)
    assert (
        str(caught.value) == "Invalid PARDAG_MAX_CONCURRENCY value 'abc': expected an integer >= 0"
    )
    assert isinstance(caught.value, pardag.ArgumentError)


def test_every_invalid_value_is_reported_at_once_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "pardag.toml", '# settings\nmode = "fast"\n\n[pools]\ndb = 0\n')
    env = {"PARDAG_ON_FAILURE": "stop", "PARDAG_TIMEOUT": "soon"}
    with pytest.raises(SettingsError) as caught:
        resolve(None, flags={"executor": "gpu"}, environ=env, cwd=tmp_path)
    assert caught.value.problems == [
        "Invalid mode value 'fast' in pardag.toml:2: expected one of dynamic, levels, sequential",
        "Invalid pools.db value 0 in pardag.toml:5: expected pools by name, each a size "
        '(an integer >= 1) or a size and a rate, like {"db": 2, "api": {"size": 4, "rate": '
        '"10/s"}}',
        "Invalid PARDAG_ON_FAILURE value 'stop': expected one of fail_fast, continue",
        "Invalid PARDAG_TIMEOUT value 'soon': expected a duration like '30s', '2m' or a number "
        "of seconds (0 or 'none': no limit)",
        "Invalid --executor value 'gpu': expected one of threads, processes, inline, dask",
    ]


def test_unknown_key_in_pardag_toml_is_an_error_with_the_closest_name(tmp_path: Path) -> None:
    write(tmp_path / "pardag.toml", "\nmax_concurency = 3\n")
    with pytest.raises(SettingsError) as caught:
        resolve(None, environ={}, cwd=tmp_path)
    assert str(caught.value) == (
        "unknown setting 'max_concurency' in pardag.toml:2; did you mean 'max_concurrency'?"
    )


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "pardag.toml", "mode = \n")
    with pytest.raises(SettingsError) as caught:
        resolve(None, environ={}, cwd=tmp_path)
    assert str(caught.value).startswith(f"{path}: malformed TOML: ")
    assert "line 1" in str(caught.value)


def test_unknown_pardag_variable_is_a_warning_naming_the_closest(tmp_path: Path) -> None:
    env = {"PARDAG_MAX_CONCURENCY": "3", "PARDAG_TIMEOUT": "1s"}
    resolved = resolve(None, environ=env, cwd=tmp_path)
    assert resolved.values["max_concurrency"] == 0
    assert resolved.warnings == (
        "unknown environment variable PARDAG_MAX_CONCURENCY is ignored; "
        "did you mean PARDAG_MAX_CONCURRENCY?",
    )


def test_execution_mode_wins_over_its_alias(tmp_path: Path) -> None:
    both = {"PARDAG_EXECUTION_MODE": "levels", "PARDAG_MODE": "sequential"}
    assert resolve(None, environ=both, cwd=tmp_path).sources["mode"] == "PARDAG_EXECUTION_MODE"
    alias = resolve(None, environ={"PARDAG_MODE": "sequential"}, cwd=tmp_path)
    assert alias.values["mode"] is Mode.SEQUENTIAL


@pytest.mark.parametrize(
    ("raw", "seconds"), [("250ms", 0.25), ("2m", 120.0), (45, 45.0), ("none", None), ("0", None)]
)
def test_timeout_values(tmp_path: Path, raw: object, seconds: float | None) -> None:
    resolved = resolve(None, flags={"timeout": raw}, environ={}, cwd=tmp_path)
    assert resolved.values["timeout"] == seconds


def test_a_flag_can_lift_a_timeout_set_below_it(tmp_path: Path) -> None:
    write(tmp_path / "pardag.toml", 'timeout = "10s"\n')
    resolved = resolve(None, flags={"timeout": "none"}, environ={}, cwd=tmp_path)
    assert resolved.settings().timeout is None
    assert resolved.sources["timeout"] == "--timeout"


def test_explicit_config_file_replaces_the_search(tmp_path: Path) -> None:
    write(tmp_path / "pardag.toml", 'mode = "levels"\n')
    other = write(tmp_path / "elsewhere" / "ci.toml", 'mode = "sequential"\ndebug = true\n')
    resolved = resolve(None, environ={"PARDAG_CONFIG": str(other)}, cwd=tmp_path)
    assert resolved.values["mode"] is Mode.SEQUENTIAL
    assert resolved.debug is True
    with pytest.raises(SettingsError, match="cannot read the config file"):
        resolve(None, config=tmp_path / "missing.toml", environ={}, cwd=tmp_path)


def test_hyphenated_choices_and_bools_from_the_environment(tmp_path: Path) -> None:
    env = {"PARDAG_ON_FAILURE": "fail-fast", "PARDAG_DEBUG": "yes", "PARDAG_EXECUTOR": "Threads"}
    resolved = resolve(None, environ=env, cwd=tmp_path)
    assert resolved.values["on_failure"] is OnFailure.FAIL_FAST
    assert resolved.values["executor"] == "threads"
    assert resolved.debug is True


def test_resolved_settings_run_a_workflow(tmp_path: Path) -> None:
    """The resolved pools count for validation: a step may use a pool the config declares."""
    write(tmp_path / "pardag.toml", 'mode = "sequential"\n[pools]\ndb = 1\n')
    wf = file_workflow(tmp_path)
    wf.add("a", lambda: 1, resources={"db": 1})
    wf.add("b", lambda a: a + 1, resources={"db": 1})
    wf.settings = resolve(wf, environ={}, cwd=tmp_path).settings()
    result = wf.run()
    assert result.status == "succeeded"
    assert result.outputs["b"] == 2


# -- which file the search may read (issue 13 §9) -----------------------------------------------

as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
NOBODY = 65534


def shared_folder(tmp_path: Path, mode: int = 0o1777) -> Path:
    """A folder anyone may write to, like /tmp (sticky) or worse (no sticky bit)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    (shared / "project").mkdir()
    return shared


@as_root
def test_a_config_file_someone_else_planted_above_the_project_is_ignored(tmp_path: Path) -> None:
    """The attack: another user writes /tmp/pardag.toml naming their store; a user working
    in /tmp/project would have recorded every run there. It is refused, with a warning
    naming the file and why, and no file further up takes its place."""
    write(tmp_path / "pardag.toml", 'mode = "levels"\n')  # above the refused one
    shared = shared_folder(tmp_path)
    planted = write(shared / "pardag.toml", f'store = "{tmp_path / "stolen.db"}"\n')
    os.chown(planted, NOBODY, NOBODY)
    resolved = resolve(None, environ={}, cwd=shared / "project")
    assert resolved.store == ".pardag/runs.db" and resolved.sources["store"] == "default"
    assert resolved.values["mode"] is Mode.DYNAMIC
    assert resolved.config_file is None
    (warning,) = resolved.warnings
    assert str(planted) in warning and "owned by user id 65534" in warning
    assert resolved.config_note.startswith("refused")
    os.chown(planted, 0, 0)  # the same file, owned by this user: read
    assert resolve(None, environ={}, cwd=shared / "project").store == str(tmp_path / "stolen.db")


def test_a_world_writable_config_file_is_ignored(tmp_path: Path) -> None:
    planted = write(tmp_path / "pardag.toml", 'store = "elsewhere.db"\n')
    planted.chmod(0o666)
    resolved = resolve(None, environ={}, cwd=tmp_path)
    assert resolved.store == ".pardag/runs.db"
    assert any(str(planted) in w and "world-writable" in w for w in resolved.warnings)


def test_a_config_file_in_a_world_writable_folder_without_sticky_bit_is_ignored(
    tmp_path: Path,
) -> None:
    """Without the sticky bit anyone may replace a file in the folder, whoever owns it."""
    shared = shared_folder(tmp_path, 0o777)
    write(shared / "pardag.toml", 'store = "elsewhere.db"\n')
    resolved = resolve(None, environ={}, cwd=shared / "project")
    assert resolved.store == ".pardag/runs.db"
    assert any("no sticky bit" in w for w in resolved.warnings)
    shared.chmod(0o1777)  # sticky, like /tmp: only the file's owner may replace it
    assert resolve(None, environ={}, cwd=shared / "project").store == "elsewhere.db"


def test_the_search_stops_at_home(tmp_path: Path) -> None:
    """Nothing above the user's home is read when working under it."""
    write(tmp_path / "pardag.toml", 'mode = "levels"\n')
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    resolved = resolve(None, environ={"HOME": str(home)}, cwd=home / "project")
    assert resolved.values["mode"] is Mode.DYNAMIC
    assert resolved.config_note == f"none found; searched {home / 'project'} up to {home}"
    write(home / "pardag.toml", 'mode = "sequential"\n')  # home itself is looked in
    resolved = resolve(None, environ={"HOME": str(home)}, cwd=home / "project")
    assert resolved.values["mode"] is Mode.SEQUENTIAL
    assert resolved.config_file == home / "pardag.toml"
    assert find_config_file(home / "project", home=home) == find_config_file(home, home=home)


def test_dask_address_through_every_layer(tmp_path: Path) -> None:
    """``[dask] address`` in a config file, ``execution: dask: address:`` in a workflow file
    (``Settings.dask_address``), ``PARDAG_DASK_ADDRESS``, ``--dask-address``: strongest wins."""
    write(tmp_path / "pardag.toml", '[dask]\naddress = "tcp://config:8786"\n')
    assert resolve(None, environ={}, cwd=tmp_path).settings().dask_address == "tcp://config:8786"
    wf = file_workflow(tmp_path, dask_address="tcp://file:8786")
    env = {"PARDAG_DASK_ADDRESS": "tcp://env:8786"}
    layers = [
        ({}, {}, "tcp://file:8786", f"workflow file {wf.source}"),
        ({}, env, "tcp://env:8786", "PARDAG_DASK_ADDRESS"),
        ({"dask.address": "tcp://flag:8786"}, env, "tcp://flag:8786", "--dask-address"),
        ({"dask.address": "local"}, env, None, "--dask-address"),  # a LocalCluster after all
    ]
    for flags, environ, address, source in layers:
        resolved = resolve(wf, flags=flags, environ=environ, cwd=tmp_path)
        assert resolved.settings().dask_address == address
        assert resolved.sources["dask.address"] == source
    shown = dict((k, (v, s)) for k, v, s in resolve(wf, environ=env, cwd=tmp_path).rows())
    assert shown["dask.address"] == ("tcp://env:8786", "PARDAG_DASK_ADDRESS")


def test_a_bad_dask_address_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        resolve(None, environ={"PARDAG_DASK_ADDRESS": "tcp://a b"}, cwd=tmp_path)
    assert info.value.problems == [
        "Invalid PARDAG_DASK_ADDRESS value 'tcp://a b': expected a Dask scheduler address "
        "like 'tcp://host:8786'"
    ]


def test_keep_outputs_on_cluster_comes_from_each_layer(tmp_path: Path) -> None:
    write(tmp_path / "pardag.toml", "keep_outputs_on_cluster = true\n")
    resolved = resolve(None, environ={}, cwd=tmp_path)
    assert resolved.settings().keep_outputs_on_cluster is True
    assert resolved.sources["keep_outputs_on_cluster"] == "pardag.toml"
    env = {"PARDAG_KEEP_OUTPUTS_ON_CLUSTER": "no"}
    resolved = resolve(None, environ=env, cwd=tmp_path)
    assert resolved.settings().keep_outputs_on_cluster is False
    assert resolved.sources["keep_outputs_on_cluster"] == "PARDAG_KEEP_OUTPUTS_ON_CLUSTER"
    flags = {"keep_outputs_on_cluster": True}
    resolved = resolve(None, flags=flags, environ=env, cwd=tmp_path)
    assert resolved.settings().keep_outputs_on_cluster is True
