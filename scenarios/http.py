"""One way to make a checked request: request id, category, open-model timing, verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scenarios.checks import Expect, Verdict, verify
from scenarios.identity import identity

__all__ = ["call"]


def call(
    client: Any,
    method: str,
    url: str,
    *,
    name: str,
    category: str,
    expects: Sequence[Expect],
    json: Any = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    intended_start: float | None = None,
    label: str | None = None,
) -> Verdict:
    """Send one request through a Locust FastHttpSession and judge it with `catch_response`.

    An answer the scenario expects (an expected 401, 404 or 429 too) is a Locust success;
    anything else is a Locust failure whose message says what was expected and what came.
    With `intended_start` (open model) the latency Locust and samples.csv record is counted
    from the intended start, not from the moment the request could be sent.
    """
    request_id = identity.request_id()
    sent = {"X-Request-ID": request_id, **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    with client.request(
        method,
        url,
        name=name,
        json=json,
        headers=sent,
        catch_response=True,
        context={"category": category},
    ) as response:
        meta = response.request_meta
        if intended_start is not None:
            started = meta["start_time"]
            # a request woken a hair early is measured from when it really started
            effective = min(intended_start, started)
            meta["context"]["intended_start"] = effective
            meta["response_time"] += (started - effective) * 1000
        verdict = verify(
            response.status_code, response.headers, response.content, request_id, expects
        )
        if verdict.ok:
            response.success()
        else:
            # `label` names the variant when one request name covers several (bad token kinds)
            response.failure(f"{label}: {verdict.message}" if label else verdict.message)
    return verdict
