"""Provisioning: create through the contract's API the seed a backend that is not the
reference service lacks (users, teams, projects, grants), and describe it as a `Seed`.

Every request here is category `setup`: recorded, never judged. Roles are kept simple:
owners own, every grant is `viewer`, so `shared`/`team` projects are readable and only
`own` ones are writable and deletable.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from typing import Any

import gevent
import gevent.pool

from velro_perf.scenarios.api import BackendApi
from velro_perf.scenarios.checks import Checked
from velro_perf.scenarios.errors import ProvisioningError
from velro_perf.scenarios.identity import IdentitySource
from velro_perf.scenarios.seed import Seed, SeedUser

__all__ = ["Plan", "plan", "provision"]

log = logging.getLogger(__name__)
# at most this many denied projects per user: enough variety, small messages to workers
DENIED_PER_USER = 20
# A step refused with Retry-After (a 503 `overloaded` from a sign-in queue that eight
# concurrent provisioning hashes filled, a 429) is sent again after it, as the simulated users
# do, up to this many times in all: provisioning is setup, and one refused hash must not end
# the run. A refusal that outlasts them is the target's answer, reported as any other.
MAX_TRIES = 5


class Plan:
    """Who owns, shares and belongs to what, before any id exists (indexes only)."""

    def __init__(self, users: int, teams: int, projects: int, user_grants: bool = True) -> None:
        self.users, self.teams, self.projects = users, teams, projects
        self.team_owner = [k % users for k in range(teams)]
        # members strided over all users so that (nearly) every user is in a team; never the
        # team's owner (the contract does not say whether an owner is a member, so an owner
        # is neither expected to read through the team nor to be denied)
        per_team = min(10, max(1, -(-users // teams))) if teams else 0
        self.team_members = [
            sorted({(k + 1 + j * teams) % users for j in range(per_team)} - {k % users})
            for k in range(teams)
        ]
        self.project_owner = [j % users for j in range(projects)]
        # half the projects shared with the owner's next user (alternating per round of
        # owners, so every user gets some), every third with a team; the rest stay private
        # and give the denied cases
        self.user_grants = [
            ((self.project_owner[j] + 1) % users)
            if user_grants and (j + j // users) % 2 == 0 and users > 1
            else None
            for j in range(projects)
        ]
        self.team_grants = [(j % teams) if teams and j % 3 == 0 else None for j in range(projects)]

    def all_relations(self) -> list[dict[str, list[int]]]:
        """Per user: own, shared, team and (up to DENIED_PER_USER) denied project indexes.

        One pass over projects and teams, so 10,000 users and 30,000 projects stay cheap."""
        own: list[list[int]] = [[] for _ in range(self.users)]
        shared: list[list[int]] = [[] for _ in range(self.users)]
        team: list[list[int]] = [[] for _ in range(self.users)]
        unsure: list[set[int]] = [set() for _ in range(self.users)]
        for j in range(self.projects):
            own[self.project_owner[j]].append(j)
            grantee = self.user_grants[j]
            if grantee is not None and grantee != self.project_owner[j]:
                shared[grantee].append(j)
            k = self.team_grants[j]
            if k is not None:
                for member in self.team_members[k]:
                    team[member].append(j)
                unsure[self.team_owner[k]].add(j)
        result = []
        for user in range(self.users):
            taken = set(own[user]) | set(shared[user])
            team_only = [j for j in team[user] if j not in taken]
            readable = taken | set(team_only) | unsure[user]
            denied: list[int] = []
            # walk the projects from a per-user offset: different users get different denials
            for step in range(min(self.projects, DENIED_PER_USER * 10)):
                j = (user * 7919 + step) % self.projects
                if j not in readable and j not in denied:
                    denied.append(j)
                    if len(denied) == DENIED_PER_USER:
                        break
            result.append(
                {"own": own[user], "shared": shared[user], "team": team_only, "denied": denied}
            )
        return result


def plan(users: int, teams: int, projects: int, user_grants: bool = True) -> Plan:
    return Plan(users, teams, projects, user_grants)


class _Steps:
    """The API calls of provisioning, each checked; a refusal raises ProvisioningError."""

    def __init__(self, api: BackendApi, password: str, concurrency: int) -> None:
        self.api = api
        self.password = password
        self._pool = gevent.pool.Pool(concurrency)

    def each(self, function: Callable[..., Any], *columns: list[Any]) -> list[Any]:
        """``function`` once per row of ``columns``, a handful of requests at once."""
        # provisioning is not the load, but 10,000 users one argon2id hash at a time would
        # take minutes
        rows = list(zip(*columns, strict=True))
        return list(self._pool.imap(lambda args: function(*args), rows))

    def _sent(self, step: str, send: Callable[[], Checked]) -> Checked:
        """``send()``'s verdict, sent again after a refusal's Retry-After (MAX_TRIES in all);
        ProvisioningError when it is not ok in the end."""
        for _ in range(MAX_TRIES - 1):
            verdict = send()
            if verdict.ok or verdict.retry_after_s is None:
                break
            # spread over up to twice Retry-After, so the refused do not come back together
            gevent.sleep(verdict.retry_after_s * random.uniform(1.0, 2.0))
        else:
            verdict = send()
        return self._ok(step, verdict)

    def _ok(self, step: str, verdict: Checked) -> Checked:
        if not verdict.ok:
            source = self.api.described.source
            raise ProvisioningError(
                f"provisioning step {step!r} failed: {verdict.message}; does the target serve "
                f"what {source} describes? (`velro-perf api check {source} --target URL` "
                "tries each operation)"
            )
        return verdict

    def register(self, email: str) -> str:
        verdict = self._sent(
            "register users",
            lambda: self.api.register(email, self.password, full_name="Velro perf seed"),
        )
        return self.api.id_of("register", verdict)

    def login(self, email: str) -> str:
        verdict = self._sent("log users in", lambda: self.api.login(email, self.password))
        token = self.api.token_of(verdict)
        assert token is not None  # a login verdict that is ok carries the token field
        return token.token

    def team(self, token: str, name: str) -> str:
        verdict = self._ok("create teams", self.api.create_team(token, name))
        return self.api.id_of("team_create", verdict)

    def member(self, token: str, team_id: str, user_id: str) -> None:
        self._ok("add team members", self.api.add_member(token, team_id, user_id))

    def project(self, token: str, name: str) -> str:
        verdict = self._ok("create projects", self.api.create_project(token, name))
        return self.api.id_of("project_create", verdict)

    def grant(self, token: str, project_id: str, kind: str, subject: str) -> None:
        self._ok("grant projects", self.api.grant(token, project_id, kind, subject, "viewer"))


def provision(
    api: BackendApi,
    identity: IdentitySource,
    users: int,
    teams: int,
    projects: int,
    service_key: str | None,
    concurrency: int = 8,
) -> Seed:
    """Create the seed through the operations the API file describes and return it. Raises
    ProvisioningError, naming the step and what came back, when the target does not answer
    as the file says. Teams, projects and grants are made only where the backend has them."""
    teams, projects = _supported_sizes(api, teams, projects)
    layout = plan(users, teams, projects, user_grants=api.has("grant_user"))
    steps = _Steps(api, f"Vp-{secrets.token_urlsafe(12)}", concurrency)
    emails = [identity.email("seed") for _ in range(users)]
    ids: list[str] = steps.each(steps.register, emails)
    tokens: list[str] = steps.each(steps.login, emails)
    team_ids = _make_teams(steps, layout, tokens, ids)
    project_ids: list[str] = steps.each(
        steps.project,
        [tokens[owner] for owner in layout.project_owner],
        [f"perf project {j}" for j in range(projects)],
    )
    granted = _grant_projects(steps, layout, tokens, [ids, team_ids, project_ids])
    seed_users = tuple(
        SeedUser(
            id=ids[index],
            email=emails[index],
            own=tuple(project_ids[j] for j in relations["own"]),
            shared=tuple(project_ids[j] for j in relations["shared"]),
            team=tuple(project_ids[j] for j in relations["team"]),
            denied=tuple(project_ids[j] for j in relations["denied"]),
        )
        for index, relations in enumerate(layout.all_relations())
    )
    log.info(
        "provisioned %d users, %d teams, %d projects and %d grants through the API",
        users,
        teams,
        projects,
        granted,
    )
    return Seed(password=steps.password, service_key=service_key or None, users=seed_users)


def _supported_sizes(api: BackendApi, teams: int, projects: int) -> tuple[int, int]:
    """The teams and projects the backend can hold (none where it lacks the operations)."""
    if not api.has("register", "login"):
        raise ProvisioningError(
            f"{api.described.source} describes no register operation, so the users the "
            "scenarios sign in as cannot be created; describe [operations.register] or give "
            "--velro-fixtures"
        )
    if not api.has("project_create"):
        projects = 0
    if not api.has("team_create", "team_member_add", "grant_team"):
        teams = 0
    return teams, projects


def _make_teams(steps: _Steps, layout: Plan, tokens: list[str], ids: list[str]) -> list[str]:
    """The teams, each made by its owner, and their members; the teams' ids."""
    team_ids: list[str] = steps.each(
        steps.team,
        [tokens[owner] for owner in layout.team_owner],
        [f"perf team {k}" for k in range(layout.teams)],
    )
    memberships = [(k, member) for k in range(layout.teams) for member in layout.team_members[k]]
    steps.each(
        steps.member,
        [tokens[layout.team_owner[k]] for k, _ in memberships],
        [team_ids[k] for k, _ in memberships],
        [ids[member] for _, member in memberships],
    )
    return team_ids


def _grant_projects(steps: _Steps, layout: Plan, tokens: list[str], made: list[list[str]]) -> int:
    """Each project's user and team grant, by its owner; how many grants.

    ``made`` is the ids of the users, the teams and the projects."""
    ids, team_ids, project_ids = made
    grants: list[tuple[int, str, str]] = []
    for j in range(layout.projects):
        grantee, team = layout.user_grants[j], layout.team_grants[j]
        if grantee is not None:
            grants.append((j, "user", ids[grantee]))
        if team is not None:
            grants.append((j, "team", team_ids[team]))
    steps.each(
        steps.grant,
        [tokens[layout.project_owner[j]] for j, _, _ in grants],
        [project_ids[j] for j, _, _ in grants],
        [kind for _, kind, _ in grants],
        [subject for _, _, subject in grants],
    )
    return len(grants)
