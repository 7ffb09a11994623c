"""Fault injection. base: what a fault is; api, results, requests: the built-in faults;
config: fault settings; triggers: when a fault fires; runtime: the faults of one trial;
errors: the exceptions a real client raises."""
