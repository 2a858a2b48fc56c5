"""glTF 2.0 documents through pygltflib: buffers, accessors as numpy, the node tree.

Every structural problem (bad header, missing buffer, accessor out of range,
cyclic or missing nodes) is an InputError naming the file and the offending
glTF object, so the importer can stay about skeletons and animation.
"""
from __future__ import annotations

import base64
import os
import struct
import warnings

import numpy as np

from anymole_usd.errors import InputError

COMPONENT_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32,
                    5126: np.float32}
TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


class GltfDocument:
    """A loaded glTF/GLB file with checked access to its binary data and node tree."""

    def __init__(self, path: str | os.PathLike):
        self.file = os.fspath(path)
        self.gltf = _load(self.file)
        self._buffers: dict[int, bytes] = {}
        self.parents = self._node_parents()

    def error(self, message: str) -> InputError:
        return InputError(message, file=self.file)

    # ----------------------------------------------------------------- data

    def buffer(self, index: int) -> bytes:
        if index in self._buffers:
            return self._buffers[index]
        buffers = self.gltf.buffers or []
        if not 0 <= index < len(buffers):
            raise self.error(f"buffer {index} does not exist")
        buf = buffers[index]
        if buf.uri is None:  # the GLB binary chunk
            data = self.gltf.binary_blob()
            if data is None:
                raise self.error(f"buffer {index} has no uri and the file has no binary chunk")
        elif buf.uri.startswith("data:"):
            try:
                data = base64.b64decode(buf.uri.split(",", 1)[1], validate=False)
            except (ValueError, IndexError):
                raise self.error(f"buffer {index}: malformed base64 data uri") from None
        else:
            ref = os.path.join(os.path.dirname(os.path.abspath(self.file)), buf.uri)
            if not os.path.isfile(ref):
                raise self.error(f"buffer {index}: external file {buf.uri!r} not found")
            with open(ref, "rb") as fh:
                data = fh.read()
        if buf.byteLength is not None and len(data) < buf.byteLength:
            raise self.error(f"buffer {index} holds {len(data)} bytes but declares {buf.byteLength} (truncated?)")
        self._buffers[index] = bytes(data)
        return self._buffers[index]

    def accessor(self, index: int | None, what: str = "accessor") -> np.ndarray:
        """Accessor data as (count, components) float64/int64 (normalised ints mapped to [0,1]/[-1,1])."""
        accessors = self.gltf.accessors or []
        if index is None or not 0 <= index < len(accessors):
            raise self.error(f"{what}: accessor {index} does not exist")
        acc = accessors[index]
        if acc.componentType not in COMPONENT_DTYPES or acc.type not in TYPE_SIZES:
            raise self.error(f"accessor {index}: unsupported componentType {acc.componentType} / type {acc.type}")
        dtype = np.dtype(COMPONENT_DTYPES[acc.componentType]).newbyteorder("<")
        ncomp = TYPE_SIZES[acc.type]
        count = int(acc.count or 0)
        if acc.bufferView is None:
            out = np.zeros((count, ncomp), dtype=dtype)
        else:
            out = self._read_view(acc.bufferView, acc.byteOffset or 0, dtype, ncomp, count, f"accessor {index}")
        if acc.sparse is not None and acc.sparse.count:
            out = out.copy()
            sp = acc.sparse
            idx_dtype = np.dtype(COMPONENT_DTYPES[sp.indices.componentType]).newbyteorder("<")
            idx = self._read_view(sp.indices.bufferView, sp.indices.byteOffset or 0, idx_dtype, 1, sp.count,
                                  f"accessor {index} sparse indices")[:, 0].astype(np.int64)
            vals = self._read_view(sp.values.bufferView, sp.values.byteOffset or 0, dtype, ncomp, sp.count,
                                   f"accessor {index} sparse values")
            if idx.size and (idx.min() < 0 or idx.max() >= count):
                raise self.error(f"accessor {index}: sparse index out of range")
            out[idx] = vals
        if acc.normalized and dtype.kind in "iu":
            info = np.iinfo(dtype)
            return np.maximum(out.astype(np.float64) / info.max, -1.0)
        return out.astype(np.float64 if dtype.kind == "f" else np.int64)

    def _read_view(self, view_index: int, offset: int, dtype: np.dtype, ncomp: int, count: int,
                   what: str) -> np.ndarray:
        views = self.gltf.bufferViews or []
        if not 0 <= view_index < len(views):
            raise self.error(f"{what}: bufferView {view_index} does not exist")
        view = views[view_index]
        data = self.buffer(view.buffer)
        elem = dtype.itemsize * ncomp
        stride = view.byteStride or elem
        start = (view.byteOffset or 0) + offset
        need = start + (stride * (count - 1) + elem if count else 0)
        view_end = (view.byteOffset or 0) + view.byteLength
        if need > min(len(data), view_end):
            raise self.error(f"{what} reads past the end of bufferView {view_index} (truncated?)")
        if count == 0:
            return np.zeros((0, ncomp), dtype=dtype)
        raw = np.frombuffer(data, dtype=np.uint8, count=need - start, offset=start)
        rows = np.lib.stride_tricks.as_strided(raw, shape=(count, elem), strides=(stride, 1))
        return np.ascontiguousarray(rows).view(dtype).reshape(count, ncomp)

    # ----------------------------------------------------------------- nodes

    def _node_parents(self) -> np.ndarray:
        nodes = self.gltf.nodes or []
        parents = np.full(len(nodes), -1, dtype=np.int64)
        for i, node in enumerate(nodes):
            for c in node.children or []:
                if not 0 <= c < len(nodes):
                    raise self.error(f"node {i} ({node.name or 'unnamed'}) lists child {c}, which does not exist")
                if c == i or parents[c] >= 0:
                    raise self.error(f"node {c} ({nodes[c].name or 'unnamed'}) has more than one parent "
                                     "or is its own child (cyclic node hierarchy)")
                parents[c] = i
        # Every node must reach a root: a loop of children has no root at all.
        for i in range(len(nodes)):
            seen, n = 0, i
            while n >= 0:
                n = parents[n]
                seen += 1
                if seen > len(nodes):
                    raise self.error(f"cyclic node hierarchy through node {i} ({nodes[i].name or 'unnamed'})")
        return parents

    def node(self, index: int, what: str = "node"):
        nodes = self.gltf.nodes or []
        if index is None or not 0 <= index < len(nodes):
            raise self.error(f"{what}: node {index} does not exist")
        return nodes[index]

    def node_name(self, index: int) -> str:
        return self.gltf.nodes[index].name or f"node{index}"

    def ancestors(self, index: int) -> list[int]:
        """Node indices from the scene root down to ``index`` (inclusive)."""
        chain = []
        while index >= 0:
            chain.append(int(index))
            index = self.parents[index]
        return chain[::-1]

    def static_trs(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(translation, rotation xyzw, scale, matrix or None) of a node; matrix as row-vector 4x4."""
        node = self.gltf.nodes[index]
        t = np.asarray(node.translation if node.translation is not None else [0, 0, 0], dtype=np.float64)
        r = np.asarray(node.rotation if node.rotation is not None else [0, 0, 0, 1], dtype=np.float64)
        s = np.asarray(node.scale if node.scale is not None else [1, 1, 1], dtype=np.float64)
        m = None
        if node.matrix is not None and not np.allclose(node.matrix, np.eye(4).reshape(-1)):
            # glTF matrices are column-major column-vector: read in order they are row-vector rows.
            m = np.asarray(node.matrix, dtype=np.float64).reshape(4, 4)
        return t, r, s, m


def _load(file: str):
    import pygltflib

    if not os.path.isfile(file):
        raise InputError("no such file", file=file)
    ext = os.path.splitext(file)[1].lower()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if ext == ".glb":
                with open(file, "rb") as fh:
                    data = fh.read()
                _check_glb(data, file)
                gltf = pygltflib.GLTF2.load_from_bytes(data)
            else:
                gltf = pygltflib.GLTF2.load_json(file)
    except InputError:
        raise
    except Exception as exc:  # pygltflib raises a zoo of types on bad files
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise InputError(f"not a valid glTF {'binary ' if ext == '.glb' else ''}file ({reason})", file=file) from None
    if gltf is None:
        raise InputError("not a valid glTF file (no JSON chunk)", file=file)
    return gltf


def _check_glb(data: bytes, file: str) -> None:
    if len(data) < 20 or data[:4] != b"glTF":
        raise InputError("not a GLB file (bad header)", file=file)
    length = struct.unpack("<I", data[8:12])[0]
    if length > len(data):
        raise InputError(f"GLB header declares {length} bytes but the file has {len(data)} (truncated?)", file=file)
    index = 12
    while index < length:
        if index + 8 > length:
            raise InputError(f"GLB chunk header at byte {index} is cut off (truncated?)", file=file)
        chunk_length = struct.unpack("<I", data[index:index + 4])[0]
        if index + 8 + chunk_length > length:
            raise InputError(f"GLB chunk at byte {index} runs past the end of the file (truncated?)", file=file)
        index += 8 + chunk_length
