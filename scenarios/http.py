"""How the scenarios send: a lean keep-alive transport, and checked, recorded requests.

Why not Locust's FastHttpSession: its UserAgent layer (a compat request object and URL parse
per request, redirects, cookies) and its catch_response context cost about a sixth of the
generator's CPU per request under load (py-spy, benchmarks/generator_cost.py), and the suite
sends prebuilt paths to one host. The transport talks to geventhttpclient's HTTPClient, the
HTTP/1.1 client under FastHttpSession, and reports every request to Locust's
`events.request` as FastHttpSession does, so Locust's statistics, failures table, web UI and
distributed mode see the same requests.
"""

from __future__ import annotations

from locust.exception import CatchResponseError

import dataclasses
import json as jsonlib
import socket
import struct
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.local
import gevent.socket
from geventhttpclient import HTTPClient

from velro_perf.scenarios.apimodel import Call, Prepared
from velro_perf.scenarios.checks import Checked, HeaderView, retry_after_s, verify
from velro_perf.scenarios.identity import IdentitySource
from velro_perf.scenarios.openmodel import OpenModel
from velro_perf.scenarios.recorder import SampleRecorder

__all__ = ["UNSLOTTED", "Answer", "Channel", "Transport"]

# Requests that keep a user going (its sign-in, its token's refresh) and are never the
# measured request of an open-model slot: the task's own request that follows is.
UNSLOTTED = frozenset({"setup", "refresh"})
# FastHttpSession's defaults: a stalled target is waited for, never cut short by the client
TIMEOUT_S = 60.0
_JSON = {"Content-Type": "application/json"}


# Linux: SO_TIMESTAMPNS (and its control message SCM_TIMESTAMPNS) is 35 (asm-generic/socket.h);
# Python's socket module does not name it
_SO_TIMESTAMPNS = 35
_STAMPED = sys.platform.startswith("linux")
_TIMESPEC = struct.Struct("@qq")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
# greenlet -> [epoch s its request's first byte went to the kernel, epoch s the last bytes of
# its answer arrived]: a request is sent and read by one greenlet
_TIMES: dict[Any, list[float]] = {}


class _TimedSocket(gevent.socket.socket):  # type: ignore[misc]
    """A gevent socket that notes, for the greenlet using it, when a request went out and when
    the answer's bytes arrived: the kernel's receive timestamp of the data each recv returns
    (SO_TIMESTAMPNS), not the moment the greenlet got round to reading it.

    One Locust process runs every user's greenlet on one loop: an answer that came while the
    loop was busy with another request's checks, a timer or a file write waits in the socket
    for its greenlet, and a clock read after `recv` returns counts that wait as the target's
    latency. k6's Go runtime reads with as many threads as there are cores; this process
    reads with one, so the kernel's timestamp is what keeps its latency the target's."""

    __slots__ = ()

    def sendall(self, data: Any, flags: int = 0) -> None:
        times = _TIMES.get(gevent.getcurrent())
        if times is not None and not times[0]:
            times[0] = time.time()
        super().sendall(data, flags)

    def recv(self, size: int, flags: int = 0) -> bytes:
        data, ancillary, _flags, _address = self.recvmsg(size, _CMSG_SPACE, flags)
        times = _TIMES.get(gevent.getcurrent())
        if times is not None:
            for level, kind, raw in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(raw)
                    times[1] = seconds + nanoseconds * 1e-9
        return bytes(data)


def _timed_tcp_socket(family: int, socktype: int, protocol: int) -> gevent.socket.socket:
    sock = _TimedSocket(family, socktype, protocol)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    return sock


@dataclass(frozen=True)
class Answer:
    """What came back: status 0 and `error` when no response did."""

    status: int
    headers: Any
    content: bytes
    started: float  # epoch seconds, when the request was sent (its first byte to the kernel)
    elapsed_ms: float
    error: Exception | None = None


