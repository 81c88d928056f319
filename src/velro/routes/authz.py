"""Routes of the contract's Authorization section: teams, projects, grants, the check.

Every route authenticates first (401), then parses its path ids (422 for one that is not a
UUID), then decides. A caller who may not read a project gets 404 whether or not it exists
(no existence oracle); one who may read it but not act gets 403. Denials are audited by the
``Authorizer``; grants, revocations, membership changes and deletions in their transaction.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import QueryParams

from velro import projects as project_repo
from velro import teams as team_repo
from velro.audit import entry
from velro.authz import ACTIONS, Action, Authorizer, Role, authorizer
from velro.errors import invalid_request, not_found
from velro.security import CurrentUser, current_user
from velro.services import Services, services

__all__ = ["parse_id", "router"]

router = APIRouter()


Svc = Annotated[Services, Depends(services)]
Authz = Annotated[Authorizer, Depends(authorizer)]

# fullmatch, not ``$``: a ``$`` would let a trailing newline (%0A in a path) through
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EXAMPLE = "3f2b9c1e-8a4d-4e6f-9b2a-1c3d5e7f9a0b"


def parse_id(value: str, name: str) -> str:
    """A canonical UUID (lower-cased), or 422 ``invalid_request`` naming the bad value."""
    if not _UUID.fullmatch(value):
        shown = value if len(value) <= 64 else value[:64] + "…"
        raise invalid_request(
            f"{name} {shown!r} is not a UUID; give one in canonical form, e.g. {_EXAMPLE}"
        )
    return value.lower()


def _query(params: QueryParams, name: str) -> str:
    value = params.get(name)
    if value is None:
        raise invalid_request(f"{name}: give it as a query parameter")
    return value


def parse_action(value: str) -> Action:
    for action in ACTIONS:
        if value == action:
            return action
    shown = value if len(value) <= 64 else value[:64] + "…"
    raise invalid_request(f"action {shown!r} is not known; give one of {', '.join(ACTIONS)}")


def parse_subject_type(value: str) -> Literal["user", "team"]:
    if value == "user":
        return "user"
    if value == "team":
        return "team"
    shown = value if len(value) <= 64 else value[:64] + "…"
    raise invalid_request(f"subject_type {shown!r} is not known; give user or team")


class NameIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class RoleIn(BaseModel):
    role: Role


# -- the check -----------------------------------------------------------------------------


@router.get("/authz/check")
async def check(request: Request) -> JSONResponse:
    """``?resource_id=<uuid>&action=read|write|delete|share``.

    The hottest route of authorization traffic reads its caller, its two parameters and the
    authorizer itself instead of through four FastAPI dependencies: their resolution was about
    a tenth of the route's CPU (py-spy under load), and the route's throughput target is half
    of a bare JWT check's (README).
    """
    user = await current_user(request)
    params = request.query_params
    project_id = parse_id(_query(params, "resource_id"), "resource_id")
    action = parse_action(_query(params, "action"))
    authz: Authorizer = request.app.state.authorizer
    decision = await authz.check(user["id"], project_id, action)
    # a JSONResponse directly: the hot path skips FastAPI's response-model encoding
    return JSONResponse(
        {"allowed": decision.allows(action), "role": decision.role, "source": decision.source}
    )


# -- teams ---------------------------------------------------------------------------------


@router.post("/teams", status_code=201)
async def create_team(body: NameIn, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    team: dict[str, Any] = await svc.db_call(team_repo.create_team, user["id"], body.name)
    return team


async def _membership(
    change: str, team_id: str, user_id: str, user: dict[str, Any], svc: Services, authz: Authorizer
) -> Response:
    team_id = parse_id(team_id, "team_id")
    member_id = parse_id(user_id, "user_id")
    row = entry(change, actor_id=user["id"], detail={"team_id": team_id, "user_id": member_id})
    func = team_repo.add_member if change == "team_add" else team_repo.remove_member
    result = await svc.db_call(func, team_id, member_id, user["id"], row)
    if result == "no_team":
        # a denial like any other: the caller does not own the team (or it does not exist)
        authz.audit.add(
            entry(
                "deny",
                actor_id=user["id"],
                detail={"action": change, "team_id": team_id, "user_id": member_id},
            )
        )
        raise not_found("team")
    if result == "no_user":
        raise not_found("user")
    assert isinstance(result, dict)  # the versions the change bumped
    await authz.changed(result)
    return Response(status_code=204)


@router.put("/teams/{team_id}/members/{user_id}", status_code=204)
async def add_member(
    team_id: str, user_id: str, user: CurrentUser, svc: Svc, authz: Authz
) -> Response:
    return await _membership("team_add", team_id, user_id, user, svc, authz)


@router.delete("/teams/{team_id}/members/{user_id}", status_code=204)
async def remove_member(
    team_id: str, user_id: str, user: CurrentUser, svc: Svc, authz: Authz
) -> Response:
    return await _membership("team_remove", team_id, user_id, user, svc, authz)


# -- projects ------------------------------------------------------------------------------


@router.post("/projects", status_code=201)
async def create_project(body: NameIn, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    project: dict[str, Any] = await svc.db_call(project_repo.create_project, user["id"], body.name)
    return project


@router.get("/projects/{project_id}")
async def get_project(project_id: str, user: CurrentUser, authz: Authz) -> JSONResponse:
    decision = await authz.require(user["id"], parse_id(project_id, "project_id"), "read")
    assert decision.project is not None  # a reader's decision carries the project
    return JSONResponse(decision.project)


@router.patch("/projects/{project_id}")
async def rename_project(
    project_id: str, body: NameIn, user: CurrentUser, svc: Svc, authz: Authz
) -> dict[str, Any]:
    pid = parse_id(project_id, "project_id")
    await authz.require(user["id"], pid, "write")
    project, versions = await svc.db_call(project_repo.rename_project, pid, body.name)
    if project is None:  # deleted between the decision and the change
        raise not_found("project")
    await authz.changed(versions)
    return project


@router.delete("/projects/{project_id}", status_code=204)
async def delete_project(project_id: str, user: CurrentUser, svc: Svc, authz: Authz) -> Response:
    pid = parse_id(project_id, "project_id")
    await authz.require(user["id"], pid, "delete")
    row = entry("delete_project", actor_id=user["id"], project_id=pid)
    await authz.changed(await svc.db_call(project_repo.delete_project, pid, row))
    return Response(status_code=204)


@router.put("/projects/{project_id}/grants/{subject_type}/{subject_id}", status_code=204)
async def grant(
    project_id: str,
    subject_type: str,
    subject_id: str,
    body: RoleIn,
    user: CurrentUser,
    svc: Svc,
    authz: Authz,
) -> Response:
    return await _change_grant(project_id, subject_type, subject_id, body.role, user, svc, authz)


@router.delete("/projects/{project_id}/grants/{subject_type}/{subject_id}", status_code=204)
async def revoke(
    project_id: str,
    subject_type: str,
    subject_id: str,
    user: CurrentUser,
    svc: Svc,
    authz: Authz,
) -> Response:
    return await _change_grant(project_id, subject_type, subject_id, None, user, svc, authz)


async def _change_grant(
    project_id: str,
    subject_type: str,
    subject_id: str,
    role: Role | None,
    user: dict[str, Any],
    svc: Services,
    authz: Authorizer,
) -> Response:
    """Give ``role`` to the subject (``None``: revoke), audited, with its ACL version bumped."""
    pid = parse_id(project_id, "project_id")
    kind = parse_subject_type(subject_type)
    sid = parse_id(subject_id, "subject_id")
    await authz.require(user["id"], pid, "share")
    detail: dict[str, Any] = {"subject_type": kind, "subject_id": sid}
    versions: dict[str, int] | None
    if role is None:
        row = entry("revoke", actor_id=user["id"], project_id=pid, detail=detail)
        versions = await svc.db_call(project_repo.remove_grant, pid, kind, sid, row)
    else:
        row = entry("grant", actor_id=user["id"], project_id=pid, detail={**detail, "role": role})
        versions = await svc.db_call(project_repo.set_grant, pid, kind, sid, role, row)
        if versions is None:
            raise not_found(kind)
    await authz.changed(versions)
    return Response(status_code=204)
