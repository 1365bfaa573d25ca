"""Writes tests/data/controlvector/foreign.gguf: a control vector as another tool might write it,
for the reader: GGUF v3 with general.alignment 64, metadata of every type (strings, integers, floats,
a bool, arrays of u8 and of strings, an array of arrays), a tensor that is not a direction (F16, 2-D),
and directions for layers 1 and 3 only (values 0.5 * layer + 0.01 * i), out of order.

    /usr/bin/python3 tools/reference/make_control_vector_fixture.py tests/data/controlvector/foreign.gguf

Written from the GGUF specification (ggml's docs/gguf.md), independently of patchscope.h's writer.
"""
import struct
import sys

import numpy as np

ALIGN = 64


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, payload):
    return s(key) + struct.pack("<I", typ) + payload


def main():
    meta = [
        kv("general.architecture", 8, s("controlvector")),
        kv("general.name", 8, s("a foreign control vector")),
        kv("general.alignment", 4, struct.pack("<I", ALIGN)),
        kv("controlvector.model_hint", 8, s("gpt2")),
        kv("controlvector.layer_count", 5, struct.pack("<i", 2)),
        kv("x.f64", 12, struct.pack("<d", 3.25)),
        kv("x.bool", 7, b"\x01"),
        kv("x.u64", 10, struct.pack("<Q", 1 << 40)),
        kv("x.bytes", 9, struct.pack("<IQ", 0, 3) + b"\x01\x02\x03"),
        kv("x.strings", 9, struct.pack("<IQ", 8, 2) + s("one") + s("two")),
        kv("x.nested", 9, struct.pack("<IQ", 9, 2) + struct.pack("<IQ", 5, 2) + struct.pack("<ii", 1, 2) +
           struct.pack("<IQ", 5, 1) + struct.pack("<i", 3)),
    ]
    tensors = [("direction.3", np.array([0.5 * 3 + 0.01 * i for i in range(32)], dtype="<f4"), 0),
               ("extra", np.zeros((2, 3), dtype="<f2"), 1),
               ("direction.1", np.array([0.5 * 1 + 0.01 * i for i in range(32)], dtype="<f4"), 0)]
    infos, data = b"", b""
    for name, a, typ in tensors:
        infos += s(name) + struct.pack("<I", a.ndim) + b"".join(struct.pack("<Q", d) for d in reversed(a.shape))
        infos += struct.pack("<IQ", typ, len(data))
        data += a.tobytes()
        data += b"\0" * (-len(data) % ALIGN)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + infos
    head += b"\0" * (-len(head) % ALIGN)
    with open(sys.argv[1], "wb") as f:
        f.write(head + data)


if __name__ == "__main__":
    main()
