"""Profile references: what `--profile` and a sweep's `profiles:` entries mean.

  strong                          a preset, by name (`attrition list profiles`)
  path/to/profile.yaml            a profile file: `base:` a preset (default strong), then the
                                  profile fields it changes, a `name`, and free-form `fit:`
                                  notes (what `attrition calibrate` writes)
  {ref: ..., params: {...}, label: ...}
                                  in a sweep: a preset or a file, with overrides and a label

Each resolves to a base preset, the fields changed from it and a label. A TrialSpec holds the
base's name and the changes, so a trial replays wherever it is, even after the file moved or
changed; the label names the profile in records and tables.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .profiles import Profile, get_profile
from .registry import find, names
from .yamlio import ScenarioError, load_yaml, validation_problems

# Fields that document a profile without changing what it does: kept out of trial ids.
DOCUMENTATION = ("summary", "calibration")
FILE_ONLY = ("base", "fit")


class ProfileAxis(BaseModel):
    """One entry of a sweep's `profiles:` list, in its long form."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    ref: str = Field(description="a preset's name or a profile file")
    params: dict[str, Any] = Field(default_factory=dict, description="profile fields to change")
    label: str | None = Field(None, pattern=r"^[\w.+=,-]+$", description="the name tables show")


@dataclass(frozen=True)
class ResolvedProfile:
    base: str
    params: dict = field(default_factory=dict)
    label: str = ""

    def tags(self) -> dict:
        # a preset used as it is adds no tag: trial ids made before profile files stay the same
        return {"profile": self.label} if self.label != self.base else {}


def is_file_ref(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref


def load_profile_file(path: str | Path) -> ResolvedProfile:
    """A profile file, checked field by field; ScenarioError names the file, line and field."""
    data, lines = load_yaml(path)
    src = str(path)
    if not isinstance(data, dict):
        got = "nothing (the file is empty)" if data is None else f"a {type(data).__name__}"
        raise ScenarioError(src, [("", 1, "a profile file must be a YAML mapping (base, name, and the "
                                          f"fields it changes); got {got}")])
    base = data.get("base", "strong")
    if not isinstance(base, str) or find("profile", base) is None:
        raise ScenarioError(src, [("base", lines.get(("base",)), f"unknown preset {base!r}; presets: "
                                                                   f"{', '.join(names('profile'))}")])
    name = data.get("name", re.sub(r"[^\w.-]+", "-", Path(path).stem))
    changes = {k: v for k, v in data.items() if k not in FILE_ONLY}
    changes["name"] = name
    try:
        Profile.model_validate({**get_profile(base).model_dump(), **changes})
    except ValidationError as e:
        raise ScenarioError(src, validation_problems(e, Profile, lines)) from None
    if name in names("profile") and name != base:
        raise ScenarioError(src, [("name", lines.get(("name",)), f"{name!r} is another preset's name; "
                                                                  "give the profile its own name")])
    params = {k: v for k, v in changes.items() if k not in DOCUMENTATION and not (k == "name" and v == base)}
    return ResolvedProfile(base, params, name)


def resolve_profile(ref: str, params: dict | None = None, label: str | None = None, *,
                    label_params: bool = True) -> ResolvedProfile:
    """A preset or profile file, with `params` changed on top; its label, unless given, is the
    preset's or file's name, followed by the changed params when `label_params`. Raises
    ScenarioError for a bad file and KeyError (with the presets listed) for an unknown name;
    a bad override raises ProfileError naming the field."""
    if find("profile", ref) is not None:
        got = ResolvedProfile(ref, {}, ref)
    elif is_file_ref(ref) or Path(ref).is_file():
        if not Path(ref).is_file():
            raise KeyError(f"no profile file {ref!r} (and no preset of that name; known: "
                           f"{', '.join(names('profile'))})")
        got = load_profile_file(ref)
    else:
        raise KeyError(f"unknown profile {ref!r}; known: {', '.join(names('profile'))}, or give a profile "
                       "file (path/to/profile.yaml)")
    params = dict(params or {})
    merged = {**got.params, **params}
    get_profile(got.base, **merged)  # a bad override fails here, naming the field
    if label is None:
        label = got.label + "".join(f"+{k}={v}" for k, v in sorted(params.items())
                                    if k != "name" and label_params)
    return ResolvedProfile(got.base, merged, label)
