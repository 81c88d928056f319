"""Authorization over a real socket: the decision matrix, revocation, 404 vs 403, 422, audit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from velro.db import Database
from velro.db.schema import audit_log
from velro.settings import Settings

API = "/api/v1"
PASSWORD = "correct horse battery"


@dataclass
class Caller:
    id: str
    email: str
    client: httpx.Client

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(API + path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.put(API + path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.patch(API + path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(API + path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(API + path, **kw)

    def check(self, project_id: str, action: str, **kw: Any) -> httpx.Response:
        return self.get("/authz/check", params={"resource_id": project_id, "action": action}, **kw)

    def on(self, base_url: str) -> Caller:
        """The same user, talking to another server (tokens are valid on both)."""
        token = self.client.headers["authorization"]
        client = httpx.Client(base_url=base_url, headers={"authorization": token})
        return Caller(self.id, self.email, client)


class World:
    """Users registered and logged in through the API of one server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: list[httpx.Client] = []

    def user(self, name: str) -> Caller:
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        with httpx.Client(base_url=self.url) as anon:
            r = anon.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD})
            assert r.status_code == 201, r.text
            user_id = r.json()["id"]
            r = anon.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
        client = httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {token}"})
        self.clients.append(client)
        return Caller(user_id, email, client)

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _schema(settings: Settings) -> None:
    db = Database(settings.database_url)
    db.create_all()
    db.close()


@pytest.fixture
def world(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> Iterator[World]:
    settings = make_settings()
    _schema(settings)
    w = World(live_server(settings).url)
    yield w
    w.close()


def _audit_rows(settings_url: str, request_id: str, timeout_s: float = 5.0) -> list[Any]:
    """The audit rows of one request, waiting for the batched denial writer (0.1 s)."""
    db = Database(settings_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with db.begin() as conn:
                rows = list(
                    conn.execute(select(audit_log).where(audit_log.c.request_id == request_id))
                )
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)
    finally:
        db.close()


# -- the matrix ------------------------------------------------------------------------------

ACTIONS = ("read", "write", "delete", "share")
# who -> (role on the project, the actions allowed)
# the people by name, the shared project, and a bystander the share action grants to
Matrix = tuple[dict[str, Caller], str, Caller]
EXPECTED: dict[str, tuple[str | None, set[str]]] = {
    "owner": ("owner", {"read", "write", "delete", "share"}),
    "editor": ("editor", {"read", "write"}),
    "viewer": ("viewer", {"read"}),
    "member": ("editor", {"read", "write"}),  # through a team granted editor
    "former": (None, set()),  # removed from that team
    "stranger": (None, set()),
}


@pytest.fixture
def matrix(world: World) -> Matrix:
    people = {name: world.user(name) for name in EXPECTED}
    bystander = world.user("bystander")
    owner = people["owner"]
    project = owner.post("/projects", json={"name": "matrix"}).json()["id"]
    team = owner.post("/teams", json={"name": "crew"})
    assert team.status_code == 201
    assert set(team.json()) == {"id", "name", "owner_id"}
    team_id = team.json()["id"]
    for who in ("member", "former"):
        assert owner.put(f"/teams/{team_id}/members/{people[who].id}").status_code == 204
    grants = {
        ("user", people["editor"].id): "editor",
        ("user", people["viewer"].id): "viewer",
        ("team", team_id): "editor",
    }
    for (kind, subject), role in grants.items():
        r = owner.put(f"/projects/{project}/grants/{kind}/{subject}", json={"role": role})
        assert r.status_code == 204, r.text
    # the former member could read while in the team, and cannot once removed
    assert people["former"].check(project, "read").json()["allowed"] is True
    assert owner.delete(f"/teams/{team_id}/members/{people['former'].id}").status_code == 204
    return people, project, bystander


@pytest.fixture(params=list(EXPECTED))
def who(request: pytest.FixtureRequest) -> str:
    """Each person of the matrix in turn."""
    return str(request.param)


def test_the_check_answers_the_role_and_the_decision_for_every_action(
    matrix: Matrix, who: str
) -> None:
    people, project, _ = matrix
    role, allowed = EXPECTED[who]
    for action in ACTIONS:
        r = people[who].check(project, action)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["allowed"] is (action in allowed), (who, action, body)
        assert body["role"] == role
        assert body["source"] in {"db", "L1", "L2", "L3"}


def _act(caller: Caller, action: str, project: str, bystander: Caller) -> httpx.Response:
    if action == "read":
        return caller.get(f"/projects/{project}")
    if action == "write":
        return caller.patch(f"/projects/{project}", json={"name": f"renamed by {caller.email}"})
    if action == "delete":
        return caller.delete(f"/projects/{project}")
    return caller.put(f"/projects/{project}/grants/user/{bystander.id}", json={"role": "viewer"})


SUCCESS = {"read": 200, "write": 200, "delete": 204, "share": 204}


def test_the_project_routes_answer_success_403_or_404_for_every_action(
    matrix: Matrix, who: str
) -> None:
    people, project, bystander = matrix
    _, allowed = EXPECTED[who]
    # delete last: a successful one ends the project
    for action in ("read", "write", "share", "delete"):
        r = _act(people[who], action, project, bystander)
        if action in allowed:
            expected = SUCCESS[action]
        elif "read" in allowed:
            expected = 403
        else:
            expected = 404
        assert r.status_code == expected, (who, action, r.text)
        if expected >= 400:
            error = r.json()["error"]
            assert error["code"] == ("forbidden" if expected == 403 else "not_found")
            assert error["request_id"] == r.headers["x-request-id"]
    if who == "owner":  # the delete went through: nobody reads the project any more
        for caller in people.values():
            assert caller.get(f"/projects/{project}").status_code == 404


def test_a_project_body_is_the_contracts_and_a_rename_is_seen_at_once(world: World) -> None:
    owner = world.user("owner")
    r = owner.post("/projects", json={"name": "first"})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "name", "owner_id", "created_at"}
    assert body["owner_id"] == owner.id
    assert owner.get(f"/projects/{body['id']}").json() == body
    renamed = owner.patch(f"/projects/{body['id']}", json={"name": "second"})
    assert renamed.status_code == 200
    assert renamed.json() == {**body, "name": "second"}
    assert owner.get(f"/projects/{body['id']}").json()["name"] == "second"


