"""What both tiny models share on the way to and from the Hugging Face layout: a safetensors reader/writer
of our own (F32, F16, BF16) and the scatter of a compacted vocabulary back to the full one.

safetensors: 8-byte little-endian header length, JSON header, then the raw little-endian tensors.
"""
import json
import struct

import torch

_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}


def _raw(t, tdt):
    t = t.detach().to("cpu", tdt).contiguous()
    if tdt == torch.bfloat16:  # numpy has no bfloat16: write the same 16 bits as integers
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def save_safetensors(path, tensors, dtype="F16"):
    tdt = _DTYPES[dtype]
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        b = _raw(t, tdt)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, m in header.items():
        if name == "__metadata__":
            continue
        tdt = _DTYPES[m["dtype"]]
        a, b = m["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=tdt).reshape(m["shape"]) if b > a else \
            torch.zeros(m["shape"], dtype=tdt)
    return out


def scatter_rows(compact, row_ids, n_vocab):
    """The full-vocabulary table of a compacted one: row row_ids[i] = compact[i], every other row zero,
    so a token that never occurred in the corpus gets logit exactly 0."""
    full = torch.zeros(n_vocab, compact.shape[1])
    full[row_ids] = compact.detach().float()
    return full
