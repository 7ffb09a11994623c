"""The event vocabulary: what the engine emits is what simulator.events documents.

One corpus of trials covers every fault and every shipped design; each event it
emits must validate against the typed models, and each of the kinds must be seen,
so the union can drift from the emission sites in neither direction.
"""
import json
from collections import Counter

import pytest
import yaml
from pydantic import ValidationError

from simulator.events import EVENT_KINDS, EVENT_SCHEMA_VERSION, Trace, events_json_schema, parse_event
from simulator.registry import names

from conftest import FIXTURES, ROOT, run

NEEDS_PARAMS = {"outage": "outage:windows=0-100000", "context_overflow": "context_overflow:window=1000",
                "memory_loss": "memory_loss:at_turn=1"}
DESIGNS = ["react", "react-retry", "circuit-breaker", "plan-execute-verify", "react-memory", "human-approval"]
MIX = ["silent_wrong:rate=0.2", "stale:rate=0.1", "timeout:rate=0.1", "prompt_injection:rate=0.3",
       "ambiguous", "goal_change", "auth_expired:rate=0.05"]


def _ends_early(tmp_path) -> str:
    """support_refund whose user leaves when the first answer lacks the order."""
    data = yaml.safe_load((ROOT / "scenarios" / "support_refund.yaml").read_text())
    data["turns"][0]["if_answer_missing"] = "end"
    path = tmp_path / "ends_early.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[dict]:
    trials = []
    for i, f in enumerate(names("fault")):  # every fault, the designs taking turns
        trials += run("support_refund", DESIGNS[i % len(DESIGNS)], trials=2, seed=5,
                      faults=[NEEDS_PARAMS.get(f, f)], agent_params=_params(DESIGNS[i % len(DESIGNS)]))
    for d in DESIGNS:
        trials += run("support_refund", d, trials=2, seed=9, profile="weak", faults=MIX, agent_params=_params(d))
        trials += run("chain", d, params={"length": 12}, seed=9, agent_params=_params(d),
                      faults=["silent_wrong:rate=0.2", "server_error:rate=0.1", "malformed:rate=0.1"])
    trials += run(agent=f"{FIXTURES / 'bad_designs.py'}:crashes_in_node")
    trials += run(_ends_early(tmp_path_factory.mktemp("events")), "react-retry",
                  faults=["outage:windows=0-100000"])
    return [e for _, events in trials for e in events]


def _params(design: str) -> dict | None:
    return {"memory": "summary"} if design == "react-memory" else None  # summary emits summarizer calls


def test_every_emitted_event_validates(corpus):
    for e in corpus:
        try:
            parse_event(e)
        except ValidationError as err:
            pytest.fail(f"{e['event']} event #{e['seq']} of {e['trial']} breaks the schema:\n{err}")


def test_every_kind_is_emitted(corpus):
    seen = Counter(e["event"] for e in corpus)
    assert set(seen) == set(EVENT_KINDS), f"never emitted: {sorted(EVENT_KINDS - set(seen))}"


def test_every_model_call_shape_is_emitted(corpus):
    modes = {e.get("mode") for e in corpus if e["event"] == "model_call"}
    assert {"summarize", "plan", "correct"} <= modes
    assert {e["boundary"] for e in corpus if e["event"] == "fault"} == {"tool", "model", "turn", "history"}
    assert {e["ok"] for e in corpus if e["event"] == "tool_call" and "error" in e} == {False}


def test_typed_fields():
    e = parse_event({"v": 1, "trial": "x", "seq": 4, "t": 2.5, "event": "tool_call", "tool": "get_order",
                     "call": 3, "call_id": "c1", "args": {"order_id": "O-1"}, "ok": True,
                     "result": {"total": 9.0}, "start": 2.0, "latency_s": 0.5})
    assert type(e).__name__ == "ToolCall" and e.call == 3 and e.result == {"total": 9.0} and e.error is None


def test_an_unknown_kind_raises_at_the_source():
    trace = Trace("t", lambda: 0.0)
    with pytest.raises(ValueError, match="tool_cal"):
        trace.emit("tool_cal", tool="x")
    assert trace.events == []


def test_a_malformed_event_names_the_field():
    bad = {"v": 1, "trial": "x", "seq": 1, "t": 0.0, "event": "tool_call", "tool": "get_order",
           "call": "3", "args": {}, "ok": True, "start": 0.0, "latency_s": 0.1}
    with pytest.raises(ValidationError, match=r"tool_call\.call"):
        parse_event(bad)
    with pytest.raises(ValidationError, match="extra"):
        parse_event({**bad, "call": 3, "surprise": 1})
    with pytest.raises(ValidationError, match="does not match any of the expected tags|discriminator"):
        parse_event({**bad, "event": "nope"})


def test_events_json_schema():
    s = events_json_schema()
    assert s["$schema"].startswith("https://json-schema.org/") and str(EVENT_SCHEMA_VERSION) in s["title"]
    assert set(s["discriminator"]["mapping"]) == set(EVENT_KINDS)
    assert s["$defs"]["ToolCall"]["properties"]["call"]["type"] == "integer"


def test_schema_command_prints_the_event_schema():
    from typer.testing import CliRunner

    from simulator.cli import app
    out = CliRunner().invoke(app, ["schema", "--events"])
    assert out.exit_code == 0
    schema = json.loads(out.stdout)
    kinds = {m["properties"]["event"]["const"] for m in schema["$defs"].values()
             if "event" in m.get("properties", {}) and "const" in m["properties"]["event"]}
    assert kinds == EVENT_KINDS
