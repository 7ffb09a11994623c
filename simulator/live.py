"""Real models at the model boundary.

`--model PROVIDER:NAME` (or per role, `agent=PROVIDER:NAME,verifier=...`) gives the roles it
names a provider's chat model, made by LangChain's `init_chat_model` (with `base_url` for
any OpenAI-compatible server); other roles keep the simulated model. Every call still
crosses the model boundary as the simulated model's do: the model-boundary faults fire
first (a rate limit, an outage, a context overflow never reaches the provider), then the
call goes out, and its measured latency (or the profile's latency model, by option) is
charged to the virtual clock and its usage fields become the trial's tokens, priced as
the simulated model's are. Tool faults, the scripted user and the judge are unchanged.

What the provider does wrong is not the agent's failure: a missing key, an unknown
provider, a server that does not answer, a malformed response, a request a replay has no
cassette for become a `ProviderError`, and the trial is recorded as `error` (even if the
design caught the exception and went on).

The run's options (cassettes, request timeout, client-side rate limit) are not part of a
trial's identity: a replayed trial keeps the id and the record of the recorded one. They
reach worker processes in the ATTRITION_LIVE environment variable.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from .cassettes import Cassette, request_key, request_of
from .brain import Brain
from .model import SimulatedChatModel, ToolBindingModel
from .tokens import count_text

ENV = "ATTRITION_LIVE"
LATENCY_MODES = ("measured", "profile")
_ROLE = re.compile(r"^[A-Za-z_][\w-]*$")
_FALLBACK_PROVIDERS = ("anthropic", "azure_openai", "bedrock", "bedrock_converse", "cohere", "deepseek",
                       "fireworks", "google_genai", "google_vertexai", "groq", "huggingface", "mistralai",
                       "nvidia", "ollama", "openai", "openrouter", "perplexity", "together", "xai")


def providers() -> list[str]:
    try:  # the providers init_chat_model knows, from the installed langchain
        from langchain.chat_models.base import _BUILTIN_PROVIDERS
        return sorted(_BUILTIN_PROVIDERS)
    except ImportError:
        return list(_FALLBACK_PROVIDERS)


def check_ref(ref: str, where: str = "--model") -> str:
    provider, sep, name = ref.partition(":")
    if not sep or not provider or not name.strip():
        raise ValueError(f"{where}: {ref!r} is not PROVIDER:NAME (e.g. openai:gpt-4o-mini, ollama:llama3.1)")
    if provider not in providers():
        raise ValueError(f"{where}: unknown provider {provider!r} in {ref!r}; known: {', '.join(providers())}")
    return ref


def parse_models(text: str, where: str = "--model") -> dict[str, str]:
    """`openai:gpt-4o` (every role) or `agent=openai:gpt-4o,verifier=ollama:llama3.1` -> role -> ref
    ("*" for every role not named)."""
    items = []
    for part in (p.strip() for p in str(text).split(",")):
        if part:
            role, eq, ref = part.partition("=")
            items.append((role.strip(), ref.strip()) if eq and ":" not in role else ("*", part))
    if not items:
        raise ValueError(f"{where}: no model given; write PROVIDER:NAME or ROLE=PROVIDER:NAME,...")
    out: dict[str, str] = {}
    for role, ref in items:
        if role != "*" and not _ROLE.match(role):
            raise ValueError(f"{where}: {role!r} is not a role name (agent, verifier, summarizer, ...)")
        if role in out:
            raise ValueError(f"{where}: role {role!r} is given twice")
        out[role] = check_ref(ref, where)
    return out


def model_spec(models: str | None, base_url: str | None = None, latency: str = "measured") -> dict | None:
    """The `model` field of a TrialSpec: which roles a real model plays, and where it is served."""
    if not models:
        if base_url:
            raise ValueError("--base-url needs --model PROVIDER:NAME")
        return None
    if latency not in LATENCY_MODES:
        raise ValueError(f"--latency: {latency!r} is not one of {', '.join(LATENCY_MODES)}")
    if base_url is not None and not re.match(r"^https?://[^\s/]+", str(base_url)):
        raise ValueError(f"--base-url: {base_url!r} is not an http(s) URL (e.g. http://localhost:11434/v1)")
    spec: dict[str, Any] = {"roles": parse_models(models)}
    if base_url:
        spec["base_url"] = str(base_url)
    if latency != "measured":
        spec["latency"] = latency
    return spec


@dataclass(frozen=True)
class LiveOptions:
    """How this run talks to providers; none of it changes what a trial is."""
    record: str | None = None        # directory to record every request and response in
    replay: str | None = None        # directory to serve them from, without a network
    fallback: str = "error"          # on a replay miss: error, live (call the provider, record it) or simulated
    rpm: float | None = None         # client-side requests per minute, per worker process
    timeout_s: float = 120.0         # one request's wall-time limit
    max_retries: int = 2             # the client's own retries (429 with retry-after, 5xx)
    in_flight: int = 1               # trials each worker process runs at once, in threads (real calls wait on I/O)

    def to_env(self) -> None:
        os.environ[ENV] = json.dumps(asdict(self))

    @contextmanager
    def in_env(self):
        """These options for the workers started inside the block; the environment as it was after."""
        before = os.environ.get(ENV)
        self.to_env()
        try:
            yield self
        finally:
            if before is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = before

    @classmethod
    def from_env(cls) -> "LiveOptions":
        raw = os.environ.get(ENV)
        return cls(**json.loads(raw)) if raw else cls()


def options_env(live: "LiveOptions | None"):
    """A context in which workers read `live` (nothing changes for None)."""
    return live.in_env() if live is not None else nullcontext()


class ProviderError(RuntimeError):
    """The provider or the cassette failed a call: the trial is an error, not an agent failure."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"provider error ({kind}): {message}")
        self.kind = kind


