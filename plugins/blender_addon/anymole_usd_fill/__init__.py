"""AnyMoLe USD for Blender: fill the gaps of the active armature's action with the anymole-usd tool.

Dope Sheet / Action Editor > Sidebar (N) > AnyMoLe > "Fill gaps": the action's
keyed frames are written to a UsdSkel .usda shot, the ``anymole-usd``
executable set in the preferences fills every gap between keys (in its own
environment: nothing of torch or Warp is imported into Blender), and the
result comes back as a new action ``<action>_inbetween`` keyed on every frame
from the first key to the last. The original action is not modified; it gets
a fake user so it stays in the file once the armature plays the new one.
"""
import os
import shutil
import tempfile

import bpy
import numpy as np

from . import armature, tool, usda

bl_info = {
    "name": "AnyMoLe USD: fill animation gaps",
    "author": "anymole-usd",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "Dope Sheet / Action Editor > Sidebar > AnyMoLe",
    "description": "Fill the gaps between the keys of the active armature's action with the anymole-usd tool",
    "category": "Animation",
}


class AnyMoLePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    executable: bpy.props.StringProperty(
        name="anymole-usd executable", subtype="FILE_PATH", default="anymole-usd",
        description="The anymole-usd command of its own environment, e.g. /path/to/venv/bin/anymole-usd "
                    "(a command line with arguments works too)")
    prior: bpy.props.StringProperty(
        name="Prior", default="", description="In-betweening prior (empty: the tool's default, e.g. graph; "
                                              "interp, zero-velocity, video...)")
    extra: bpy.props.StringProperty(name="Extra arguments", default="",
                                    description="More `anymole-usd inbetween` options, e.g. --param blend=0.3")
    timeout: bpy.props.FloatProperty(name="Time limit (s)", default=1800.0, min=1.0,
                                     description="Give up on a run after this long")
    keep_files: bpy.props.BoolProperty(name="Keep exchange files", default=False,
                                       description="Keep the exported shot and the result layer (for debugging)")

    def draw(self, context):
        col = self.layout.column()
        for name in ("executable", "prior", "extra", "timeout", "keep_files"):
            col.prop(self, name)


def preferences(context):
    addon = context.preferences.addons.get(__package__)
    if addon is None:
        raise tool.ToolError("the AnyMoLe USD add-on is not enabled")
    return addon.preferences


class FillJob:
    """One run: the action exported, the tool's command, and the import of its result."""

    def __init__(self, context, prefs):
        obj = context.active_object
        self.obj, self.action, self.keep = obj, obj.animation_data.action, prefs.keep_files
        self.bones, parents = armature.bone_order(obj.data)
        self.tokens = usda.joint_tokens([b.name for b in self.bones], parents)
        frames = armature.keyed_frames(self.action)
        if len(frames) < 2:
            raise tool.ToolError(f"action {self.action.name!r} has fewer than two keyed frames")
        self.rest_local, bind = armature.rest_matrices(self.bones, parents)
        local = armature.sample_poses(context.scene, obj, self.bones, parents, frames)
        self.folder = tempfile.mkdtemp(prefix="anymole-usd-blender-")
        shot = os.path.join(self.folder, "shot.usda")
        render = context.scene.render
        usda.write_shot(shot, self.tokens, self.rest_local, bind, np.array(obj.matrix_world), frames, local,
                        render.fps / render.fps_base, context.scene.unit_settings.scale_length or 1.0)
        self.cmd = tool.command_line(prefs.executable, shot, os.path.join(self.folder, "shot.inbetween.usda"),
                                     prefs.prior, prefs.extra)

    def finish(self, report):
        """Import the tool's result as ``<action>_inbetween``; returns (action or None, message)."""
        try:
            entries = report.get("animations") or []
            if not entries:
                return None, f"nothing to fill: {self.action.name!r} has no gap between its keys"
            entry = entries[0]
            prim = (entry.get("result_prim") or entry.get("prim") or "/Rig/Anim").rsplit("/", 1)[-1]
            joints, times, t, q, s = usda.read_animation(report["output"], prim)
            if joints:
                where = {j: i for i, j in enumerate(joints)}
                missing = [tok for tok in self.tokens if tok not in where]
                if missing:
                    raise tool.ToolError(f"the result has no joint {missing[0]!r}")
                idx = [where[tok] for tok in self.tokens]
                t, q, s = t[:, idx], q[:, idx], s[:, idx]
            local = armature.local_from_samples(t, q, s)
            name = f"{self.action.name}_inbetween"
            action = armature.write_action(self.obj, name, self.bones, self.rest_local, times, local, self.action)
            self.action.use_fake_user = True  # still saved with the file once the armature plays the new action
            self.obj.animation_data.action = action
            gaps = len(entry.get("gaps") or [])
            return action, (f"{action.name}: {len(times)} frames keyed ({times[0]:g}-{times[-1]:g}), "
                            f"{gaps} gap(s) filled by {entry.get('prior', 'anymole-usd')}")
        finally:
            self.cleanup()

    def cleanup(self):
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)


