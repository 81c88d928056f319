"""The operational laws (Denning & Buzen, "The Operational Analysis of Queueing Network
Models", 1978) applied to a capacity search's measured steps.

From a step's hold: X the throughput (requests a second), D the CPU seconds per request, c the
cores. The utilisation law U = X D with U <= c bounds the throughput at X <= c / D. In the
closed model, the interactive response time law R = N / X - Z gives the users' mean think time
between requests Z = N / X - R, and the knee, where the light-load line N / (R0 + Z) meets the
bound c / D, is at N* = c (R0 + Z) / D (R0 the response time at light load). Two demands are
worth knowing:

* shared: every CPU second the run's processes spent per request (service, generator, data
  stores and the runner; not what other users of the machine did meanwhile): the capacity of
  this machine as it was run, generator beside the service;
* service alone: the service's own CPU per request: what the service would hold with all c
  cores to itself (the generator and the rest elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LawInputs", "Prediction", "predict"]


@dataclass(frozen=True)
class LawInputs:
    cores: int
    users: float | None  # N at the light-load step (closed model); None for the open model
    throughput_rps: float  # X at the light-load step
    response_s: float  # R0: the mean response time at the light-load step
    service_demand_s: float | None  # D of the service alone (None: not on this machine)
    machine_demand_s: float  # every CPU second of the run's processes per request


@dataclass(frozen=True)
class Prediction:
    think_s: float | None  # Z (closed model)
    max_rps_shared: float  # c / D_machine
    max_rps_alone: float | None  # c / D_service
    knee_shared: float | None  # N* with the machine's demand (closed model)
    knee_alone: float | None  # N* with the service's demand alone (closed model)

    def to_json(self) -> dict[str, float | None]:
        return {
            "think_s": self.think_s,
            "max_rps_shared": self.max_rps_shared,
            "max_rps_service_alone": self.max_rps_alone,
            "knee_shared": self.knee_shared,
            "knee_service_alone": self.knee_alone,
        }


def predict(inputs: LawInputs) -> Prediction | None:
    """The bounds and knees the laws give; None when a demand is not positive."""
    if inputs.machine_demand_s <= 0 or inputs.throughput_rps <= 0:
        return None
    c = inputs.cores
    alone = (
        inputs.service_demand_s if inputs.service_demand_s and inputs.service_demand_s > 0 else None
    )
    think = None
    knee_shared = knee_alone = None
    if inputs.users is not None:
        think = max(0.0, inputs.users / inputs.throughput_rps - inputs.response_s)
        cycle = inputs.response_s + think
        knee_shared = c * cycle / inputs.machine_demand_s
        knee_alone = c * cycle / alone if alone else None
    return Prediction(
        think_s=think,
        max_rps_shared=c / inputs.machine_demand_s,
        max_rps_alone=c / alone if alone else None,
        knee_shared=knee_shared,
        knee_alone=knee_alone,
    )
