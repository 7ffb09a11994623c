"""Traces in and out: a recorded session (OTLP GenAI spans, a LangSmith run export) becomes a
scenario whose golden path makes the trace's calls; a run exports as valid OTLP JSON."""
import base64
import json

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, ROOT
from simulator.cli import app
from simulator.runs import run_cell
from simulator.scenario import load_scenario_file, load_scenario_text
from simulator.trace_export import export_run
from simulator.trace_import import differences, dump_yaml, to_scenario
from simulator.trace_read import TraceError, read_trace
from simulator.world import run_golden

TRACES = FIXTURES / "traces"
CALLS = [("find_customer", {"email": "jane@example.com"}), ("list_orders", {"customer_id": "C-100"}),
         ("get_order", {"order_id": "O-5521"}), ("get_item", {"sku": "SKU-LAMP-02"}),
         ("issue_refund", {"order_id": "O-5521", "amount": 118.5, "reason": "damaged item"}),
         ("update_order", {"order_id": "O-5521", "status": "partially-refunded"})]


def imported(path, **kw):
    s = read_trace(path, **kw)
    data, review, mapped = to_scenario(s, "imported")
    return s, load_scenario_text(dump_yaml(data, review), "imported.yaml"), review, mapped


@pytest.mark.parametrize("name", ["refund.otlp.json", "refund.langsmith.json"])
def test_a_recorded_session_becomes_a_scenario_whose_golden_path_makes_its_calls(name):
    s, sc, review, mapped = imported(TRACES / name)
    assert [(c.name, c.args) for c in s.calls] == CALLS and s.model == "gpt-4o-mini"
    assert [len(t.steps) for t in sc.turns] == [3, 3] and sc.turns[0].user.startswith("Hi, this is jane@")
    assert sc.system_prompt.startswith("You are a support agent")
    g = run_golden(sc)
    assert g.problems == [] and differences(sc, s, mapped) == []
    assert [(st.tool, g.args[st.id]) for st in sc.golden_path] == CALLS
    # the arguments follow the data: an id the agent read is a reference to where it read it
    args = {st.id: st.args for st in sc.golden_path}
    assert args["orders"] == {"customer_id": "{customer.customer_id}"}
    assert args["refund"]["amount"] == "{item.refundable}"
    # the schemas come from the trace's tool definitions, the rows from its results
    assert sc.tools["issue_refund"].args["amount"].type == "number"
    assert sc.world["orders"]["O-5521"]["status"] == "delivered"  # as read before the update
    assert sc.tools["get_order"].effect.returns == ["order_id", "status", "total", "items"]
    assert g.outputs["order"] == {"order_id": "O-5521", "status": "delivered", "total": 142.5,
                                  "items": [{"sku": "SKU-LAMP-02", "qty": 1}, {"sku": "SKU-BULB-6", "qty": 2}]}
    # checks on the final writes, and the answers quote what the session established
    assert [c.path for c in sc.success.state] == ["refunds", "orders.O-5521.status"]
    assert "{refund.refund_id}" in sc.turns[1].answer_must_contain
    assert mapped == {"RF-8812": "RF-1"} and any("RF-8812" in r for r in review)


def test_otlp_json_lines_as_the_file_exporter_writes_them(tmp_path):
    doc = json.loads((TRACES / "refund.otlp.json").read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    lines = [{"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": spans[i:i + 5]}]}]}
             for i in range(0, len(spans), 5)]
    f = tmp_path / "spans.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    s, sc, _, _ = imported(f)
    assert [(c.name, c.args) for c in s.calls] == CALLS and len(sc.turns) == 2


def test_calls_without_tool_spans_are_read_from_the_model_messages(tmp_path):
    doc = json.loads((TRACES / "refund.otlp.json").read_text())
    ss = doc["resourceSpans"][0]["scopeSpans"][0]
    ss["spans"] = [sp for sp in ss["spans"] if not sp["name"].startswith("execute_tool")]
    f = tmp_path / "chat-only.json"
    f.write_text(json.dumps(doc))
    s, sc, _, mapped = imported(f)
    assert [(c.name, c.args) for c in s.calls] == CALLS
    assert differences(sc, s, mapped) == []


def test_bad_trace_files_say_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": [\n  oops')
    with pytest.raises(TraceError, match=r"bad.json:\d+: not JSON"):
        read_trace(bad)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(TraceError, match="neither OTLP JSON"):
        read_trace(other)
    empty = tmp_path / "notools.json"
    empty.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "a" * 32, "spanId": "b" * 16, "name": "chat x", "startTimeUnixNano": "1", "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]}]}]}]}))
    with pytest.raises(TraceError, match="no tool calls"):
        read_trace(empty)
    with pytest.raises(TraceError, match="no trace id starts with 'zz'"):
        read_trace(TRACES / "refund.otlp.json", trace="zz")


