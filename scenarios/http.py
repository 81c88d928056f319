"""One way to make a checked request: request id, category, open-model timing, verdict."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from scenarios.apifile import ApiFile
from scenarios.checks import ALL_PROMISES, Expect, Verdict, verify
from scenarios.identity import identity

__all__ = ["call", "send"]


def call(
    client: Any,
    method: str,
    url: str,
    *,
    name: str,
    category: str,
    expects: Sequence[Expect],
    json: Any = None,
    data: str | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    intended_start: float | None = None,
    label: str | None = None,
    promises: Collection[str] = ALL_PROMISES,
) -> Verdict:
    """Send one request through a Locust FastHttpSession and judge it with `catch_response`.

    An answer the scenario expects (an expected 401, 404 or 429 too) is a Locust success;
    anything else is a Locust failure whose message says what was expected and what came.
    With `intended_start` (open model) the latency Locust and samples.csv record is counted
    from the intended start, not from the moment the request could be sent. `data` is a body
    already encoded (a form), sent as is.
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
        data=data,
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
            response.status_code,
            response.headers,
            response.content,
            request_id,
            expects,
            promises,
        )
        if verdict.ok:
            response.success()
        else:
            # `label` names the variant when one request name covers several (bad token kinds)
            response.failure(f"{label}: {verdict.message}" if label else verdict.message)
    return verdict


def send(
    client: Any,
    api: ApiFile,
    key: str,
    values: Mapping[str, str],
    *,
    category: str,
    expects: Sequence[Expect],
    token: str | None = None,
    service_key: str | None = None,
    send_credentials: bool = True,
    suffix: str = "",
    headers: Mapping[str, str] | None = None,
    intended_start: float | None = None,
    label: str | None = None,
) -> Verdict:
    """Send the API file's operation `key` with these placeholder values and judge it: the
    one path from an operation to a checked request, for users and provisioning alike."""
    prepared = api.op(key).prepare(
        values, token=token, service_key=service_key, send_credentials=send_credentials
    )
    return call(
        client,
        prepared.method,
        prepared.path,
        name=prepared.name + suffix,
        category=category,
        expects=expects,
        json=prepared.json,
        data=prepared.data,
        headers={**prepared.headers, **(headers or {})},
        intended_start=intended_start,
        label=label,
        promises=api.promises,
    )
