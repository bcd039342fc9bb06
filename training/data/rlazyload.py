"""Read character vectors from an R package's lazy-load data base (data/Rdata.rdx + .rdb).

r-cran-janeaustenr ships its novels only in that form. Reading it here keeps R itself (and its
~100 MB of dependencies) off the device machine: the format is R's XDR serialisation
("R Internals", section 1.8), of which this reader understands the parts data objects use.

Rdata.rdx: gzip, one serialised list(variables = list(name = c(offset, length)), ...).
Rdata.rdb: at each offset, a 4-byte big-endian length and a zlib stream of one serialised
object.
"""
import gzip
import struct
import zlib

# SEXP types (R Internals 1.1) and the pseudo-types used only in serialisation (serialize.c).
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP = 9, 10, 13, 14, 15, 16
DOTSXP, VECSXP, EXPRSXP, RAWSXP, S4SXP = 17, 19, 20, 24, 25
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP = 255, 254, 253, 252
MISSINGARG_SXP, BASENAMESPACE_SXP, EMPTYENV_SXP, BASEENV_SXP = 251, 250, 242, 241
NAMESPACESXP, PACKAGESXP, PERSISTSXP = 249, 248, 247
ALTREP_SXP, ATTRLISTSXP, ATTRLANGSXP = 238, 239, 240

NA_INTEGER = -2 ** 31


class RList(list):
    """A VECSXP; names (if any) in .names, other attributes in .attrs."""
    names = None
    attrs = None


class _Reader:
    def __init__(self, data):
        self.b = data
        self.i = 0
        self.refs = []

    def take(self, n):
        if self.i + n > len(self.b):
            raise ValueError("R serialisation: truncated")
        s = self.b[self.i:self.i + n]
        self.i += n
        return s

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def length(self):
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def header(self):
        if self.take(2) != b"X\n":
            raise ValueError("R serialisation: only the XDR format is read")
        version = self.int()
        self.int()  # writer's R version
        self.int()  # oldest reader's R version
        if version == 3:
            self.take(self.int())  # native encoding name
        elif version != 2:
            raise ValueError("R serialisation: unknown version %d" % version)

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if t == NILVALUE_SXP or t in (EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP,
                                      UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP):
            return None
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == PERSISTSXP:
            v = self.item()
            self.refs.append(v)
            return v
        if t == SYMSXP:
            name = self.item()
            self.refs.append(name)
            return name
        if t in (PACKAGESXP, NAMESPACESXP):
            v = self.item()
            self.refs.append(v)
            return v
        if t == ENVSXP:
            env = {}
            self.refs.append(env)
            self.int()  # locked
            self.item()  # enclosing environment
            frame = self.item()
            hashtab = self.item()
            self.item()  # attributes
            for part in (frame, hashtab):
                if isinstance(part, dict):
                    env.update(part)
                elif isinstance(part, list):
                    for p in part:
                        if isinstance(p, dict):
                            env.update(p)
            return env
        if t in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLISTSXP, ATTRLANGSXP):
            # A pairlist, read as a dict when tagged (attributes, frames), else a list.
            out_tags, out_vals = [], []
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                out_tags.append(tag)
                out_vals.append(self.item())
                flags = self.int()
                t = flags & 0xFF
                if t == NILVALUE_SXP:
                    break
                if t not in (LISTSXP, LANGSXP, ATTRLISTSXP, ATTRLANGSXP):
                    # An improper tail: read it and stop.
                    self.i -= 4
                    out_vals.append(self.item())
                    out_tags.append(None)
                    break
                has_attr = bool(flags & (1 << 9))
                has_tag = bool(flags & (1 << 10))
            if any(tg is not None for tg in out_tags):
                return {tg: v for tg, v in zip(out_tags, out_vals)}
            return out_vals
        if t == ALTREP_SXP:
            info = self.item()
            state = self.item()
            self.item()  # attributes
            cls = info[0] if isinstance(info, list) and info else None
            if cls == "compact_intseq" and isinstance(state, list) and len(state) == 3:
                n, start, step = (int(x) for x in state)
                return [start + k * step for k in range(n)]
            if cls == "compact_realseq" and isinstance(state, list) and len(state) == 3:
                n, start, step = state
                return [start + k * step for k in range(int(n))]
            if cls in ("wrap_string", "wrap_integer", "wrap_real", "wrap_logical") and \
                    isinstance(state, list):
                return state[0]
            if cls == "deferred_string" and isinstance(state, list):
                return [str(x) for x in state[0]]
            raise ValueError("R serialisation: unsupported ALTREP class %r" % cls)
        if t == CHARSXP:
            n = self.int()
            if n == -1:
                return None
            return self.take(n).decode("utf-8", errors="replace")
        if t in (LGLSXP, INTSXP):
            n = self.length()
            vals = list(struct.unpack(">%di" % n, self.take(4 * n)))
            vals = [None if v == NA_INTEGER else v for v in vals]
        elif t == REALSXP:
            n = self.length()
            vals = list(struct.unpack(">%dd" % n, self.take(8 * n)))
        elif t == CPLXSXP:
            n = self.length()
            raw = struct.unpack(">%dd" % (2 * n), self.take(16 * n))
            vals = [complex(raw[2 * k], raw[2 * k + 1]) for k in range(n)]
        elif t == STRSXP:
            n = self.length()
            vals = [self.item() for _ in range(n)]
        elif t in (VECSXP, EXPRSXP):
            n = self.length()
            vals = RList(self.item() for _ in range(n))
        elif t == RAWSXP:
            vals = self.take(self.length())
        elif t == S4SXP:
            vals = None
        else:
            raise ValueError("R serialisation: unsupported type %d" % t)
        if has_attr:
            attrs = self.item()
            if isinstance(vals, RList) and isinstance(attrs, dict):
                vals.names = attrs.get("names")
                vals.attrs = attrs
        return vals


def unserialize(data):
    r = _Reader(data)
    r.header()
    return r.item()


def read_lazyload(prefix):
    """{name: object} of an R lazy-load data base at prefix (prefix.rdx, prefix.rdb)."""
    with gzip.open(prefix + ".rdx", "rb") as f:
        index = unserialize(f.read())
    variables = index[index.names.index("variables")]
    out = {}
    with open(prefix + ".rdb", "rb") as f:
        db = f.read()
    for name, pos in zip(variables.names, variables):
        offset, length = int(pos[0]), int(pos[1])
        blob = db[offset:offset + length]
        (n,) = struct.unpack(">I", blob[:4])
        payload = zlib.decompress(blob[4:])
        if len(payload) != n:
            raise ValueError("R lazy-load: %s: size %d, expected %d" % (name, len(payload), n))
        out[name] = unserialize(payload)
    return out
