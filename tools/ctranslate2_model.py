"""Reads a CTranslate2 model directory's `model.bin` into numpy arrays, with our own code (no
ctranslate2 import), so that the Whisper encoder's weights can be converted, trained against
and checked without trusting the library under test.

The layout (documented in docs/model-format.md, "CTranslate2 model.bin"), all little-endian:

    u32 binary_version            (this reader accepts 3 to 6)
    string spec_name              (u16 length including a trailing NUL, then the bytes)
    u32 spec_revision
    u32 variable_count
    variable_count x {
        string name               (e.g. "encoder/layer_0/self_attention/linear_0/weight")
        u8 rank, rank x u32 dims
        u8 dtype                  (0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16)
        u32 byte_count, byte_count bytes of data (row-major)
    }
    u32 alias_count, alias_count x { string alias, string target }

Scalars (rank 0) hold attributes such as "encoder/num_heads". int8 variables come with a
"<name>_scale" float variable (quantised models); this reader returns them as stored.
"""
import pathlib
import struct

import numpy as np

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
BFLOAT16 = 5


class FormatError(ValueError):
    pass


class _Reader:
    def __init__(self, data, path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(f"{self.path}: truncated at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def string(self):
        n = self.u16()
        raw = self.take(n)
        if n == 0 or raw[-1] != 0:
            raise FormatError(f"{self.path}: string at byte {self.pos - n} is not NUL-terminated")
        return raw[:-1].decode("utf-8")


def read_model_bin(path):
    """Returns (spec_name, revision, variables) where variables maps name -> numpy array
    (bfloat16 widened to float32 exactly); aliases are resolved to the arrays they name."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "model.bin"
    r = _Reader(path.read_bytes(), path)
    version = r.u32()
    if not 3 <= version <= 6:
        raise FormatError(f"{path}: binary version {version}, this reader knows 3 to 6")
    spec = r.string()
    revision = r.u32()
    count = r.u32()
    variables = {}
    for _ in range(count):
        name = r.string()
        rank = r.u8()
        shape = tuple(r.u32() for _ in range(rank))
        dtype = r.u8()
        nbytes = r.u32()
        raw = r.take(nbytes)
        if dtype == BFLOAT16:
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<"))
        else:
            raise FormatError(f"{path}: variable {name}: unknown dtype id {dtype}")
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise FormatError(f"{path}: variable {name}: {nbytes} bytes for shape {shape}")
        variables[name] = arr.reshape(shape)
    for _ in range(r.u32()):
        alias, target = r.string(), r.string()
        if target not in variables:
            raise FormatError(f"{path}: alias {alias} names missing variable {target}")
        variables[alias] = variables[target]
    if r.pos != len(r.data):
        raise FormatError(f"{path}: {len(r.data) - r.pos} bytes after the last alias")
    return spec, revision, variables


if __name__ == "__main__":
    import sys

    spec, rev, var = read_model_bin(sys.argv[1])
    print(f"{spec} revision {rev}: {len(var)} variables")
    for k, v in var.items():
        print(f"  {k} {v.dtype} {list(v.shape)}" + (f" = {v.item()}" if v.ndim == 0 else ""))
