"""The recorder's rows, the provisioning plan, bad tokens and the open-model schedule."""

from __future__ import annotations

import base64
import json
import multiprocessing
from pathlib import Path

import gevent
import gevent.event
import pyarrow.parquet as pq
import pytest

from velro_perf.reports.samplefiles import sample_files
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.identity import IdentitySource
from velro_perf.scenarios.openmodel import OpenModel, SlotRunners, combine_reports
from velro_perf.scenarios.provision import plan
from velro_perf.scenarios.recorder import COLUMNS, SampleRecorder, encode_batch
from velro_perf.scenarios.seed import Seed, SeedUser, parse_seed
from velro_perf.scenarios.tokens import alg_none, bad_token, tampered


def test_the_recorder_writes_one_exact_row_per_request(tmp_path: Path) -> None:
    recorder = SampleRecorder()
    recorder.configure(str(tmp_path), writes=True)
    recorder.record(
        1700000000.125,
        "GET /api/v1/projects/{id}",
        "authorization",
        12.345678901,
        404,
        True,
        'app;dur=1.5, db;dur=0.25, cache;desc="L1"',
    )
    # the open model's intended start is the ts the sender gives; a failure has status 0
    recorder.record(1700000000.0, "POST /api/v1/auth/login", "login", 3.0, 0, False, None)
    recorder.flush("local")
    recorder.write([[1.0, "GET /x", "setup", 1.0, 200, 1, None, None, None, None]], "worker-7")
    # a worker's rows arrive as one encoded batch
    recorder.write(
        encode_batch([[2.0, "GET /y", "login", 2.5, 200, 1, 1.0, None, None, "L2"]]), "w-2"
    )
    recorder.close()
    files = sample_files(tmp_path)
    # the flush's part, then the workers' rows as one part at the end, compacted into one
    assert [f.name for f in files] == ["seg-00000001-00000002.parquet"]
    table = pq.read_table(files[0])
    assert tuple(table.column_names) == COLUMNS
    rows = table.to_pylist()
    assert rows[0] == {
        "ts": 1700000000.125,
        "endpoint": "GET /api/v1/projects/{id}",
        "category": "authorization",
        "latency_ms": 12.345678901,
        "status": 404,
        "expected": 1,
        "worker": "local",
        "st_app": 1.5,
        "st_db": 0.25,
        "st_hash": None,
        "st_cache": "L1",
    }
    # the open model's intended start is the row's ts; a failure is expected=0, status 0
    assert [rows[1][c] for c in COLUMNS[:7]] == [
        1700000000.0,
        "POST /api/v1/auth/login",
        "login",
        3.0,
        0,
        0,
        "local",
    ]
    assert rows[2]["worker"] == "worker-7"
    assert (rows[3]["worker"], rows[3]["st_cache"], rows[3]["latency_ms"]) == ("w-2", "L2", 2.5)
    assert len(rows) == 4


def test_a_recorder_without_out_dir_records_nothing(tmp_path: Path) -> None:
    recorder = SampleRecorder()
    recorder.configure("", writes=True)
    recorder.record(1.0, "GET /", "authentication", 1.0, 200, True, None)
    assert recorder.take() == []


def test_a_workers_recorder_buffers_for_the_master(tmp_path: Path) -> None:
    recorder = SampleRecorder()
    recorder.configure(str(tmp_path), writes=False)
    recorder.record(1.0, "GET /", "login", 1.0, 200, True, None)
    assert len(recorder.take()) == 1
    assert not sample_files(tmp_path)


def test_the_provisioning_plan_gives_every_user_each_relation() -> None:
    layout = plan(40, 8, 80)
    relations = layout.all_relations()
    for user, rel in enumerate(relations):
        assert all(rel[name] for name in ("own", "shared", "team", "denied")), (user, rel)
        sets = [set(rel[name]) for name in ("own", "shared", "team", "denied")]
        assert sum(len(item) for item in sets) == len(set().union(*sets)), "relations overlap"
        teams_owned = {k for k in range(layout.teams) if layout.team_owner[k] == user}
        for project in rel["denied"]:
            assert layout.project_owner[project] != user
            assert layout.user_grants[project] != user
            # a project granted to a team the user owns may be readable: never expected denied
            assert layout.team_grants[project] not in teams_owned
            assert (
                layout.team_grants[project] is None
                or user not in layout.team_members[layout.team_grants[project]]
            )


def test_the_plan_scales_to_the_ramp_seed() -> None:
    relations = plan(10_000, 1_000, 30_000).all_relations()
    assert len(relations) == 10_000
    assert all(len(rel["denied"]) == 20 for rel in relations)


