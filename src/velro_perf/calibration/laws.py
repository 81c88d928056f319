"""The calibration target's laws: how long an answer waits, known in closed form.

- ``uniform``: every answer waits D + U(0, J) (independent of the load), so the q-quantile
  of the latency is D + q J. Used for the closed and the open model.
- ``stall``: every answer waits D, except that every P seconds the target stalls for S
  seconds: an answer due during a stall waits until its end. A request that arrives at a
  uniformly random phase of the period waits S - phase + D when phase < S, else D; for the
  open model (arrivals on a fixed schedule, independent of the answers) the q-quantile is D
  for q <= 1 - S/P and D + S (q - 1 + S/P) / (S/P) above. A closed model cannot see that law
  (its users wait in the stall instead of arriving in it): that is coordinated omission, and
  why the open model exists.
- ``slots``: c slots, each held for H ms by one answer; an answer waits for a free slot
  (first come, first served), then H. Its capacity is known in closed form, which is what
  `velro-perf capacity` is tested against:

  * throughput saturates at X = c / H (the utilisation law);
  * closed model, N users thinking Z between requests: no queue below the knee
    N* = c (H + Z) / H; above it every user waits its turn, the response time is
    R = N H / c - Z, so a bound B on the response time holds up to N_B = c (B + Z) / H;
  * open model at a rate lambda: the suite's schedule is fixed-rate (deterministic arrivals,
    scenarios/openmodel.py), so the queue is D/D/c: none below c / H, and above it one that
    grows with every second of the hold (the wait of an arrival t s in is t (lambda H / c - 1)):
    any bound B > H holds up to lambda = c / H and fails past it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KINDS", "Law"]

KINDS = ("uniform", "stall", "slots")


@dataclass(frozen=True)
class Law:
    kind: str  # one of KINDS
    delay_ms: float = 5.0
    jitter_ms: float = 10.0  # uniform: J
    period_s: float = 2.0  # stall: P
    stall_s: float = 0.3  # stall: S
    slots: int = 4  # slots: c
    hold_ms: float = 20.0  # slots: H

    def quantile(self, q: float) -> float:
        """The q-th percentile (0-100) of the latency in ms, under a load-independent law."""
        p = q / 100.0
        if self.kind == "uniform":
            return self.delay_ms + p * self.jitter_ms
        if self.kind == "slots":
            return self.hold_ms  # below capacity no answer waits for a slot
        share = self.stall_s / self.period_s
        if p <= 1 - share:
            return self.delay_ms
        return self.delay_ms + 1000.0 * self.stall_s * (p - 1 + share) / share

    def wait_s(self, now: float, started: float, draw: float) -> float:
        """How long an answer to a request arriving at `now` waits (draw: uniform [0, 1)),
        slots aside (their wait depends on the other answers: see the target)."""
        if self.kind == "uniform":
            return (self.delay_ms + draw * self.jitter_ms) / 1000.0
        if self.kind == "slots":
            return self.hold_ms / 1000.0
        phase = (now - started) % self.period_s
        stalled = self.stall_s - phase if phase < self.stall_s else 0.0
        return stalled + self.delay_ms / 1000.0

    # -- the slots law's capacity -------------------------------------------------------------

    @property
    def max_rps(self) -> float:
        """c / H: the throughput the slots saturate at (and the open model's capacity)."""
        return self.slots / (self.hold_ms / 1000.0)

    def closed_knee(self, think_s: float) -> float:
        """N* = c (H + Z) / H: the users at which the slots saturate."""
        hold = self.hold_ms / 1000.0
        return self.slots * (hold + think_s) / hold

    def closed_capacity(self, think_s: float, bound_ms: float) -> float:
        """N_B = c (B + Z) / H: the most users whose response time stays within B."""
        hold = self.hold_ms / 1000.0
        return self.slots * (bound_ms / 1000.0 + think_s) / hold

    def argv(self) -> list[str]:
        """The target's command-line options for this law."""
        return [
            "--law", self.kind,
            "--delay-ms", str(self.delay_ms), "--jitter-ms", str(self.jitter_ms),
            "--period-s", str(self.period_s), "--stall-s", str(self.stall_s),
            "--slots", str(self.slots), "--hold-ms", str(self.hold_ms),
        ]  # fmt: skip