def test_the_commands_write_and_check_the_scenario(tmp_path):
    out = tmp_path / "from_trace.yaml"
    r = CliRunner().invoke(app, ["import-trace", str(TRACES / "refund.langsmith.json"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "6 tools, 4 world rows, 2 turns, 6 golden steps from 6 calls, 2 state checks" in r.output
    assert "review:" in r.output and out.read_text().startswith("# review:")
    assert load_scenario_file(out).name == "from_trace"
    r = CliRunner().invoke(app, ["import-trace", str(tmp_path / "nope.json"), "-o", str(out)])
    assert r.exit_code == 2 and "no such trace file" in r.output
    r = CliRunner().invoke(app, ["import-trace", str(TRACES / "refund.otlp.json"), "-o", str(out), "--format", "x"])
    assert r.exit_code == 2 and "--format is otlp, langsmith or auto" in r.output


def otlp_ids_to_proto_json(doc: dict) -> dict:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping reads bytes as base64."""
    doc = json.loads(json.dumps(doc))
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if sp.get(k):
                        sp[k] = base64.b64encode(bytes.fromhex(sp[k])).decode()
    return doc


def test_an_exported_run_is_valid_otlp_and_imports_back_into_its_scenario(tmp_path):
    from google.protobuf.json_format import Parse
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    summary, run_dir = run_cell("support_refund", None, "react", trials=3, seed=0, out=tmp_path / "run",
                                faults=["server_error:rate=0.3,target=get_item"])
    doc = export_run(run_dir)
    msg = Parse(json.dumps(otlp_ids_to_proto_json(doc)), ExportTraceServiceRequest())  # unknown fields fail
    spans = msg.resource_spans[0].scope_spans[0].spans
    records = [json.loads(x) for x in (run_dir / "records.jsonl").read_text().splitlines()]
    assert len(spans) == sum(1 + r["model_calls"] + r["tool_calls"] for r in records) - sum(
        1 for x in (run_dir / "events.jsonl").read_text().splitlines() if '"model_error"' in x)
    assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans)
    assert len({s.trace_id for s in spans}) == 3 and export_run(run_dir) == doc  # same run, same file
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 3 and all(s.name == "invoke_agent react" for s in roots)
    # a successful trial, exported and imported, gives back the scenario's golden path
    ok = next(r for r in records if r["outcome"] == "success" and not r["faults_fired"])
    f = tmp_path / "one.json"
    f.write_text(json.dumps(export_run(run_dir, [ok["trial_id"][:10]])))
    s, sc, _, mapped = imported(f)
    shipped = load_scenario_file(ROOT / "scenarios" / "support_refund.yaml")
    assert [st.tool for st in sc.golden_path] == [st.tool for st in shipped.golden_path]
    assert differences(sc, s, mapped) == []
    assert run_golden(sc).args["refund"] == run_golden(shipped).args["refund"]
    r = CliRunner().invoke(app, ["export-trace", str(run_dir), "--trial", "nomatch"])
    assert r.exit_code == 2 and "no trial" in r.output


def _span(i, name, attrs, kind=1):
    def val(v):
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v if isinstance(v, str) else json.dumps(v)}
    return {"traceId": "ab" * 16, "spanId": f"{i:016x}", "name": name, "kind": kind,
            "startTimeUnixNano": str(1_000_000_000 * i), "endTimeUnixNano": str(1_000_000_000 * i + 5),
            "attributes": [{"key": k, "value": val(v)} for k, v in attrs.items()]}


def test_an_older_instrumentation_with_camel_case_tools_and_text_results(tmp_path):
    """Flattened gen_ai.prompt/completion attributes, no operation names, a tool with no
    arguments, a bare list of rows without ids, an update that answers "ok", no schemas."""
    user = "Please move booking BK-77 to the 09:40 flight to LIS on 2026-12-05."
    calls = [("getCurrentUser", {}, {"user_id": "U-9", "name": "Ana"}),
             ("getBooking", {"booking_id": "BK-77"}, {"booking_id": "BK-77", "user_id": "U-9", "flight": "TP-100",
                                                      "status": "confirmed"}),
             ("searchFlights", {"destination": "LIS", "date": "2026-12-05"},
              [{"flight": "TP-210", "departs": "09:40"}, {"flight": "TP-212", "departs": "13:10"}]),
             ("changeBooking", {"booking_id": "BK-77", "flight": "TP-210"}, "ok")]
    spans, i = [], 1
    for n, (tool, args, result) in enumerate(calls):
        spans.append(_span(i, "chat gpt-4.1", {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4.1",
                                               "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "Travel desk.",
                                               "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": user,
                                               "gen_ai.completion.0.role": "assistant",
                                               f"gen_ai.completion.0.tool_calls.0.id": f"c{n}",
                                               f"gen_ai.completion.0.tool_calls.0.name": tool,
                                               f"gen_ai.completion.0.tool_calls.0.arguments": json.dumps(args)}, 3))
        spans.append(_span(i + 1, f"execute_tool {tool}", {"gen_ai.tool.name": tool,
                                                            "gen_ai.tool.call.result": result}))
        i += 2
    spans.append(_span(i, "chat gpt-4.1", {"gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": user,
                                           "gen_ai.completion.0.role": "assistant",
                                           "gen_ai.completion.0.content": "Booking BK-77 is now on TP-210 at 09:40."}, 3))
    f = tmp_path / "older.json"
    f.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    s, sc, review, mapped = imported(f)
    assert [(c.name, c.args) for c in s.calls] == [(t, a) for t, a, _ in calls]
    assert sc.system_prompt == "Travel desk." and [t.user for t in sc.turns] == [user]
    assert differences(sc, s, mapped) == []
    args = {st.id: st.args for st in sc.golden_path}
    assert args["booking_2"] == {"booking_id": "{booking.booking_id}", "flight": "{flights.results.0.flight}"}
    assert [c.path for c in sc.success.state] == ["bookings.BK-77.flight"]
    assert sc.world["bookings"]["BK-77"]["flight"] == "TP-100"  # before the change
    assert any("no schema" in r for r in review) and any("changeBooking: returned str" in r for r in review)


def test_a_span_of_another_shape_is_left_out_with_a_note_and_a_broken_file_is_named(tmp_path):
    doc = json.loads((TRACES / "refund.otlp.json").read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[-1], "spanId": "f" * 16, "attributes": 7})
    f = tmp_path / "odd.json"
    f.write_text(json.dumps(doc))
    s, sc, review, mapped = imported(f)
    assert any(r.startswith(f"span {'f' * 16} left out") for r in review)
    assert differences(sc, s, mapped) == []
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"] = [{**sp, "traceId": ["x"]} for sp in spans]
    f.write_text(json.dumps(doc))
    with pytest.raises(TraceError, match=r"odd.json: not OTLP JSON as this reads it: a field has an unexpected shape"):
        read_trace(f)


def test_failed_calls_stay_out_of_the_golden_path(tmp_path):
    """A LangSmith export as JSON lines: a run marked with an error, and a result that says
    it failed, are left out; the call that worked after them is kept."""
    def run(i, kind, name, inputs, outputs, error=None):
        return {"id": f"r{i}", "trace_id": "t1", "name": name, "run_type": kind, "start_time": f"2026-12-04T09:00:0{i}",
                "inputs": inputs, "outputs": outputs, "error": error}
    human = {"type": "human", "data": {"content": "What is the status of ticket T-42?"}}
    lines = [run(1, "llm", "ChatOpenAI", {"messages": [[human]]}, {"generations": [[{"text": ""}]]}),
             run(2, "tool", "get_ticket", {"ticket_id": "T-42"}, None, error="TimeoutError: upstream"),
             run(3, "tool", "get_ticket", {"ticket_id": "T-42"}, {"output": {"error": "busy", "message": "retry"}}),
             run(4, "tool", "get_ticket", {"ticket_id": "T-42"}, {"output": '{"ticket_id": "T-42", "status": "open"}'}),
             run(5, "llm", "ChatOpenAI", {"messages": [[human]]}, {"generations": [[{"text": "T-42 is open."}]]})]
    f = tmp_path / "runs.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    s, sc, review, mapped = imported(f)
    assert [st.tool for st in sc.golden_path] == ["get_ticket"] and sc.world["tickets"]["T-42"]["status"] == "open"
    assert differences(sc, s, mapped) == [] and sc.turns[0].user == "What is the status of ticket T-42?"
    assert sum("left out" in r for r in review) == 2
    assert sc.turns[0].answer_must_contain == ["{ticket.status}"]


def test_a_write_that_answered_nothing_still_writes(tmp_path):
    human = {"role": "user", "content": "Close ticket T-42, it is fixed."}
    runs = [{"id": "r1", "trace_id": "t", "name": "ChatOpenAI", "run_type": "llm", "start_time": "2026-12-04T09:00:01",
             "inputs": {"messages": [[human]]}, "outputs": {}},
            {"id": "r2", "trace_id": "t", "name": "get_ticket", "run_type": "tool", "start_time": "2026-12-04T09:00:02",
             "inputs": {"ticket_id": "T-42"}, "outputs": {"output": {"ticket_id": "T-42", "status": "open"}}},
            {"id": "r3", "trace_id": "t", "name": "close_ticket", "run_type": "tool", "start_time": "2026-12-04T09:00:03",
             "inputs": {"ticket_id": "T-42", "resolution": "fixed"}, "outputs": {"output": None}}]
    f = tmp_path / "runs.json"
    f.write_text(json.dumps({"runs": runs}))
    s, sc, review, mapped = imported(f)
    assert sc.tools["close_ticket"].effect.update == "tickets" and differences(sc, s, mapped) == []
    assert [c.path for c in sc.success.state] == ["tickets.T-42.resolution"]