def classify(e: BaseException, ref: str, base_url: str | None) -> ProviderError:
    """A provider client's exception as a ProviderError that says what went wrong."""
    names = {c.__name__ for c in type(e).__mro__}
    where = base_url or ref.partition(":")[0]
    text = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
    if isinstance(e, ImportError):
        pkg = f"langchain-{ref.partition(':')[0].replace('_', '-')}"
        return ProviderError("missing_package", f"{ref} needs the {pkg} package: pip install {pkg} ({text})")
    if "AuthenticationError" in names or "PermissionDeniedError" in names or "credential" in text.lower() \
            or "api key" in text.lower() or "api_key" in text:
        return ProviderError("auth", f"{ref}: the provider refused the credentials or none were set "
                                     f"(set the provider's API key variable, e.g. OPENAI_API_KEY): {text}")
    if "APITimeoutError" in names or "Timeout" in type(e).__name__:
        return ProviderError("timeout", f"{ref}: no answer from {where} within the request timeout")
    if "APIConnectionError" in names or "ConnectError" in names or isinstance(e, ConnectionError):
        return ProviderError("connection", f"{ref}: cannot reach {where} ({text})")
    if "RateLimitError" in names:
        return ProviderError("rate_limit", f"{ref}: still rate limited after the client's retries ({text})")
    if "APIStatusError" in names:
        return ProviderError(f"http_{getattr(e, 'status_code', '?')}", f"{ref}: {text}")
    if isinstance(e, (ValueError, KeyError, TypeError)) or "APIResponseValidationError" in names:
        return ProviderError("malformed", f"{ref}: the response could not be read ({type(e).__name__}: {text})")
    return ProviderError("unknown", f"{ref}: {type(e).__name__}: {text}")


class RateLimiter:
    """Client-side requests per minute: spaces request starts evenly, across threads. It waits
    in real time, since the provider it protects is real."""

    def __init__(self, rpm: float, clock=time.monotonic, sleep=time.sleep):
        self.interval, self.next, self.lock = 60.0 / rpm, 0.0, threading.Lock()
        self.clock, self.sleep = clock, sleep

    def wait(self) -> float:
        """Wait for this request's turn; return how long it waited."""
        with self.lock:
            now = self.clock()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            self.sleep(start - now)
        return start - now


