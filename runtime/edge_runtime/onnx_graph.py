"""What an ONNX file reads from outside itself, and which operators it runs, read from its
protobuf bytes (the runtime does not depend on the `onnx` package).

Two questions the runtime must answer before onnxruntime opens a model:
- external data: a tensor may keep its bytes in another file named by a `location`. Older
  onnxruntime followed `../../etc/passwd` there, and 1.26 still did for sparse tensors (see
  runtime/pyproject.toml), so every reference is checked here, whatever the installed version;
- dynamic quantization: `DynamicQuantizeLinear` (and its fused forms) scale activations per
  tensor, i.e. per batch, so a row's logits depend on its batch-mates (pipeline.py).

Every place an ONNX TensorProto can sit is walked (onnx.proto: graph initializers, sparse
initializers, node attributes and their subgraphs, functions, training graphs). A repeated
singular field is walked every time it appears, so a parser that merges them (protobuf does)
cannot see a reference that this reader skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError

# ONNX operators whose activation scale is computed from the whole input tensor at run time.
DYNAMIC_QUANT_OPS = frozenset({"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM"})
MAX_DEPTH = 64  # nested subgraphs; onnxruntime's protobuf parser stops at 100 levels of messages

# Field numbers from onnx.proto, and the kind of message each one holds.
_MODEL = {7: "graph", 20: "training", 25: "function"}
_TRAINING = {1: "graph", 2: "graph"}
_FUNCTION = {7: "node", 11: "attribute"}
_GRAPH = {1: "node", 5: "tensor", 15: "sparse"}
_NODE = {5: "attribute"}
_ATTRIBUTE = {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"}
_SPARSE = {1: "tensor", 2: "tensor"}
_SCHEMA = {"model": _MODEL, "training": _TRAINING, "function": _FUNCTION, "graph": _GRAPH, "node": _NODE,
           "attribute": _ATTRIBUTE, "sparse": _SPARSE}
_NODE_OP_TYPE = 4
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


class _Malformed(Exception):
    pass


@dataclass(frozen=True)
class ExternalRef:
    tensor: str
    location: str
    offset: int
    length: int | None


@dataclass(frozen=True)
class GraphInfo:
    op_types: frozenset[str]
    external: tuple[ExternalRef, ...]

    @property
    def batch_dependent(self) -> bool:
        """True when activations are quantized with scales computed over the whole batch."""
        return bool(self.op_types & DYNAMIC_QUANT_OPS)


def scan(path: Path) -> GraphInfo:
    """Operators and external-data references of the ONNX file at `path`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {Path(path).name}: {exc.strerror}") from None
    if not data:
        raise BundleError(f"{Path(path).name} is empty, not an ONNX model")
    ops: set[str] = set()
    refs: list[ExternalRef] = []
    try:
        _walk(memoryview(data), "model", 0, ops, refs)  # slices of a memoryview: no copies
        return GraphInfo(frozenset(ops), tuple(refs))
    except _Malformed as exc:
        raise BundleError(f"{Path(path).name} is not a well-formed ONNX model: {exc}") from None


def _walk(buf: memoryview, kind: str, depth: int, ops: set[str], refs: list[ExternalRef]) -> None:
    if depth > MAX_DEPTH:
        raise _Malformed(f"messages nested more than {MAX_DEPTH} deep")
    if kind == "tensor":
        _tensor(buf, refs)
        return
    schema = _SCHEMA[kind]
    for number, wire, value in _fields(buf):
        if kind == "node" and number == _NODE_OP_TYPE:
            if wire != 2:
                raise _Malformed("node op_type is not a string")
            ops.add(bytes(value).decode("utf-8", "replace"))
        elif number in schema:
            if wire != 2:
                raise _Malformed(f"field {number} of a {kind} is not a message")
            _walk(value, schema[number], depth + 1, ops, refs)


def _tensor(buf: memoryview, refs: list[ExternalRef]) -> None:
    name = ""
    entries: list[dict[str, str]] = []
    external = False
    for number, wire, value in _fields(buf):
        if number == _TENSOR_NAME and wire == 2:
            name = bytes(value).decode("utf-8", "replace")
        elif number == _TENSOR_EXTERNAL:
            if wire != 2:
                raise _Malformed("external_data is not a message")
            entries.append(_entry(value))
        elif number == _TENSOR_LOCATION:
            if wire != 0:
                raise _Malformed("data_location is not a varint")
            external = external or value == _EXTERNAL
    if not entries and not external:
        return
    # onnxruntime reads external data when data_location says so; some code paths looked at the
    # entries alone. Either one makes it a reference that must be valid.
    info: dict[str, str] = {}
    for entry in entries:
        if entry["key"] in info:
            raise _Malformed(f"tensor {name!r} repeats external_data key {entry['key']!r}")
        info[entry["key"]] = entry["value"]
    if "location" not in info:
        raise _Malformed(f"tensor {name!r} has external data without a location")
    refs.append(ExternalRef(name, info["location"], _decimal(info.get("offset", "0"), name),
                            _decimal(info["length"], name) if "length" in info else None))


def _entry(buf: memoryview) -> dict[str, str]:
    found: dict[int, str] = {}
    for number, wire, value in _fields(buf):
        if number in (1, 2):
            if wire != 2 or number in found:
                raise _Malformed("malformed external_data entry")
            try:
                found[number] = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise _Malformed("external_data entry is not UTF-8") from None
    return {"key": found.get(1, ""), "value": found.get(2, "")}


def _decimal(text: str, tensor: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise _Malformed(f"tensor {tensor!r}: external data offset/length {text[:24]!r} is not a decimal number")
    return int(text)


def _fields(buf: memoryview):
    """(field number, wire type, value) of each field of one message; value is an int for varints,
    a memoryview for length-delimited fields, None for fixed-width ones."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        value: int | memoryview | None
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise _Malformed("a field runs past the end of its message")
            value, pos = buf[pos:pos + length], pos + length
        elif wire in (1, 5):
            value, pos = None, pos + (8 if wire == 1 else 4)
            if pos > end:
                raise _Malformed("a field runs past the end of its message")
        else:  # 3/4: protobuf groups, which ONNX never writes
            raise _Malformed(f"unsupported wire type {wire}")
        yield number, wire, value


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Malformed("truncated")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes")