class ANYMOLE_OT_fill_gaps(bpy.types.Operator):
    """Export the active armature's action to USD, fill its gaps with anymole-usd, import the result as a new
    action <action>_inbetween (the original is not modified)"""

    bl_idname = "anim.anymole_fill_gaps"
    bl_label = "Fill gaps"
    bl_options = {"REGISTER", "UNDO"}

    _job = None
    _run = None
    _timer = None

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return (obj is not None and obj.type == "ARMATURE" and obj.animation_data is not None
                and obj.animation_data.action is not None)

    def _fail(self, exc):
        self.report({"ERROR"}, str(exc))
        return {"CANCELLED"}

    def _done(self, report):
        action, message = self._job.finish(report)
        self.report({"INFO"} if action is not None else {"WARNING"}, message)
        return {"FINISHED"} if action is not None else {"CANCELLED"}

    def execute(self, context):  # scripts and background mode: run to the end
        try:
            prefs = preferences(context)
            self._job = FillJob(context, prefs)
            try:
                report = tool.run(self._job.cmd, timeout=prefs.timeout)
            except tool.ToolError:
                self._job.cleanup()
                raise
            return self._done(report)
        except (tool.ToolError, ValueError) as exc:
            return self._fail(exc)

    def invoke(self, context, event):  # the UI: Blender stays responsive while the tool runs
        if bpy.app.background:
            return self.execute(context)
        try:
            prefs = preferences(context)
            self._job = FillJob(context, prefs)
            self._run = tool.Background(self._job.cmd)
        except (tool.ToolError, ValueError) as exc:
            if self._job is not None:
                self._job.cleanup()
            return self._fail(exc)
        self._started, self._limit = _now(), prefs.timeout
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        context.workspace.status_text_set("AnyMoLe: filling gaps with anymole-usd... (Esc cancels)")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        late = _now() - self._started > self._limit
        if event.type == "ESC" or late:
            self._stop(context)
            self._run.cancel()
            self._job.cleanup()
            if late:
                return self._fail(tool.ToolError(f"anymole-usd took longer than {self._limit:g} s"))
            self.report({"WARNING"}, "AnyMoLe: cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER" or not self._run.done:
            return {"PASS_THROUGH"}
        self._stop(context)
        try:
            report = self._run.report()
        except tool.ToolError as exc:
            self._job.cleanup()
            return self._fail(exc)
        try:
            return self._done(report)
        except (tool.ToolError, ValueError) as exc:
            return self._fail(exc)

    def _stop(self, context):
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)


def _now():
    import time

    return time.monotonic()


class ANYMOLE_PT_fill_gaps(bpy.types.Panel):
    bl_label = "AnyMoLe in-between"
    bl_space_type = "DOPESHEET_EDITOR"
    bl_region_type = "UI"
    bl_category = "AnyMoLe"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "ARMATURE"

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        action = obj.animation_data.action if obj.animation_data else None
        if action is None:
            layout.label(text="The armature has no action", icon="INFO")
            return
        layout.label(text=action.name, icon="ACTION")
        frames = armature.keyed_frames(action)
        gaps = int(np.sum(np.diff(frames) > 1.0 + 1e-3)) if len(frames) > 1 else 0
        layout.label(text=f"{len(frames)} keyed frames, {gaps} gap(s)")
        try:
            layout.prop(preferences(context), "prior")
        except tool.ToolError:
            pass
        layout.operator(ANYMOLE_OT_fill_gaps.bl_idname, icon="IPO_BEZIER")
        if action.get(armature.MARKER):
            layout.label(text=f"in-between of {action[armature.MARKER]}", icon="CHECKMARK")


CLASSES = (AnyMoLePreferences, ANYMOLE_OT_fill_gaps, ANYMOLE_PT_fill_gaps)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