# -- revocation ------------------------------------------------------------------------------


def test_a_revoked_grant_and_a_team_removal_stop_working_at_once_in_the_same_process(
    world: World,
) -> None:
    owner, viewer, member = world.user("owner"), world.user("viewer"), world.user("member")
    project = owner.post("/projects", json={"name": "p"}).json()["id"]
    team = owner.post("/teams", json={"name": "t"}).json()["id"]
    owner.put(f"/teams/{team}/members/{member.id}")
    owner.put(f"/projects/{project}/grants/user/{viewer.id}", json={"role": "viewer"})
    owner.put(f"/projects/{project}/grants/team/{team}", json={"role": "viewer"})
    for caller in (viewer, member):
        first, second = caller.check(project, "read").json(), caller.check(project, "read").json()
        assert (first["allowed"], first["source"]) == (True, "db")
        assert (second["allowed"], second["source"]) == (True, "L1")  # warm: cached
    assert owner.delete(f"/projects/{project}/grants/user/{viewer.id}").status_code == 204
    assert owner.delete(f"/teams/{team}/members/{member.id}").status_code == 204
    for caller in (viewer, member):
        after = caller.check(project, "read").json()
        assert after == {"allowed": False, "role": None, "source": "db"}
        assert caller.get(f"/projects/{project}").status_code == 404


def test_the_check_reports_the_tier_that_answered_in_its_body_and_server_timing(
    world: World,
) -> None:
    owner = world.user("owner")
    project = owner.post("/projects", json={"name": "p"}).json()["id"]
    first, second = owner.check(project, "write"), owner.check(project, "write")
    assert first.json() == {"allowed": True, "role": "owner", "source": "db"}
    assert 'cache;desc="miss"' in first.headers["server-timing"]
    assert second.json() == {"allowed": True, "role": "owner", "source": "L1"}
    assert 'cache;desc="L1"' in second.headers["server-timing"]


@pytest.mark.redis
def test_another_process_sees_a_revocation_within_the_l1_ttl(
    redis_settings: Callable[..., Settings],
    live_server: Callable[..., Any],
) -> None:
    ttl = 0.5
    margin = 1.0  # scheduling on 2 shared cores, one database read, the polling step
    settings = redis_settings(l1_ttl_s=ttl)
    _schema(settings)
    a, b = live_server(settings), live_server(settings)  # one database file, one Redis prefix
    world = World(a.url)
    try:
        owner, viewer = world.user("owner"), world.user("viewer")
        project = owner.post("/projects", json={"name": "p"}).json()["id"]
        owner.put(f"/projects/{project}/grants/user/{viewer.id}", json={"role": "viewer"})
        viewer_b = viewer.on(b.url)
        # B decides and caches the grant
        assert viewer_b.check(project, "read").json()["allowed"] is True
        assert viewer_b.check(project, "read").json() == {
            "allowed": True,
            "role": "viewer",
            "source": "L1",
        }
        assert owner.delete(f"/projects/{project}/grants/user/{viewer.id}").status_code == 204
        revoked_at = time.monotonic()
        assert viewer.check(project, "read").json()["allowed"] is False  # A: at once
        while True:
            body = viewer_b.check(project, "read").json()
            elapsed = time.monotonic() - revoked_at
            if body["allowed"] is False:
                break
            assert elapsed <= ttl + margin, f"B still allowed {elapsed:.2f} s after revocation"
            time.sleep(0.02)
        assert elapsed <= ttl + margin
        print(f"another process saw the revocation after {elapsed:.3f} s (bound {ttl} s)")
        assert viewer_b.get(f"/projects/{project}").status_code == 404
        viewer_b.client.close()
    finally:
        world.close()


