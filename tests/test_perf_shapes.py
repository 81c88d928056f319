"""Load shapes from shapes.toml and the Locust command line they give."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from velro_perf.errors import ConfigError
from velro_perf.locust_proc import LocustOptions, locust_argv
from velro_perf.runplan import RunOptions, with_shape_defaults
from velro_perf.shapes import load_shape

ROOT = Path(__file__).resolve().parents[1]


# -- shapes and the Locust command line ------------------------------------------------------


def test_a_shape_gives_its_sizes_and_duration(tmp_path: Path) -> None:
    path = tmp_path / "shapes.toml"
    path.write_text(
        textwrap.dedent(
            """
            [shapes.smoke]
            warmup_s = 10
            seed_users = 50
            seed_teams = 5
            seed_projects = 40
            wait_s = [1.0, 2.0]
            workload = "sessions.toml"
            stages = [
              { duration_s = 20, users = 5, spawn_rate = 1 },
              { duration_s = 40, users = 10, spawn_rate = 1 },
            ]
            """
        )
    )
    shape = load_shape("smoke", path)
    assert (shape.warmup_s, shape.seed_users, shape.seed_teams, shape.seed_projects) == (
        10.0,
        50,
        5,
        40,
    )
    assert shape.duration_s == 60.0
    assert shape.workload_file == tmp_path / "sessions.toml"


def test_a_shape_may_give_the_processes_and_workers_a_run_uses_unless_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shapes.toml"
    path.write_text(
        "[shapes.big]\nwarmup_s = 1\nwait_s = [1, 2]\nseed_users = 1\nseed_teams = 1\n"
        "seed_projects = 1\nprocesses = 2\nservice_workers = 3\n"
        "stages = [{ duration_s = 5, users = 1, spawn_rate = 1 }]\n"
    )
    shape = load_shape("big", path)
    assert (shape.processes, shape.service_workers) == (2, 3)
    picked = with_shape_defaults(RunOptions(shape="big", shapes_file=path), shape)
    assert (picked.processes, picked.workers) == (2, 3)
    assert "2 Locust processes and 3 service workers" in capsys.readouterr().out
    told = with_shape_defaults(RunOptions(shape="big", processes=1, workers=1), shape)
    assert (told.processes, told.workers) == (1, 1)
    path.write_text(path.read_text().replace("processes = 2", "processes = 0"))
    with pytest.raises(ConfigError, match=r"processes is 0"):
        load_shape("big", path)


def test_a_shape_may_ask_for_short_access_tokens_which_a_target_keeps_its_own_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shapes.toml"

    def write(ttl: str) -> None:
        path.write_text(
            "[shapes.short]\nwarmup_s = 1\nwait_s = [1, 2]\nseed_users = 1\nseed_teams = 1\n"
            f"seed_projects = 1\naccess_token_ttl_s = {ttl}\n"
            "stages = [{ duration_s = 5, users = 1, spawn_rate = 1 }]\n"
        )

    write("120")
    shape = load_shape("short", path)
    assert shape.access_token_ttl_s == 120
    with_shape_defaults(RunOptions(shape="short", shapes_file=path), shape)
    assert "access tokens" not in capsys.readouterr().out  # the runner's own service gets it
    target = "http://127.0.0.1:9"
    with_shape_defaults(RunOptions(shape="short", shapes_file=path, target=target), shape)
    assert f"{target} keeps its own lifetime" in capsys.readouterr().out
    for bad in ("0", "1.5", '"2m"'):
        write(bad)
        with pytest.raises(ConfigError, match=r"access_token_ttl_s is"):
            load_shape("short", path)


def test_the_project_s_refresh_shapes_outlive_their_access_tokens() -> None:
    from velro_perf.scenarios.shapes import load_shapes

    shapes = load_shapes(ROOT / "fixtures" / "shapes.toml")
    for name in ("soak", "sessions-refresh"):
        shape = shapes[name]
        assert shape.access_token_ttl_s is not None
        # every user's session outlives its token several times over what is judged
        assert shape.duration_s - shape.warmup_s >= 3 * shape.access_token_ttl_s
    assert shapes["sessions-refresh"].duration_s >= 600
    assert shapes["sessions-refresh"].access_token_ttl_s == 120


def test_a_bad_shape_value_is_named(tmp_path: Path) -> None:
    path = tmp_path / "shapes.toml"
    path.write_text(
        "[shapes.smoke]\nwarmup_s = -3\nwait_s = [1, 2]\nseed_users = 1\nseed_teams = 1\n"
        "seed_projects = 1\nstages = [{ duration_s = 5, users = 1, spawn_rate = 1 }]\n"
    )
    with pytest.raises(ConfigError, match=r"warmup_s is -3"):
        load_shape("smoke", path)


def test_locust_gets_the_locustfile_options(tmp_path: Path) -> None:
    argv = locust_argv(
        LocustOptions(
            host="http://127.0.0.1:8000",
            shape="smoke",
            run_dir=tmp_path,
            fixtures=tmp_path / "fixtures.json",
            open_rate=25.0,
            processes=2,
        )
    )
    joined = " ".join(argv)
    assert f"-f {ROOT / 'locustfile.py'}" in joined
    assert "--headless" in argv
    assert f"--csv {tmp_path / 'locust'}" in joined
    assert "--velro-shape smoke" in joined
    assert f"--velro-out {tmp_path}" in joined
    assert f"--velro-fixtures {tmp_path / 'fixtures.json'}" in joined
    assert "--velro-open-rate 25" in joined
    assert "--processes 2" in joined
