"""Retention policy: how long footage and facts are kept, per camera and for uploads, read from the zones file.

Policy lives in the zones file, beside each camera's zones::

    retention:
      default: {retain_days: 30, retain_incident_days: 90, retain_facts_days: 730, cold_after_days: 7}
      uploads: {retain_days: 365}            # videos with no camera
      cameras:
        lobby: {retain_days: 14}             # fields not given come from `default` (raised where needed:
                                             # incidents' footage >= footage, facts >= both)

Without a ``retention`` section nothing is removed by age.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

# Footage of a video with incidents is kept this long when only retain_days is given: evidence outlives routine.
DEFAULT_INCIDENT_DAYS = 90
# Facts outlive footage: when not given, a year (or the footage's own retention, when that is longer).
DEFAULT_FACTS_DAYS = 365


class RetentionConfigError(ValueError):
    """The retention section cannot be used as written; the message says where and why."""


@dataclass(frozen=True)
class RetentionPolicy:
    retain_days: float | None = None  # footage; None keeps it
    retain_incident_days: float | None = None  # footage of a video with incidents
    retain_facts_days: float | None = None  # the video's row and every fact; None keeps them
    cold_after_days: float | None = None  # footage moves to the cold tier

    def completed(self, where: str) -> RetentionPolicy:
        """Defaults filled in and checked: incidents' footage and facts are never kept shorter than footage."""
        incident = self.retain_incident_days
        if incident is None and self.retain_days is not None:
            incident = max(self.retain_days, DEFAULT_INCIDENT_DAYS)
        facts = self.retain_facts_days
        if facts is None and incident is not None:
            facts = max(DEFAULT_FACTS_DAYS, incident)
        done = replace(self, retain_incident_days=incident, retain_facts_days=facts)
        order = [("retain_days", done.retain_days), ("retain_incident_days", done.retain_incident_days),
                 ("retain_facts_days", done.retain_facts_days)]
        for (shorter, a), (longer, b) in itertools.pairwise(order):
            if a is None and b is not None:
                raise RetentionConfigError(f"{where}: {shorter} keeps for good but {longer} is {b:g} days: facts "
                                           "outlive footage, and footage with incidents outlives the rest")
            if None not in (a, b) and b < a:
                implied = "" if (longer, shorter) != ("retain_incident_days", "retain_days") or \
                    self.retain_incident_days is not None else f" (the default for {longer}: set it)"
                raise RetentionConfigError(f"{where}: {longer} ({b:g}){implied} is shorter than {shorter} ({a:g}): "
                                           "facts outlive footage, and footage with incidents outlives the rest")
        cold, footage = done.cold_after_days, done.retain_days
        if cold is not None and footage is not None and cold >= footage:
            raise RetentionConfigError(f"{where}: cold_after_days ({done.cold_after_days:g}) must be shorter than "
                                       f"retain_days ({done.retain_days:g}), or the footage never goes cold")
        return done

    def footage_days(self, has_incidents: bool) -> float | None:
        return self.retain_incident_days if has_incidents else self.retain_days


@dataclass(frozen=True)
class RetentionConfig:
    default: RetentionPolicy = field(default_factory=RetentionPolicy)
    uploads: RetentionPolicy | None = None
    cameras: dict[str, RetentionPolicy] = field(default_factory=dict)

    def policy_for(self, camera: str | None) -> RetentionPolicy:
        if camera is None:
            return self.uploads or self.default
        return self.cameras.get(camera, self.default)

    @property
    def configured(self) -> bool:
        return any(p != RetentionPolicy() for p in [self.default, self.uploads or RetentionPolicy(),
                                                     *self.cameras.values()])


def _policy(spec, where: str, base: RetentionPolicy) -> RetentionPolicy:
    if spec is None:
        return base
    if not isinstance(spec, dict):
        raise RetentionConfigError(f"{where}: a mapping of retain_days, retain_incident_days, retain_facts_days "
                                   f"and cold_after_days, not {spec!r}")
    known = {f.name for f in fields(RetentionPolicy)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise RetentionConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    values = {}
    for name, days in spec.items():
        if days is not None and (isinstance(days, bool) or not isinstance(days, int | float) or days <= 0):
            raise RetentionConfigError(f"{where}: {name} is a number of days > 0 (or null to keep), not {days!r}")
        values[name] = days
    merged = replace(base, **values)
    if "retain_days" in values and values["retain_days"] is None:
        # footage kept for good here: what would remove footage with incidents, or the facts, first is not taken
        # from `default` (only what the section itself says)
        merged = replace(merged, retain_incident_days=values.get("retain_incident_days"),
                         retain_facts_days=values.get("retain_facts_days"))
    # what a section takes from `default` is raised where it must be: never keeping incidents' footage shorter
    # than footage, nor facts shorter than either
    longest = merged.retain_days
    if "retain_incident_days" not in values and None not in (merged.retain_incident_days, longest):
        merged = replace(merged, retain_incident_days=max(merged.retain_incident_days, longest))
    longest = max((d for d in (merged.retain_days, merged.retain_incident_days) if d is not None), default=None)
    if "retain_facts_days" not in values and None not in (merged.retain_facts_days, longest):
        merged = replace(merged, retain_facts_days=max(merged.retain_facts_days, longest))
    return merged


def parse_retention(document: dict | None, where: str = "retention") -> RetentionConfig:
    spec = (document or {}).get("retention")
    if spec is None:
        return RetentionConfig()
    if not isinstance(spec, dict):
        raise RetentionConfigError(f"{where}: `retention` holds default, uploads and cameras")
    unknown = sorted(set(spec) - {"default", "uploads", "cameras"})
    if unknown:
        raise RetentionConfigError(f"{where}: unknown retention key {unknown[0]!r} (known: default, uploads, cameras)")
    default = _policy(spec.get("default"), f"{where}: retention.default", RetentionPolicy())
    uploads = spec.get("uploads")
    cameras = spec.get("cameras") or {}
    if not isinstance(cameras, dict):
        raise RetentionConfigError(f"{where}: retention.cameras maps camera names to their settings")
    return RetentionConfig(
        default=default.completed(f"{where}: retention.default"),
        uploads=None if uploads is None else _policy(uploads, f"{where}: retention.uploads", default).completed(
            f"{where}: retention.uploads"),
        cameras={str(name): _policy(value, f"{where}: retention.cameras.{name}", default).completed(
            f"{where}: retention.cameras.{name}") for name, value in cameras.items()})


def load_retention(path: Path | None) -> RetentionConfig:
    """The retention section of the zones file (none: keep everything)."""
    if path is None or not Path(path).exists():
        return RetentionConfig()
    return parse_retention(yaml.safe_load(Path(path).read_text()) or {}, str(path))

