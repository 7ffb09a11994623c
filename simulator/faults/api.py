"""Faults at the API boundary: errors a real client raises, latency, and failures in time.

Each raises the exception a real provider's client raises (status code, retry-after
header, error code), so retry code written for real providers runs its real paths.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..rng import lognormal
from . import errors as E
from .base import Call, Params, fault


class RateLimitP(Params):
    retry_after_s: float = Field(2.0, ge=0, description="value of the retry-after header")


class ServerErrorP(Params):
    status: Literal[500, 502, 503] = 500


class TimeoutP(Params):
    timeout_s: float = Field(30.0, gt=0, description="how long the client waits before giving up")
    after_effect: bool = Field(True, description="the operation ran; only the response was lost")


class AuthP(Params):
    refresh_s: float = Field(1.5, ge=0, description="virtual time a credential refresh takes")


def _raise(cls, msg, latency=0.3):
    def before(c: Call, p: Params, f) -> bool:
        hdrs = {"retry-after": f"{p.retry_after_s:g}"} if isinstance(p, RateLimitP) else {}
        if isinstance(p, ServerErrorP):
            err = E.SERVER_ERRORS[p.status](f"{p.status} from {c.name}" if p.status != 500 else
                                            msg.format(name=c.name), fault_id=f.id)
        else:
            err = cls(msg.format(name=c.name), headers=hdrs, fault_id=f.id)
        c.error, c.latency = err, latency
        return True
    return before


fault("rate_limit", ("tool", "model"), "429 Too Many Requests with a retry-after header", RateLimitP,
      raises=(E.RateLimitError,),
      before=_raise(E.RateLimitError, "429 Too Many Requests: rate limit reached for {name}"))
fault("server_error", ("tool", "model"), "500/502/503 from the service", ServerErrorP, default_rate=0.2,
      raises=(E.InternalServerError, E.BadGatewayError, E.ServiceUnavailableError),
      before=_raise(E.InternalServerError, "500 Internal Server Error from {name}"))


def _timeout(c: Call, p: TimeoutP, f) -> bool:
    c.error = E.APITimeoutError(f"Request to {c.name} timed out after {p.timeout_s:g}s", fault_id=f.id)
    c.latency = p.timeout_s
    c.after_effect = p.after_effect and c.kind == "tool"
    return True


fault("timeout", ("tool", "model"), "the client times out; by default after the operation already ran, "
      "so a blind retry repeats a write", TimeoutP, default_rate=0.2, raises=(E.APITimeoutError,),
      before=_timeout)
fault("connection_reset", ("tool", "model"), "connection reset by peer before the request was processed",
      default_rate=0.2, raises=(E.APIConnectionError,),
      before=_raise(E.APIConnectionError, "Connection reset by peer ({name})", latency=0.05))


def _auth(c: Call, p: AuthP, f) -> bool:
    c.error = E.AuthenticationError(f"401 Unauthorized: credential for {c.name} expired", fault_id=f.id)
    c.latency = 0.1
    return True


fault("auth_expired", ("tool", "model"), "401 on every call from the firing on, until the design calls "
      "kit.refresh_credentials()", AuthP, default_pattern="persistent", default_rate=0.1,
      raises=(E.AuthenticationError,), ends="refresh_credentials", recovery_param="refresh_s", before=_auth)
fault("quota_exhausted", ("tool", "model"), "429 insufficient_quota: retrying never helps; only a fallback does",
      default_pattern="persistent", default_rate=0.1, raises=(E.QuotaExceededError,),
      before=_raise(E.QuotaExceededError, "429 You exceeded your current quota ({name})", latency=0.1))


# -- latency and faults in time ----------------------------------------------
class LatencyP(Params):
    spike_median_s: float = Field(8.0, ge=0, description="median extra latency of a spike")
    spike_p95_s: float = Field(60.0, ge=0, description="95th percentile of a spike (heavy tail)")
    degrade_per_hour: float = Field(0.0, ge=0, description="base latency grows by this fraction per virtual hour")
    client_timeout_s: float | None = Field(None, gt=0, description="the client gives up past this; "
                                           "the operation still runs")


def _latency(c: Call, p: LatencyP, f) -> bool:
    extra = lognormal(c.rng, p.spike_median_s, p.spike_p95_s) + c.latency * p.degrade_per_hour * c.now / 3600
    c.artifact.setdefault("faults", []).append(f.id)
    if p.client_timeout_s is not None and c.latency + extra > p.client_timeout_s:
        c.error = E.APITimeoutError(f"Request to {c.name} timed out after {p.client_timeout_s:g}s", fault_id=f.id)
        c.after_effect = c.kind == "tool"
        c.latency = p.client_timeout_s
    else:
        c.latency += extra
    return True


fault("latency", ("tool", "model"), "heavy-tailed latency spikes and degradation over virtual time; with "
      "client_timeout_s, slow calls become timeouts", LatencyP, default_rate=0.2, raises=(E.APITimeoutError,),
      before=_latency)


class OutageP(Params):
    retry_after: bool = Field(False, description="send retry-after = the time left in the outage")


def _outage(c: Call, p: OutageP, f) -> bool:
    a, b = f.state.window(c.now) or (c.now, c.now)
    hdrs = {"retry-after": f"{max(0.0, b - c.now):.0f}"} if p.retry_after else {}
    c.error = E.ServiceUnavailableError(f"503 Service Unavailable: {c.name} is down", headers=hdrs, fault_id=f.id)
    c.latency = 0.2
    return True


fault("outage", ("tool", "model"), "the tool or the provider is down in windows of virtual time, or as a "
      "random process (mtbf_s, mttr_s); shared by every session in the environment", OutageP,
      default_rate=1.0, raises=(E.ServiceUnavailableError,), timed_only=True, before=_outage)


class SharedRateP(Params):
    rpm: float = Field(60, gt=0, description="requests per minute for all sessions of the environment together")


def _shared_rate(c: Call, p: SharedRateP, f) -> bool:
    # One token bucket per environment: concurrent sessions drain it together.
    b = c.shared.setdefault(("bucket", f.id), {"tokens": p.rpm / 60 * 5, "t": c.now})
    rate, cap = p.rpm / 60, max(1.0, p.rpm / 60 * 5)
    b["tokens"] = min(cap, b["tokens"] + (c.now - b["t"]) * rate)
    b["t"] = c.now
    if b["tokens"] >= 1:
        b["tokens"] -= 1
        return False  # admitted
    wait = (1 - b["tokens"]) / rate
    c.error = E.RateLimitError(f"429: shared limit of {p.rpm:g} rpm reached",
                               headers={"retry-after": f"{wait:.2f}"}, fault_id=f.id)
    c.latency = 0.05
    return True


fault("shared_rate_limit", ("tool", "model"), "a requests-per-minute limit shared by every concurrent "
      "session (use --concurrency): load itself causes 429s", SharedRateP, default_rate=1.0,
      raises=(E.RateLimitError,), before=_shared_rate)


class CapP(Params):
    max_in_flight: int = Field(4, ge=1, description="concurrent requests the provider accepts")


def _cap(c: Call, p: CapP, f) -> bool:
    flights = c.shared.setdefault(("flights", f.id), [])
    flights[:] = [(a, b) for a, b in flights if b > c.now]
    if len(flights) >= p.max_in_flight:
        c.error = E.RateLimitError(f"429: {len(flights)} requests in flight (limit {p.max_in_flight})",
                                   headers={"retry-after": f"{min(b for _, b in flights) - c.now:.2f}"},
                                   fault_id=f.id)
        c.latency = 0.05
        return True
    flights.append((c.now, c.now + c.latency))
    return False


fault("concurrency_cap", ("tool", "model"), "a cap on requests in flight across concurrent sessions",
      CapP, default_rate=1.0, raises=(E.RateLimitError,), before=_cap)
