"""The codeless ``AnyMoLeInbetweenAPI`` schema: registration and provenance records.

Registration must happen before the process first uses USD's schema registry,
so ``anymole_usd/__init__`` calls :func:`register` on import. Hosts that start
USD before Python (usdview, Omniverse) set ``PXR_PLUGINPATH_NAME`` to
:func:`schema_dir` instead.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

API_NAME = "AnyMoLeInbetweenAPI"
_registered = False


def schema_dir() -> str:
    """Folder holding plugInfo.json and generatedSchema.usda."""
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "schemas", "anymole")
    if os.path.isdir(installed):
        return installed
    # Source checkout / editable install: schemas/ sits beside anymole_usd/.
    return os.path.join(os.path.dirname(here), "schemas", "anymole")


def register() -> None:
    """Register the schema plugin with Plug (idempotent, cheap)."""
    global _registered
    if _registered:
        return
    from pxr import Plug

    Plug.Registry().RegisterPlugins(schema_dir())
    _registered = True


@dataclass
class Provenance:
    """What a result prim records about how it was made."""

    prior: str
    parameters: dict = field(default_factory=dict)
    tool_version: str = ""
    source_layer: str = ""
    source_prim: str = ""
    mode: str = "override"
    context_range: tuple[float, float] = (0.0, 0.0)
    keyframes: list[float] = field(default_factory=list)
    generated_times: list[float] = field(default_factory=list)
    seed: int = 0
    retargeted_bindings: list[str] = field(default_factory=list)
    tool: str = "inbetween"
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["context_range"] = list(self.context_range)
        d["generated_frames"] = len(self.generated_times)
        del d["generated_times"]
        return d


# attribute name -> (Sdf type name, Provenance field)
_FIELDS = {
    "anymole:prior": ("token", "prior"),
    "anymole:parameters": ("string", "parameters"),
    "anymole:toolVersion": ("string", "tool_version"),
    "anymole:sourceLayer": ("asset", "source_layer"),
    "anymole:sourcePrim": ("string", "source_prim"),
    "anymole:mode": ("token", "mode"),
    "anymole:contextRange": ("double2", "context_range"),
    "anymole:keyframes": ("double[]", "keyframes"),
    "anymole:generatedTimes": ("double[]", "generated_times"),
    "anymole:seed": ("int", "seed"),
    "anymole:retargetedBindings": ("string[]", "retargeted_bindings"),
    "anymole:tool": ("token", "tool"),
    "anymole:details": ("string", "details"),
}


def author_provenance(prim_spec, prov: Provenance) -> None:
    """Apply the API schema and write its attributes on an Sdf prim spec."""
    from pxr import Sdf

    ops = prim_spec.GetInfo("apiSchemas") if prim_spec.HasInfo("apiSchemas") else Sdf.TokenListOp()
    prepended = list(ops.prependedItems)
    if API_NAME not in prepended:
        ops.prependedItems = [API_NAME] + prepended
    prim_spec.SetInfo("apiSchemas", ops)
    for name, (type_name, attr) in _FIELDS.items():
        value = getattr(prov, attr)
        if attr in ("parameters", "details"):
            value = json.dumps(value, sort_keys=True, default=str)
        elif attr == "source_layer":
            value = Sdf.AssetPath(value)
        elif type_name.endswith("[]"):
            value = list(value)
        spec = prim_spec.attributes.get(name) or Sdf.AttributeSpec(
            prim_spec, name, Sdf.ValueTypeNames.Find(type_name), Sdf.VariabilityUniform
        )
        spec.default = tuple(value) if type_name == "double2" else value


def read_provenance(prim) -> Provenance | None:
    """Provenance of a composed prim, or None if the schema is not applied."""
    if not prim or API_NAME not in prim.GetAppliedSchemas():
        return None
    values = {}
    for name, (_, attr) in _FIELDS.items():
        a = prim.GetAttribute(name)
        v = a.Get() if a else None
        if v is None:
            continue
        if attr in ("parameters", "details"):
            try:
                v = json.loads(v)
            except ValueError:
                v = {"raw": v}
        elif attr == "source_layer":
            v = v.path
        elif attr == "context_range":
            v = (float(v[0]), float(v[1]))
        elif attr in ("keyframes", "generated_times"):
            v = [float(x) for x in v]
        elif attr == "retargeted_bindings":
            v = [str(x) for x in v]
        elif attr == "seed":
            v = int(v)
        else:
            v = str(v)
        values[attr] = v
    values.setdefault("prior", "")
    return Provenance(**values)


def retrieval_offered(details: dict) -> str | None:
    """What a run with ``--library``/``--reference`` offered the prior (from its provenance details), or None."""
    if details.get("library"):
        return str(details["library"])
    if details.get("references"):
        return ", ".join(r["file"] for r in details["references"])
    return None


def gap_source_lines(details: dict) -> list[str]:
    """Per gap, what filled it when references or a library were offered (library clip and frames)."""
    lines = []
    for g in details.get("gaps", []):
        what = g.get("filled_by", "?")
        if g.get("segments"):
            what += ": " + "; ".join(f"{s.get('clip') or os.path.basename(s.get('file', '?'))} frames "
                                     f"{s['source_frames'][0]}-{s['source_frames'][1]}" if s.get("source_frames")
                                     else str(s.get("clip")) for s in g["segments"])
        if g.get("retargeted_from"):
            what += f" (retargeted from skeleton {g['retargeted_from']})"
        lines.append(f"gap {g['start']:g}..{g['end']:g}: {what}")
    return lines