def _unb64(text: str) -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


GOOD_TOKEN = (
    ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in ({"alg": "HS256", "typ": "JWT"}, {"sub": "abc", "aud": "velro"})
    )
    + ".c2lnbmF0dXJl"
)


def test_a_tampered_token_keeps_the_signature_and_changes_a_claim() -> None:
    _header, payload, signature = tampered(GOOD_TOKEN).split(".")
    assert signature == "c2lnbmF0dXJl"
    assert _unb64(payload)["sub"] != "abc"
    assert _unb64(payload)["aud"] == "velro"


def test_an_alg_none_token_is_unsigned() -> None:
    header, payload, signature = alg_none(GOOD_TOKEN).split(".")
    assert _unb64(header)["alg"] == "none"
    assert _unb64(payload)["sub"] == "abc"
    assert signature == ""


def test_bad_token_kinds() -> None:
    assert bad_token("missing", GOOD_TOKEN) is None
    assert bad_token("malformed", GOOD_TOKEN) == "not-a-jwt"
    with pytest.raises(ValueError, match="unknown bad token kind 'expired'"):
        bad_token("expired", GOOD_TOKEN)


def test_the_open_model_schedules_slots_at_the_rate() -> None:
    model = OpenModel()
    model.start(4.0, now=100.0)
    slots = [model.claim() for _ in range(5)]
    assert slots == [100.0, 100.25, 100.5, 100.75, 101.0]
    model.began(100.0, 100.0)
    model.done(100.5)
    model.began(100.25, 100.75)  # half a second after its slot: late (limit 0.1 s)
    model.done(101.0)
    report = model.report()
    assert report["completed"] == 2
    assert report["late"] == 1
    assert report["peak_in_flight"] == 1
    assert report["achieved_rps"] == pytest.approx(2.0)
    assert report["max_start_lag_s"] == pytest.approx(0.5)
    # intended starts by second of the schedule against actual ones
    assert report["per_second"] == {"0": [4, 2], "1": [1, 0]}
    combined = combine_reports({"a": report, "b": report}, 8.0)
    assert combined["intended_rps"] == 8.0
    assert combined["achieved_rps"] == pytest.approx(4.0)
    assert combined["late_share"] == pytest.approx(0.5)
    assert combined["timeline"] == [[0, 8, 4], [1, 2, 0]]
    # the file covers the run up to its oldest process's figures, no further
    older = {**report, "written_at": report["written_at"] - 3.0}
    assert combine_reports({"a": report, "b": older}, 8.0)["covered_until"] == older["written_at"]


def test_the_seed_round_trips_and_a_bad_one_is_named() -> None:
    seed = Seed(
        "pw-12345678", None, (SeedUser("u1", "a@example.com", own=("p1",), denied=("p2",)),)
    )
    assert parse_seed(seed.to_json()) == seed
    with pytest.raises(ScenarioConfigError, match=r"users\[0\]\.own is 'p1'"):
        parse_seed(
            {"password": "x", "users": [{"id": "u", "email": "e", "own": "p1"}]}, "seed.json"
        )


_IDENTITY = IdentitySource()


def _tag_in_child(queue: multiprocessing.Queue[str]) -> None:
    queue.put(_IDENTITY.tag)


def test_a_forked_process_gets_its_own_email_tag() -> None:
    # `locust --processes N` forks after the locustfile was imported
    parent = _IDENTITY.tag
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    child = context.Process(target=_tag_in_child, args=(queue,))
    child.start()
    child.join(10)
    assert queue.get(timeout=5) != parent


def test_slot_runners_reuse_an_idle_greenlet_and_hold_a_slot_while_all_are_busy() -> None:
    runners = SlotRunners(2)
    ran: list[object] = []
    release = gevent.event.Event()

    def slot() -> None:
        ran.append(gevent.getcurrent())
        release.wait()

    def failing() -> None:
        ran.append(gevent.getcurrent())
        raise RuntimeError("a task's bug")

    runners.run(slot)
    runners.run(slot)
    third = gevent.spawn(runners.run, slot)
    gevent.sleep(0.02)
    assert (runners.busy, len(ran), third.dead) == (2, 2, False)  # the third waits its turn
    release.set()
    third.join(1)
    assert runners.join(1)
    runners.run(failing)  # logged; its runner goes on to the next slot
    assert runners.join(1)
    runners.run(slot)
    assert runners.join(1)
    assert len(ran) == 5
    assert set(ran[2:]) <= set(ran[:2])  # no new greenlet once two were made
