"""One way to send a checked request: request id, category, open-model timing, verdict, row."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from scenarios.checks import Expect, Verdict, header_value, verify
from scenarios.identity import IdentitySource
from scenarios.openmodel import OpenModel
from scenarios.recorder import SampleRecorder

__all__ = ["Channel"]


class Channel:
    """Checked, recorded requests through one Locust FastHttpSession.

    `headers` go with every request (a simulated user's X-Forwarded-For); `category` is the
    samples.csv category of a request that does not name its own. In the open model the user
    sets `intended` (the next slot of the schedule) before a task; the task's first measured
    request takes it (a setup login inside a task never takes the slot of the measured one).
    """

    def __init__(
        self,
        client: Any,
        recorder: SampleRecorder,
        identity: IdentitySource,
        *,
        category: str,
        headers: Mapping[str, str] | None = None,
        open_model: OpenModel | None = None,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.identity = identity
        self.category = category
        self.headers = dict(headers or {})
        self.open_model = open_model
        self.intended: float | None = None

    def send(
        self,
        method: str,
        url: str,
        *,
        name: str,
        expects: Sequence[Expect],
        category: str | None = None,
        json: Any = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        label: str | None = None,
    ) -> Verdict:
        """Send one request and judge it with `catch_response`.

        An answer the scenario expects (an expected 401, 404 or 429 too) is a Locust success;
        anything else is a Locust failure whose message says what was expected and what came.
        With an intended start (open model) the latency Locust and samples.csv record is
        counted from the intended start, not from the moment the request could be sent.
        """
        category = category or self.category
        intended = None
        if category != "setup":
            intended, self.intended = self.intended, None
        request_id = self.identity.request_id()
        sent = {"X-Request-ID": request_id, **self.headers, **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        with self.client.request(
            method,
            url,
            name=name,
            json=json,
            headers=sent,
            catch_response=True,
            context={"category": category},
        ) as response:
            meta = response.request_meta
            sent_at = started = meta["start_time"]
            if intended is not None:
                # a request woken a hair early is measured from when it really started
                effective = min(intended, started)
                meta["context"]["intended_start"] = effective
                meta["response_time"] += (started - effective) * 1000
                started = effective
            verdict = verify(
                response.status_code, response.headers, response.content, request_id, expects
            )
            if verdict.ok:
                response.success()
            else:
                # `label` names the variant when one request name covers several (bad tokens)
                response.failure(f"{label}: {verdict.message}" if label else verdict.message)
        self.recorder.record(
            started,
            f"{method} {name}",
            category,
            meta["response_time"],
            int(response.status_code or 0),
            verdict.ok,
            header_value(response.headers, "Server-Timing"),
        )
        if intended is not None and self.open_model is not None:
            self.open_model.done(intended, sent_at, time.time())
        return verdict