_LIMITERS: dict[tuple, RateLimiter] = {}


def limiter(ref: str, rpm: float | None) -> RateLimiter | None:
    if not rpm:
        return None
    return _LIMITERS.setdefault((ref, rpm), RateLimiter(rpm))


def _response_format(rf: dict) -> dict:
    """attrition's {name, schema, method} as the OpenAI-style `response_format` providers take."""
    if rf.get("method") == "json_mode":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": rf.get("name", "response"), "schema": rf.get("schema", {})}}


class LiveChatModel(ToolBindingModel):
    """A provider's model behind attrition's model boundary, for one role of one trial."""
    session: Any = None
    role: str = "agent"
    ref: str = ""
    base_url: str | None = None
    latency_mode: str = "measured"
    options: Any = None
    inner: Any = None       # the provider's chat model, made at the first call that needs it
    cassette: Any = None
    seen: dict = {}         # request digest -> times sent in this trial
    fallback_model: Any = None

    @property
    def _llm_type(self) -> str:
        return "attrition-live"

    def _client(self):
        if self.inner is None:
            from langchain.chat_models import init_chat_model
            kw: dict[str, Any] = {"timeout": self.options.timeout_s, "max_retries": self.options.max_retries}
            if self.base_url:
                kw["base_url"] = self.base_url
            self.inner = init_chat_model(self.ref, **kw)
        return self.inner

    def _runnable(self, kwargs: dict, stop):
        runnable = self._client()
        tools, rf = kwargs.get("tools"), kwargs.get("response_format")
        extra = {k: v for k, v in kwargs.items() if k not in ("tools", "tool_choice", "response_format")}
        if tools:
            runnable = runnable.bind_tools(tools, **({"tool_choice": kwargs["tool_choice"]}
                                                     if kwargs.get("tool_choice") is not None else {}))
        if rf:
            runnable = runnable.bind(response_format=_response_format(rf))
        if extra or stop:
            runnable = runnable.bind(**extra, **({"stop": stop} if stop else {}))
        return runnable

    def _prepare(self, messages, stop, kwargs: dict) -> tuple:
        """Faults first, then the request's cassette key; a replay answers here."""
        s = self.session
        ctx = s.counter.messages(messages) + count_text(json.dumps(kwargs.get("tools") or [], default=str))
        extra_latency = s.fault_runtime.model_call(ctx, self.role)  # faults fire before the call
        params = dict(kwargs) | ({"stop": stop} if stop else {}) | ({"base_url": self.base_url} if self.base_url else {})
        request = request_of(self.ref, list(messages), params)
        rkey = json.dumps(request, sort_keys=True, default=str)
        n = self.seen[rkey] = self.seen.get(rkey, 0) + 1
        key = request_key(request, s.replicate, n - 1)
        entry = None
        if self.options.replay:
            entry = self.cassette.load(key)
            if entry is None and self.options.fallback not in ("simulated", "live"):
                self._fail(ProviderError(
                    "cassette_miss", f"{self.ref}: no recorded response in {self.options.replay} for request "
                    f"{key[:12]} (role {self.role}, call {s.model_calls + 1}); record it with --record, "
                    "or replay with --replay-fallback live (call and record it) or simulated"), ctx)
        return ctx, extra_latency, request, key, entry

    def _fail(self, e: Exception, ctx: int):
        err = e if isinstance(e, ProviderError) else classify(e, self.ref, self.base_url)
        s = self.session
        s.model_calls += 1
        s.provider_error = s.provider_error or str(err)
        s.trace.emit("model_error", role=self.role, error="ProviderError", message=str(err), context_tokens=ctx)
        raise err from (None if err is e else e)

    def _answered(self, messages, stop, run_manager, kwargs: dict) -> tuple:
        """(the answer, if a cassette or the simulated model gives it; the call's preparation)."""
        prep = self._prepare(messages, stop, kwargs)
        ctx, extra, _, _, entry = prep
        if entry is not None:
            return self._finish(entry["message"], float(entry["latency_s"]), True, ctx, extra), prep
        if self.options.replay and self.options.fallback == "simulated":
            return self._simulated(messages, stop, run_manager, kwargs), prep
        lim = limiter(self.ref, self.options.rpm)
        if lim is not None:
            lim.wait()
        return None, prep

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        done, (ctx, extra, request, key, _) = self._answered(messages, stop, run_manager, kwargs)
        if done is not None:
            return done
        try:
            t0 = time.perf_counter()
            msg = self._runnable(kwargs, stop).invoke(messages)
            return self._recorded(msg, time.perf_counter() - t0, request, key, ctx, extra)
        except Exception as e:
            self._fail(e, ctx)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        done, (ctx, extra, request, key, _) = self._answered(messages, stop, run_manager, kwargs)
        if done is not None:
            return done
        try:
            t0 = time.perf_counter()
            msg = await self._runnable(kwargs, stop).ainvoke(messages)
            return self._recorded(msg, time.perf_counter() - t0, request, key, ctx, extra)
        except Exception as e:
            self._fail(e, ctx)

    def _recorded(self, msg, measured: float, request: dict, key: str, ctx: int, extra: float) -> ChatResult:
        if not isinstance(msg, AIMessage):
            raise TypeError(f"the model returned {type(msg).__name__}, not an AIMessage")
        measured = round(measured, 6)  # as the cassette keeps it: a replay charges the very same time
        if self.options.record or self.options.replay:  # a replay's miss, called live, joins the cassette
            self.cassette.save(key, request, msg, measured)
        return self._finish(msg, measured, False, ctx, extra)

    def _finish(self, msg: AIMessage, measured: float, replayed: bool, ctx: int, extra: float) -> ChatResult:
        """Usage becomes tokens, latency becomes virtual time, the call becomes an event."""
        s = self.session
        usage = msg.usage_metadata or {}
        tin = int(usage.get("input_tokens") or ctx)
        tout = int(usage.get("output_tokens") or count_text(str(msg.content) + json.dumps(
            [c["args"] for c in msg.tool_calls], default=str)))
        lat = (measured if self.latency_mode == "measured" else self._modelled(tin, tout)) + extra
        s.charge_model(lat, tin, tout)
        call = msg.tool_calls[0] if msg.tool_calls else None
        s.trace.emit("model_call", role=self.role, mode="live", model=self.ref, turn=s.turn,
                     call_id=call["id"] if call else None, tool=call["name"] if call else None,
                     args=call["args"] if call else None, context_tokens=tin, output_tokens=tout,
                     latency_s=round(lat, 6), replayed=replayed or None,
                     usage="reported" if usage else "estimated")
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _modelled(self, tin: int, tout: int) -> float:
        """The profile's latency model, on the trial's own stream: virtual time that does not
        depend on how busy the provider was."""
        rng = self.session.stream("live-latency", self.role, self.session.model_calls)
        return self.session.profile.latency.draw(rng, tin, tout)

    def _simulated(self, messages, stop, run_manager, kwargs: dict) -> ChatResult:
        if self.fallback_model is None:
            self.fallback_model = SimulatedChatModel(brain=Brain(self.session, self.role))
        return self.fallback_model._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def factory(session, spec: dict, options: LiveOptions | None = None):
    """role -> a LiveChatModel for the roles `spec` names (None: the simulated model plays it)."""
    options = options or LiveOptions.from_env()
    roles = spec["roles"]
    seen: dict = {}  # one count of identical requests per trial, across its roles
    where = options.replay or options.record
    cassette = Cassette(where, must_exist=bool(options.replay)) if where else None

    def make(role: str):
        ref = roles.get(role, roles.get("*"))
        if ref is None:
            return None
        return LiveChatModel(session=session, role=role, ref=ref, base_url=spec.get("base_url"),
                             latency_mode=spec.get("latency", "measured"), options=options, cassette=cassette,
                             seen=seen)
    return make