# -- no existence oracle, 422, 401 -----------------------------------------------------------


def _without_request_id(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert body["error"]["request_id"] == r.headers["x-request-id"]
    return {**body, "error": {**body["error"], "request_id": None}}


def test_a_stranger_cannot_tell_an_existing_project_from_a_missing_one(world: World) -> None:
    owner, stranger = world.user("owner"), world.user("stranger")
    existing = owner.post("/projects", json={"name": "secret"}).json()["id"]
    missing = str(uuid.uuid4())
    calls: list[Callable[[str], httpx.Response]] = [
        lambda p: stranger.get(f"/projects/{p}"),
        lambda p: stranger.patch(f"/projects/{p}", json={"name": "x"}),
        lambda p: stranger.delete(f"/projects/{p}"),
        lambda p: stranger.put(f"/projects/{p}/grants/user/{stranger.id}", json={"role": "owner"}),
        lambda p: stranger.delete(f"/projects/{p}/grants/user/{stranger.id}"),
    ]
    for call in calls:
        a, b = call(existing), call(missing)
        assert a.status_code == b.status_code == 404
        assert _without_request_id(a) == _without_request_id(b)
        assert a.json()["error"]["code"] == "not_found"
    a, b = stranger.check(existing, "read"), stranger.check(missing, "read")
    assert a.json()["allowed"] is b.json()["allowed"] is False
    assert a.json()["role"] is b.json()["role"] is None
    # and a team that is not yours is 404 whether or not it exists
    team = owner.post("/teams", json={"name": "t"}).json()["id"]
    for team_id in (team, str(uuid.uuid4())):
        r = stranger.put(f"/teams/{team_id}/members/{stranger.id}")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", "/projects/not-a-uuid", None),
        ("PATCH", "/projects/1234", {"name": "x"}),
        ("DELETE", "/projects/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", None),
        ("PUT", "/projects/{p}/grants/robot/{u}", {"role": "viewer"}),
        ("PUT", "/projects/{p}/grants/user/nope", {"role": "viewer"}),
        ("PUT", "/projects/{p}/grants/user/{u}", {"role": "admin"}),
        ("DELETE", "/projects/{p}/grants/team/42", None),
        ("PUT", "/teams/x/members/{u}", None),
        ("DELETE", "/teams/{p}/members/y", None),
        ("GET", "/authz/check?resource_id=nope&action=read", None),
        ("GET", "/authz/check?resource_id={p}&action=fly", None),
        ("GET", "/authz/check?resource_id={p}", None),
        ("GET", "/authz/check?action=read", None),
        ("POST", "/projects", {"name": ""}),
        ("POST", "/teams", {"name": 7}),
    ],
)
def test_malformed_ids_actions_and_bodies_are_422_invalid_request(
    world: World, method: str, path: str, json: Any
) -> None:
    owner = world.user("owner")
    project = owner.post("/projects", json={"name": "p"}).json()["id"]
    url = API + path.replace("{p}", project).replace("{u}", owner.id)
    r = owner.client.request(method, url, json=json)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_every_route_needs_a_valid_token(world: World) -> None:
    project = str(uuid.uuid4())
    with httpx.Client(base_url=world.url + API) as anon:
        for r in (
            anon.get("/authz/check", params={"resource_id": project, "action": "read"}),
            anon.get(f"/projects/{project}"),
            anon.post("/projects", json={"name": "x"}),
            anon.post("/teams", json={"name": "x"}),
            anon.get(f"/projects/{project}", headers={"authorization": "Bearer nonsense"}),
        ):
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "invalid_token"


# -- the audit log ---------------------------------------------------------------------------


