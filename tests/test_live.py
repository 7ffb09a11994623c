"""A real HTTP client (langchain-openai's ChatOpenAI) against a scripted OpenAI-compatible
server on 127.0.0.1: the scenario, the faults, the judge and the costs work as with the
simulated model; provider failures become error trials; cassettes replay without a network."""
import json
import socket
import sys

import pytest

from conftest import FIXTURES, ROOT, run
from simulator.cassettes import MASK, Cassette, scrub, secret_values
from simulator.jobs import make_specs
from simulator.live import LiveOptions, RateLimiter, model_spec, parse_models
from simulator.profiles import get_profile

sys.path.insert(0, str(FIXTURES))
from openai_server import Server  # noqa: E402

KEY = "sk-test-SECRET-0123456789"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("ATTRITION_LIVE", raising=False)


@pytest.fixture
def server():
    srv = Server("support_refund")
    yield srv
    srv.stop()


def live(monkeypatch, **opts):
    LiveOptions(**opts).to_env()


def drop_wall(record) -> dict:
    d = record.model_dump(mode="json")
    d.pop("wall_time_s")
    return d


def test_a_shipped_scenario_runs_to_success_through_a_real_client(server):
    (r, ev), = run("support_refund", "react", model="openai:gpt-test", base_url=server.url)
    assert r.outcome == "success", r.error
    calls = [e for e in ev if e["event"] == "model_call"]
    assert {e["mode"] for e in calls} == {"live"} and {e["model"] for e in calls} == {"openai:gpt-test"}
    assert len(calls) == len(server.script.requests) == r.model_calls
    # the golden path's tools, in order, came from the server's tool calls
    assert [e["tool"] for e in calls if e.get("tool")] == [s.tool for s in server.script.sc.golden_path]
    # tokens are the provider's usage fields; money is tokens at the profile's prices
    sent = [server.script.answer(q["body"])["usage"] for q in server.script.requests]
    assert r.tokens_in == sum(u["prompt_tokens"] for u in sent) and r.tokens_out == 17 * len(sent)
    p = get_profile("strong").prices
    assert r.cost_usd["model"] == pytest.approx((r.tokens_in * p.input_per_mtok + r.tokens_out * p.output_per_mtok) / 1e6)
    assert all(e["usage"] == "reported" for e in calls)
    # the key reached the server, in the header, and nowhere in the record
    headers = {k.lower(): v for k, v in server.script.requests[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in r.model_dump_json() and KEY not in json.dumps(ev)


def test_model_faults_fire_before_the_call_reaches_the_provider(server):
    (r, ev), = run("support_refund", "react", model="openai:gpt-test", base_url=server.url,
                   faults=["rate_limit:rate=1,target=model"])
    assert r.outcome == "failure" and r.failure_mode == "unhandled_rate_limit_exceeded"
    assert server.script.requests == []  # the fault answered in the provider's place
    assert any(e["event"] == "fault" and e["name"] == "rate_limit" for e in ev)


def test_tool_faults_and_the_judge_are_unchanged(server):
    (r, ev), = run("support_refund", "react", model="openai:gpt-test", base_url=server.url,
                   faults=["silent_wrong:rate=1,target=get_item"])
    # the scripted model ignores what the tool said: the refund is right by luck of the script,
    # the judge reads the world and says so, and the fault that fired is on the record
    assert any(e["event"] == "fault" and e["name"] == "silent_wrong" for e in ev)
    assert r.outcome == "success" and all(c.passed for c in r.checks) and r.faults_fired
    (r, _), = run("support_refund", "react", model="openai:gpt-test", base_url=server.url,
                  faults=["server_error:rate=1,target=issue_refund"])
    # a 500 from a tool the design does not retry fails the trial as it would with the simulated model
    assert r.outcome == "failure" and r.failure_mode == "unhandled_server_error"


def test_429_with_retry_after_and_500_are_retried_by_the_client_and_slow_calls_take_virtual_time():
    srv = Server("support_refund", trouble={1: "429", 3: "500", 5: "slow"}, slow_s=0.3)
    try:
        (r, ev), = run("support_refund", "react", model="openai:gpt-test", base_url=srv.url)
    finally:
        srv.stop()
    assert r.outcome == "success", r.error
    calls = [e for e in ev if e["event"] == "model_call"]
    assert len(srv.script.requests) == len(calls) + 2  # two retried requests
    assert max(e["latency_s"] for e in calls) >= 0.3  # the slow one's wall time became virtual time


def test_a_malformed_response_is_an_error_trial_and_the_run_goes_on(server):
    srv = Server("support_refund", trouble={2: "malformed"})
    try:
        res = run("support_refund", "react", trials=2, model="openai:gpt-test", base_url=srv.url)
    finally:
        srv.stop()
    (bad, ev), (good, _) = res
    assert bad.outcome == "error" and "provider error (malformed)" in bad.error
    assert any(e["event"] == "model_error" and e["error"] == "ProviderError" for e in ev)
    assert good.outcome == "success"


def test_a_missing_key_and_a_server_that_does_not_answer_are_error_trials(monkeypatch, server):
    monkeypatch.delenv("OPENAI_API_KEY")
    (r, _), = run("support_refund", "react", model="openai:gpt-test", base_url=server.url)
    assert r.outcome == "error" and "provider error (auth)" in r.error and "OPENAI_API_KEY" in r.error
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    live(monkeypatch, max_retries=0, timeout_s=5)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (r, _), = run("support_refund", "react", model="openai:gpt-test", base_url=f"http://127.0.0.1:{port}/v1")
    assert r.outcome == "error" and "provider error (connection)" in r.error and str(port) in r.error


def test_a_provider_error_the_design_catches_still_makes_the_trial_an_error(server, monkeypatch):
    live(monkeypatch, replay=str(FIXTURES), fallback="error")  # an empty cassette: every call misses
    (r, ev), = run("support_refund", f"{FIXTURES}/live_swallow.py:build", model="openai:gpt-test",
                   base_url=server.url)
    assert r.outcome == "error" and "cassette_miss" in r.error
    assert not any(e["event"] == "trial_error" for e in ev)  # the design caught it: only the flag tells


def test_record_then_replay_gives_identical_records_with_the_server_stopped(tmp_path, monkeypatch):
    srv = Server("support_refund", trouble={2: "slow"}, slow_s=0.05)
    live(monkeypatch, record=str(tmp_path / "tape"))
    first = run("support_refund", "react", trials=2, model="openai:gpt-test", base_url=srv.url)
    srv.stop()
    entries = list((tmp_path / "tape").rglob("*.json"))
    assert len(entries) == sum(r.model_calls for r, _ in first)
    text = "".join(p.read_text() for p in entries)
    assert KEY not in text and "authorization" not in text.lower()
    live(monkeypatch, replay=str(tmp_path / "tape"))
    again = run("support_refund", "react", trials=2, model="openai:gpt-test", base_url=srv.url)
    for (a, ea), (b, eb) in zip(first, again):
        assert drop_wall(a) == drop_wall(b)
        assert [{k: v for k, v in e.items() if k != "replayed"} for e in ea] == \
               [{k: v for k, v in e.items() if k != "replayed"} for e in eb]
    assert all(e.get("replayed") for _, ev in again for e in ev if e["event"] == "model_call")


def test_a_replay_miss_fails_clearly_or_falls_back_to_the_simulated_model(tmp_path, monkeypatch, server):
    (tmp_path / "empty").mkdir()
    live(monkeypatch, replay=str(tmp_path / "empty"))
    (r, _), = run("support_refund", "react", model="openai:gpt-test", base_url=server.url)
    assert r.outcome == "error" and "no recorded response" in r.error and "--record" in r.error
    live(monkeypatch, replay=str(tmp_path / "empty"), fallback="simulated")
    (r, ev), = run("support_refund", "react", model="openai:gpt-test", base_url=server.url)
    assert r.outcome != "error" and server.script.requests == []
    assert {e["mode"] for e in ev if e["event"] == "model_call"} - {"live"}


def test_cassettes_strip_credentials_by_name_and_by_value(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ant-key-987654321")
    data = {"headers": {"Authorization": "Bearer x", "x-api-key": "k"}, "api_key": "k",
            "usage": {"input_tokens": 3, "prompt_tokens_details": {"cached_tokens": 1}},
            "text": "echo ant-key-987654321 and " + KEY}
    out = scrub(data, secret_values())
    assert out == {"headers": {}, "usage": data["usage"], "text": f"echo {MASK} and {MASK}"}


def test_role_references_and_bad_models_are_checked_before_anything_runs():
    assert parse_models("openai:gpt-4o") == {"*": "openai:gpt-4o"}
    assert parse_models("agent=openai:gpt-4o, verifier=ollama:llama3.1") == \
        {"agent": "openai:gpt-4o", "verifier": "ollama:llama3.1"}
    assert model_spec("openai:gpt-4o", "http://localhost:8000/v1", "profile") == \
        {"roles": {"*": "openai:gpt-4o"}, "base_url": "http://localhost:8000/v1", "latency": "profile"}
    for bad, says in [("gpt-4o", "PROVIDER:NAME"), ("nosuch:model", "unknown provider 'nosuch'"),
                      ("agent=openai:a,agent=openai:b", "given twice"), ("openai:", "PROVIDER:NAME")]:
        with pytest.raises(ValueError, match=says):
            make_specs("support_refund", None, "react", trials=1, seed=0, model=bad)
    with pytest.raises(ValueError, match="--base-url"):
        make_specs("support_refund", None, "react", trials=1, seed=0, model="openai:x", base_url="localhost")
    with pytest.raises(ValueError, match="--base-url needs --model"):
        model_spec(None, "http://x")


def test_a_model_enters_the_trial_id_only_when_set():
    plain = make_specs("support_refund", None, "react", trials=1, seed=0)[0]
    assert "model" not in plain.model_dump(mode="json")
    one = make_specs("support_refund", None, "react", trials=1, seed=0, model="openai:a")[0]
    other = make_specs("support_refund", None, "react", trials=1, seed=0, model="openai:b")[0]
    assert len({plain.id, one.id, other.id}) == 3
    assert one.tags == {"model": "openai:a", "profile": "openai:a"} and one.profile_label == "openai:a"


def test_the_rate_limiter_spaces_request_starts():
    now = [0.0]
    slept = []
    lim = RateLimiter(120, clock=lambda: now[0], sleep=slept.append)
    assert [lim.wait() for _ in range(3)] == [0.0, 0.5, 1.0]
    assert slept == [0.5, 1.0]


def test_an_unreadable_cassette_entry_names_its_file(tmp_path):
    c = Cassette(tmp_path, must_exist=True)
    p = c.path("ab" + "0" * 30)
    p.parent.mkdir(parents=True)
    p.write_text("{")
    with pytest.raises(ValueError, match=str(p)):
        c.load("ab" + "0" * 30)
    with pytest.raises(FileNotFoundError, match="no such cassette directory"):
        Cassette(tmp_path / "nope", must_exist=True)


def test_a_sweep_puts_a_real_model_beside_the_simulated_one(tmp_path, server):
    from simulator.runs import run_sweep
    from simulator.store import iter_records
    from simulator.sweep import load_sweep
    f = tmp_path / "models.yaml"
    f.write_text(f"name: models\nreplicates: 2\nscenarios: [support_refund]\n"
                 f"models: [simulated, {{ref: 'openai:gpt-test', base_url: '{server.url}', label: scripted}}]\n")
    summary, out = run_sweep(f, executor="serial", out=tmp_path / "out")
    recs = list(iter_records(out))
    live = [r for r in recs if r.spec.get("model")]
    assert len(recs) == 4 and len(live) == 2
    assert {r.profile for r in live} == {"scripted"} and all(r.outcome == "success" for r in live)
    assert {r.profile for r in recs if not r.spec.get("model")} == {"strong"}
    assert len(server.script.requests) == sum(r.model_calls for r in live)
    # the default axis is left out of the sweep's dump: manifests written before it still match
    assert "models" not in load_sweep(ROOT / "scenarios/sweeps/quickstart.yaml").model_dump(mode="json")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nscenarios: [support_refund]\nmodels: [simulated, 'nosuch:x']\n")
    from simulator.scenario import ScenarioError
    with pytest.raises(ScenarioError, match=r"bad.yaml:3: models\[1\]: ref: unknown provider 'nosuch'"):
        run_sweep(bad, executor="serial", out=tmp_path / "bad")


def test_a_replay_pays_only_for_what_changed(tmp_path, monkeypatch, server):
    live(monkeypatch, record=str(tmp_path / "tape"))
    (first, _), = run("support_refund", "react", trials=1, model="openai:gpt-test", base_url=server.url)
    paid = len(server.script.requests)
    live(monkeypatch, replay=str(tmp_path / "tape"), fallback="live")
    res = run("support_refund", "react", trials=2, model="openai:gpt-test", base_url=server.url)
    assert drop_wall(res[0][0]) == drop_wall(first)
    assert len(server.script.requests) - paid == res[1][0].model_calls  # only the new replicate was called
    live(monkeypatch, replay=str(tmp_path / "tape"))  # now the cassettes hold both
    again = run("support_refund", "react", trials=2, model="openai:gpt-test", base_url=server.url)
    assert [drop_wall(r) for r, _ in again] == [drop_wall(r) for r, _ in res]


@pytest.mark.parametrize("style", ["async_nodes", "create_agent", "functional_api", "subgraph",
                                   "summarization_middleware"])
def test_graphs_written_in_other_styles_run_on_a_real_client(style, server):
    (r, ev), = run("support_refund", f"{FIXTURES}/styles/{style}.py:build", model="openai:gpt-test",
                   base_url=server.url)
    assert r.outcome == "success", r.error
    assert r.model_calls == len(server.script.requests) > 0


def test_structured_output_reaches_the_provider_in_its_own_form(server):
    (r, ev), = run("support_refund", f"{FIXTURES}/live_structured.py:build", model="openai:gpt-test",
                   base_url=server.url)
    assert r.error is None and r.outcome == "failure"  # it answers, but does none of the work
    first, second = (q["body"] for q in server.script.requests[:2])
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["name"] == "Verdict"
    assert set(first["response_format"]["json_schema"]["schema"]["properties"]) == {"approve", "reason"}
    assert second["tool_choice"] == "required" and [t["function"]["name"] for t in second["tools"]] == ["Verdict"]
    answers = [e["answer"] for e in ev if e["event"] == "turn_end"]
    assert answers[0] == "json True ok; tool True ok"


def test_real_model_options_are_refused_where_they_cannot_reach_the_workers(tmp_path):
    from typer.testing import CliRunner
    from simulator.cli import app
    r = CliRunner().invoke(app, ["sweep", str(ROOT / "scenarios/sweeps/quickstart.yaml"), "--executor", "dask",
                                 "--rpm", "60", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "not dask" in r.output and not (tmp_path / "o").exists()
    r = CliRunner().invoke(app, ["run", "support_refund", "--record", str(tmp_path / "tape")])
    assert r.exit_code == 2 and "need --model" in r.output


def test_with_the_profile_latency_model_virtual_time_does_not_depend_on_the_provider(server):
    slow = Server("support_refund", trouble={i: "slow" for i in range(1, 40)}, slow_s=0.05)
    try:
        (a, _), = run("support_refund", "react", model="openai:gpt-test", base_url=server.url, latency="profile")
        (b, _), = run("support_refund", "react", model="openai:gpt-test", base_url=slow.url, latency="profile")
    finally:
        slow.stop()
    assert a.outcome == b.outcome == "success"
    assert a.sim_time_s == b.sim_time_s  # (two servers: two base URLs, so two trial ids)
