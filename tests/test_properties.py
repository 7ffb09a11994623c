from hypothesis import given, settings, strategies as st

from simulator.rng import derive_seed, lognormal, stream
from simulator.scenario import Effect
from simulator.scenario_refs import resolve_scenario
from simulator.world import MISSING, apply_effect, get_path, resolve, run_golden

keys = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
scalars = st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.floats(allow_nan=False))


@given(keys, keys, scalars)
def test_a_whole_reference_keeps_its_type(step, field, value):
    assert resolve(f"{{{step}.{field}}}", {step: {field: value}}) == value
    assert resolve(f"{{{step}.{field}}}", {}) is MISSING


@given(keys, keys, st.integers())
def test_embedded_references_interpolate(step, field, value):
    assert resolve(f"id={{{step}.{field}}}!", {step: {field: value}}) == f"id={value}!"


@given(st.lists(scalars, min_size=1, max_size=5), st.integers(0, 4))
def test_get_path_indexes_lists(items, i):
    got = get_path({"r": items}, f"r.{i}")
    assert got == (items[i] if i < len(items) else MISSING)


def test_stream_derivation_is_pinned():
    # a change here changes every trial of every seed: it must be deliberate
    assert derive_seed(0, "scenario", 1, "model") == 9036038194266546167


@given(st.integers(), st.lists(st.text(max_size=5), max_size=4))
def test_streams_are_independent(seed, ks):
    assert derive_seed(seed, *ks, "a") != derive_seed(seed, *ks, "b")
    assert stream(seed, *ks, "a").random() != stream(seed, *ks, "b").random()


@given(st.floats(0.01, 100), st.floats(1.0, 10))
def test_lognormal_median(median, spread):
    rng = stream(1, "lat")
    draws = sorted(lognormal(rng, median, median * spread) for _ in range(401))
    assert 0.75 * median < draws[200] < 1.33 * median


@given(st.dictionaries(keys, scalars, max_size=4))
def test_insert_then_read_round_trips(values):
    world = {}
    ins = Effect(insert="t", id_prefix="X-", set={k: f"${k}" for k in values})
    out = apply_effect(ins, values, world)
    row_id = out.result["id"]
    back = apply_effect(Effect(read="t", key="id"), {"id": row_id}, world)
    assert back.ok and all(back.result[k] == v for k, v in values.items() if k != "id")


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 150), st.integers(1, 6), st.integers(0, 50))
def test_every_chain_is_valid_and_solvable(length, turns, task):
    sc, _ = resolve_scenario("chain", {"length": length, "turns": turns, "task": task})
    assert sorted(s for t in sc.turns for s in t.steps) == sorted(s.id for s in sc.golden_path)
    g = run_golden(sc)
    assert not g.problems and len(g.world["reports"]) == 1