def test_denials_grants_and_revocations_are_audited_with_their_request_ids(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    settings = make_settings()
    _schema(settings)
    world = World(live_server(settings).url)
    try:
        owner, viewer, stranger = world.user("owner"), world.user("viewer"), world.user("s")
        project = owner.post("/projects", json={"name": "p"}).json()["id"]
        rid = {
            name: f"audit-{name}-{uuid.uuid4().hex[:8]}"
            for name in ("grant", "check", "read", "forbid", "revoke")
        }
        owner.put(
            f"/projects/{project}/grants/user/{viewer.id}",
            json={"role": "viewer"},
            headers={"X-Request-ID": rid["grant"]},
        )
        stranger.check(project, "read", headers={"X-Request-ID": rid["check"]})
        stranger.get(f"/projects/{project}", headers={"X-Request-ID": rid["read"]})
        viewer.patch(
            f"/projects/{project}", json={"name": "x"}, headers={"X-Request-ID": rid["forbid"]}
        )
        owner.delete(
            f"/projects/{project}/grants/user/{viewer.id}", headers={"X-Request-ID": rid["revoke"]}
        )
        expected = {
            "grant": ("grant", owner.id),
            "check": ("deny", stranger.id),
            "read": ("deny", stranger.id),
            "forbid": ("deny", viewer.id),
            "revoke": ("revoke", owner.id),
        }
        for name, (action, actor) in expected.items():
            rows = _audit_rows(settings.database_url, rid[name])
            assert [(r.action, r.actor_id, r.project_id) for r in rows] == [
                (action, actor, project)
            ], name
        # a team that is not yours: a denial too
        team = owner.post("/teams", json={"name": "t"}).json()["id"]
        team_rid = f"audit-team-{uuid.uuid4().hex[:8]}"
        stranger.put(f"/teams/{team}/members/{stranger.id}", headers={"X-Request-ID": team_rid})
        rows = _audit_rows(settings.database_url, team_rid)
        assert [(r.action, r.actor_id) for r in rows] == [("deny", stranger.id)]
        # an allowed check writes nothing: once a later denial is written, it is not there
        allowed_rid = f"audit-allowed-{uuid.uuid4().hex[:8]}"
        later_rid = f"audit-later-{uuid.uuid4().hex[:8]}"
        owner.check(project, "read", headers={"X-Request-ID": allowed_rid})
        stranger.check(project, "read", headers={"X-Request-ID": later_rid})
        assert _audit_rows(settings.database_url, later_rid) != []
        assert _audit_rows(settings.database_url, allowed_rid, timeout_s=0) == []
    finally:
        world.close()


def test_the_degraded_profile_decides_from_the_database_every_time(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    settings = make_settings(profile="degraded")
    _schema(settings)
    world = World(live_server(settings).url)
    try:
        owner, stranger = world.user("owner"), world.user("stranger")
        project = owner.post("/projects", json={"name": "p"}).json()["id"]
        for _ in range(2):
            assert owner.check(project, "delete").json() == {
                "allowed": True,
                "role": "owner",
                "source": "db",
            }
        assert stranger.get(f"/projects/{project}").status_code == 404
    finally:
        world.close()


@pytest.mark.postgres
def test_grants_memberships_and_revocation_on_postgresql(
    # postgres_url before live_server: the server stops before its database is dropped
    postgres_url: str,
    make_settings: Callable[..., Settings],
    live_server: Callable[..., Any],
) -> None:
    settings = make_settings(database_url=postgres_url)
    _schema(settings)
    world = World(live_server(settings).url)
    try:
        owner, friend, member = world.user("owner"), world.user("friend"), world.user("member")
        project = owner.post("/projects", json={"name": "p"}).json()["id"]
        team = owner.post("/teams", json={"name": "t"}).json()["id"]
        for _ in range(2):  # adding twice is one membership
            assert owner.put(f"/teams/{team}/members/{member.id}").status_code == 204
        grant = f"/projects/{project}/grants/user/{friend.id}"
        assert owner.put(grant, json={"role": "viewer"}).status_code == 204
        assert friend.check(project, "write").json()["allowed"] is False
        assert owner.put(grant, json={"role": "editor"}).status_code == 204  # a role change
        assert friend.check(project, "write").json() == {
            "allowed": True,
            "role": "editor",
            "source": "db",
        }
        team_grant = f"/projects/{project}/grants/team/{team}"
        assert owner.put(team_grant, json={"role": "viewer"}).status_code == 204
        assert member.get(f"/projects/{project}").status_code == 200
        assert owner.delete(team_grant).status_code == 204
        assert member.get(f"/projects/{project}").status_code == 404
        assert owner.delete(grant).status_code == 204
        assert friend.check(project, "read").json()["allowed"] is False
    finally:
        world.close()


def test_an_id_with_a_trailing_newline_is_malformed(world: World) -> None:
    owner = world.user("owner")
    project = owner.post("/projects", json={"name": "p"}).json()["id"]
    r = owner.get(f"/projects/{project}%0A")
    assert r.status_code == 422
    assert owner.check(project + "\n", "read").status_code == 422