class Transport:
    """Keep-alive HTTP/1.1 to the base URL's host through geventhttpclient's HTTPClient.

    `concurrency` connections at most (one per simulated user; provisioning shares one
    transport among its greenlets)."""

    def __init__(self, base_url: str, request_event: Any, *, concurrency: int = 1) -> None:
        parts = urlsplit(base_url)
        self.request_event = request_event
        self.base_url = base_url.rstrip("/")
        self.prefix = parts.path.rstrip("/")
        self.client = HTTPClient.from_url(
            base_url,
            concurrency=concurrency,
            connection_timeout=TIMEOUT_S,
            network_timeout=TIMEOUT_S,
        )
        self.stamped = _STAMPED and parts.scheme == "http"
        if self.stamped:
            # the pool's own factory hook (a TLS pool wraps its sockets: not stamped)
            pool = self.client._connection_pool
            pool._create_tcp_socket = _timed_tcp_socket  # type: ignore[method-assign]  # its hook

    def send(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> Answer:
        """Send and read one request. Measured from when its first byte went to the kernel
        to when the last bytes of the answer arrived there (the kernel's timestamps, see
        _TimedSocket); without them (not Linux, TLS) from before the call to after the read."""
        started = time.time()
        began = time.perf_counter()
        me = gevent.getcurrent()
        times = _TIMES[me] = [0.0, 0.0]
        try:
            response = self.client.request(method, self.prefix + path, body=body, headers=headers)
            content = response.read()
        except Exception as error:
            return Answer(0, None, b"", started, (time.perf_counter() - began) * 1000, error)
        finally:
            del _TIMES[me]
        sent, arrived = times
        if sent and arrived >= sent:
            return Answer(
                response.status_code, response.info(), content, sent, (arrived - sent) * 1000
            )
        elapsed_ms = (time.perf_counter() - began) * 1000
        return Answer(response.status_code, response.info(), content, started, elapsed_ms)

    def report(
        self,
        method: str,
        name: str,
        path: str,
        answer: Answer,
        response_time_ms: float,
        exception: Exception | None,
        context: dict[str, Any],
    ) -> None:
        """Locust's `events.request`, with the fields FastHttpSession gives it."""
        self.request_event.fire(
            request_type=method,
            name=name,
            response_time=response_time_ms,
            response_length=len(answer.content),
            response=None,
            context=context,
            exception=exception,
            start_time=answer.started,
            url=self.base_url + path,
        )

    def close(self) -> None:
        self.client.close()


class Channel:
    """Checked, recorded requests through one Transport.

    `headers` go with every request (a simulated user's X-Forwarded-For); `category` is the
    samples.csv category of a request that does not name its own. In the open model the
    greenlet that runs a slot's task sets `slot.value` (its intended start); the task's first
    measured request takes it (a setup login inside a task never takes the slot of the
    measured one). The slot is greenlet-local: a user has several slots in flight at once.
    """

    def __init__(
        self,
        transport: Transport,
        recorder: SampleRecorder,
        identity: IdentitySource,
        *,
        category: str,
        headers: Mapping[str, str] | None = None,
        open_model: OpenModel | None = None,
    ) -> None:
        self.transport = transport
        self.recorder = recorder
        self.identity = identity
        self.category = category
        self.headers = dict(headers or {})
        self.open_model = open_model
        self.slot = gevent.local.local()

    def _request(self, request_id: str, prepared: Prepared) -> tuple[dict[str, str], bytes | None]:
        """The headers and body to send (`data`: a body already encoded, e.g. a form)."""
        sent = {"X-Request-ID": request_id, **self.headers, **prepared.headers}
        if prepared.json is not None:
            sent.update(_JSON)
            return sent, jsonlib.dumps(prepared.json, separators=(",", ":")).encode()
        return sent, None if prepared.data is None else prepared.data.encode()

    def send(self, call: Call) -> Checked:
        """Send one request, judge it, report it to Locust and record its row.

        An answer the scenario expects (an expected 401, 404 or 429 too) is a Locust success;
        anything else is a Locust failure whose message says what was expected and what came.
        With an intended start (open model) the latency Locust and samples.csv record is
        counted from the intended start, not from the moment the request could be sent.
        """
        prepared, label = call.prepared, call.label
        category = call.category or self.category
        method, url, name = prepared.method, prepared.path, call.name
        intended = self._take_slot(category)
        request_id = self.identity.request_id()
        sent, body = self._request(request_id, prepared)
        if intended is not None and self.open_model is not None:
            self.open_model.began(intended, time.time())
        answer = self.transport.send(method, url, body, sent)
        started, latency_ms = answer.started, answer.elapsed_ms
        if intended is not None:
            # counted from its slot; one woken early (up to TIMER_EARLY_S of scenarios/users.py)
            # from when it really started, so that no latency is made up; the row keeps the slot
            latency_ms += max(0.0, started - intended) * 1000
            started = intended
        headers = HeaderView.of(answer.headers)  # read once: the checks and the row
        verdict = verify(
            answer.status, headers, answer.content, request_id, call.expects, call.promises
        )
        failure = None
        if not verdict.ok:
            verdict, failure = self._failed(verdict, answer, label)
        context: dict[str, Any] = {"category": category}
        if intended is not None:
            context["intended_start"] = started
        self.transport.report(method, name, url, answer, latency_ms, failure, context)
        self.recorder.record(
            started,
            f"{method} {name}",
            category,
            latency_ms,
            answer.status,
            verdict.ok,
            headers.get("server-timing"),
        )
        if intended is not None and self.open_model is not None:
            self.open_model.done(time.time())
        return verdict

    def _take_slot(self, category: str) -> float | None:
        """The open-model slot this request is for, if it is the task's measured one."""
        if category in UNSLOTTED:
            return None
        intended: float | None = getattr(self.slot, "value", None)
        self.slot.value = None
        return intended

    @staticmethod
    def _failed(
        verdict: Checked, answer: Answer, label: str | None
    ) -> tuple[Checked, CatchResponseError]:
        """The verdict of an unexpected answer (with a refusal's Retry-After) and its Locust
        failure; `label` names the variant when one request name covers several."""
        if answer.status in (429, 503):
            verdict = dataclasses.replace(verdict, retry_after_s=retry_after_s(answer.headers))
        message = f"{label}: {verdict.message}" if label else verdict.message
        return verdict, CatchResponseError(message)
