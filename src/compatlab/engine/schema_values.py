"""Deterministic JSON values that are valid against a client-supplied JSON Schema."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from urllib.parse import unquote

MAX_DEPTH = 6  # deeper: no optional properties, arrays at minItems, non-$ref branches first
MAX_STEPS = 5_000  # total generation calls; stops runaway recursion and combinatorial blow-ups
UNSUPPORTED = {"if", "contains", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies",
               "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"}
ANNOTATIONS = {"title", "description", "default", "examples", "$defs", "definitions", "$schema", "$id",
               "$comment", "$anchor", "deprecated", "readOnly", "writeOnly", "strict"}
MIN_KEYS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
MAX_KEYS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
SAMPLES = ["abc", "ABC", "abc123", "ABC123", "A1B2C3", "12345", "12345-6789", "555-1234", "555-123-4567",
           "5551234567", "+15551234567", "1", "a", "A", "a1", "a_b", "a-b", "Hello World", "en-US", "US",
           "USD", "2024-01-15", "10:30", "v1.0.0", "1.0.0", "#ff0000", "lab@example.com", "https://example.com",
           ""]  # extra candidates when a `pattern` must match
_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)"
_OCTET, _LABEL = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)", r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
FORMATS = {  # the formats we generate; `valid` checks them like a format-asserting client would
    "date": _DATE, "date-time": f"{_DATE}[Tt]{_TIME}", "time": _TIME, "email": r"[^@\s]+@[^@\s]+",
    "uri": r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*", "uuid": r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}",
    "ipv4": rf"({_OCTET}\.){{3}}{_OCTET}", "hostname": rf"{_LABEL}(\.{_LABEL})*"}
TYPE_KEYS = {"object": ("properties", "required", "additionalProperties", "patternProperties", "minProperties"),
             "array": ("items", "prefixItems", "minItems", "maxItems", "uniqueItems"),
             "string": ("minLength", "maxLength", "pattern", "format"),
             "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")}


class UnsupportedSchema(ValueError):
    """The schema cannot be satisfied by the generator (message says which keyword/path)."""


def value_for_schema(schema: dict | bool, *, seed: int, words: list[str] | None = None) -> object:
    """A JSON value valid against `schema`, a pure function of (schema, seed, words)."""
    gen = _Generator(schema, seed, words)
    try:
        value = gen.gen(schema, [], 0, 0)
        ok = gen.valid(schema, value)
    except UnsupportedSchema:
        raise
    except RecursionError:
        raise UnsupportedSchema("schema recursion without end (e.g. a required property refers to itself)") from None
    # ArithmeticError: bounds like 1e400 (Python's json reads it as inf) overflow int()
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError, AttributeError, re.error) as e:
        raise UnsupportedSchema(f"invalid or unsupported schema: {e!r}") from e
    if not ok:  # a merge approximation went wrong: refuse rather than return an invalid value
        raise UnsupportedSchema("could not produce a value satisfying this combination of keywords")
    try:  # NaN and Infinity are not JSON: a schema that only they satisfy cannot be answered
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise UnsupportedSchema("only NaN or Infinity would satisfy this schema, and they are not JSON") from None
    return value


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


TYPE_CHECKS = {"string": lambda v: isinstance(v, str), "number": _is_num,
               "integer": lambda v: _is_num(v) and (isinstance(v, int) or v.is_integer()),
               "boolean": lambda v: isinstance(v, bool), "null": lambda v: v is None,
               "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list)}


def _key(v: object) -> str:
    """Canonical form for JSON Schema equality: 1 == 1.0, but true != 1."""
    def norm(x: object) -> object:
        if isinstance(x, float) and x.is_integer():
            return int(x)
        if isinstance(x, (list, dict)):
            return {k: norm(y) for k, y in x.items()} if isinstance(x, dict) else [norm(y) for y in x]
        return x
    return json.dumps(norm(v), sort_keys=True)


def _types(t: str | list[str]) -> list[str]:
    return [t] if isinstance(t, str) else list(t)


def _where(path: list) -> str:
    return "$" + "".join(f"/{p}" for p in path)


def _slug(path: list) -> str:
    name = next((p for p in reversed(path) if isinstance(p, str)), "value")
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "value"


def _bounds(s: dict) -> tuple:
    """(low, low_exclusive, high, high_exclusive); draft-4 boolean exclusives are accepted too."""
    lo, hi, em, eM = s.get("minimum"), s.get("maximum"), s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    lo_x, hi_x = em is True, eM is True
    if _is_num(em) and (lo is None or em >= lo):
        lo, lo_x = em, True
    if _is_num(eM) and (hi is None or eM <= hi):
        hi, hi_x = eM, True
    return lo, lo_x, hi, hi_x


def _num_ok(s: dict, v: float) -> bool:
    lo, lo_x, hi, hi_x = _bounds(s)
    if not math.isfinite(v):  # NaN/inf have no JSON form
        return False
    if lo is not None and (v < lo or lo_x and v == lo) or hi is not None and (v > hi or hi_x and v == hi):
        return False
    m = s.get("multipleOf")
    if isinstance(m, float):  # same float arithmetic as the jsonschema library (0.3 / 0.1 fails there)
        return math.isfinite(v / m) and int(v / m) == v / m
    return m is None or v % m == 0


def _window(a: float | None, b: float | None) -> tuple[float, float]:
    """A small readable range inside [a, b], preferring 1..100."""
    lo, hi = (1 if a is None else max(a, 1)), (100 if b is None else min(b, 100))
    if lo <= hi:
        return lo, hi
    if b is not None and b < 1:
        return (b - 99 if a is None else max(a, b - 99)), b
    return a, (a + 99 if b is None else min(b, a + 99))


def _fit(c: str, lo: int, hi: int | None, patterned: bool) -> str | None:
    """Truncate or pad to the length bounds (repeating the last character keeps patterns like \\d+)."""
    c = c if hi is None else c[:hi]
    if len(c) < lo:
        c = (c + (c[-1:] or "x") * lo)[:lo] if patterned else "-".join([c or "x"] * (lo // (len(c) + 1) + 1))[:lo]
    return c if len(c) >= lo and (hi is None or len(c) <= hi) else None


def _format(fmt: str | None, rng: random.Random, word: str) -> str | None:
    d, h = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", f"{rng.getrandbits(128):032x}"
    t = f"{rng.randint(8, 18):02d}:{rng.choice((0, 15, 30, 45)):02d}:00Z"
    return {"date": d, "date-time": f"{d}T{t}", "time": t, "email": f"{word}@example.com",
            "uri": f"https://example.com/{word}", "hostname": f"{word}.example.com",
            "uuid": f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}",
            "ipv4": f"192.0.2.{rng.randint(1, 254)}"}.get(fmt or "")


class _Generator:
    """Generation and validation sharing the root schema (for $ref), the seed and the words."""

    def __init__(self, root: dict | bool, seed: int, words: list[str] | None) -> None:
        self.root, self.seed, self.steps = root, seed, 0
        self.words = [w for w in (words or []) if isinstance(w, str) and w]

    def rng(self, path: list, alt: int) -> random.Random:
        digest = hashlib.sha256(json.dumps([self.seed, alt, path]).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def resolve(self, ref: str) -> object:
        if ref != "#" and not ref.startswith("#/"):
            raise UnsupportedSchema(f"only local '#/...' $ref is supported, got {ref!r}")
        node = self.root
        try:
            for part in ref[2:].split("/") if ref != "#" else []:
                part = unquote(part).replace("~1", "/").replace("~0", "~")
                node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise UnsupportedSchema(f"cannot resolve $ref {ref!r}") from None
        return node

    def deref(self, s: object) -> object:
        for _ in range(50):
            if not isinstance(s, dict) or "$ref" not in s:
                return s
            rest = {k: x for k, x in s.items() if k != "$ref"}
            target = self.resolve(s["$ref"])
            s = self.merge(target, rest) if set(rest) - ANNOTATIONS else target
        raise UnsupportedSchema("$ref chain too long or cyclic")

    def merge(self, a: object, b: object) -> object:
        """A schema for allOf([a, b]) in the simple cases; raises on conflicts it cannot express."""
        a, b = self.deref(a), self.deref(b)
        if not isinstance(a, dict) or not isinstance(b, dict):
            return b if a is True else a if b is True else False
        out = dict(a)
        for k, y in b.items():
            x = out.get(k)
            if k not in out or k in ANNOTATIONS or _key(x) == _key(y):
                out.setdefault(k, y)
            elif k in ("properties", "patternProperties"):
                out[k] = {**x, **{p: {"allOf": [x[p], q]} if p in x else q for p, q in y.items()}}
            elif k == "type":
                xs, ys = _types(x), _types(y)
                out[k] = [t for t in xs if t in ys or t == "integer" and "number" in ys]
                out[k] += [t for t in ys if t == "integer" and "number" in xs and t not in out[k]]
                if not out[k]:
                    raise UnsupportedSchema(f"allOf types {x} and {y} do not overlap")
            elif k in MIN_KEYS + MAX_KEYS and _is_num(x) and _is_num(y):
                out[k] = max(x, y) if k in MIN_KEYS else min(x, y)
            elif k in ("anyOf", "oneOf"):  # exact: a value matches one pair iff it matches one of each
                out[k] = [self.merge_or_false(p, q) for p in x for q in y]
            elif k in ("items", "additionalProperties", "additionalItems"):
                out[k] = self.merge(x, y)
            elif k in ("required", "allOf", "enum", "not", "uniqueItems"):
                out[k] = {"required": lambda: list(dict.fromkeys([*x, *y])), "allOf": lambda: [*x, *y],
                          "enum": lambda: [e for e in x if _key(e) in map(_key, y)],
                          "not": lambda: {"anyOf": [x, y]}, "uniqueItems": lambda: bool(x or y)}[k]()
            else:
                raise UnsupportedSchema(f"cannot merge conflicting '{k}' values in allOf")
        return out

    def merge_or_false(self, a: object, b: object) -> object:
        try:
            return self.merge(a, b)
        except UnsupportedSchema:  # unsatisfiable (or inexpressible) pair: a branch that matches nothing
            return False

    def prop_schema(self, s: dict, k: str) -> object:
        """What a property value must satisfy: its declaration and matching patterns, else additional."""
        subs = [s["properties"][k]] if k in s.get("properties", {}) else []
        subs += [p for pat, p in s.get("patternProperties", {}).items() if re.search(pat, k)]
        return (subs[0] if len(subs) == 1 else {"allOf": subs}) if subs else s.get("additionalProperties", True)

    def valid(self, s: object, v: object, level: int = 0) -> bool:
        """A validator for exactly the subset the generator supports (unknown formats are annotations)."""
        if isinstance(s, bool):
            return s
        if level > 200:
            raise UnsupportedSchema("$ref recursion without progress")
        if bad := UNSUPPORTED.intersection(s):
            raise UnsupportedSchema(f"unsupported keyword(s) {sorted(bad)}")
        ok = lambda sub, x=v: self.valid(sub, x, level + 1)  # noqa: E731
        if ("$ref" in s and not ok(self.resolve(s["$ref"]))
                or "type" in s and not any(TYPE_CHECKS[t](v) for t in _types(s["type"]))
                or "const" in s and _key(s["const"]) != _key(v)
                or "enum" in s and _key(v) not in map(_key, s["enum"])
                or not all(map(ok, s.get("allOf", []))) or "anyOf" in s and not any(map(ok, s["anyOf"]))
                or "oneOf" in s and sum(map(ok, s["oneOf"])) != 1 or "not" in s and ok(s["not"])):
            return False
        if _is_num(v):
            return _num_ok(s, v)
        if isinstance(v, str):
            return (s.get("minLength", 0) <= len(v) <= s.get("maxLength", math.inf)
                    and ("pattern" not in s or re.search(s["pattern"], v) is not None)
                    and re.fullmatch(FORMATS.get(s.get("format"), ".*"), v, re.S) is not None)
        if isinstance(v, list):
            prefix, items = _tuple_items(s)
            return (s.get("minItems", 0) <= len(v) <= s.get("maxItems", math.inf)
                    and not (s.get("uniqueItems") and len(set(map(_key, v))) != len(v))
                    and all(ok(prefix[i] if i < len(prefix) else items, x) for i, x in enumerate(v)))
        if isinstance(v, dict):
            return (all(k in v for k in s.get("required", []))
                    and s.get("minProperties", 0) <= len(v) <= s.get("maxProperties", math.inf)
                    and all(ok(self.prop_schema(s, k), x) for k, x in v.items()))
        return True

    def gen(self, s: object, path: list, depth: int, alt: int) -> object:
        """A value for `s`; `alt` > 0 asks for a different candidate (uniqueItems, oneOf, not)."""
        self.steps += 1
        where = _where(path)
        if self.steps > MAX_STEPS:
            raise UnsupportedSchema(f"schema too complex or infinitely recursive at {where}")
        s = {} if s is True else s
        if not isinstance(s, dict):
            raise UnsupportedSchema(f"'false' schema (nothing is valid) at {where}")
        if bad := UNSUPPORTED.intersection(s):
            raise UnsupportedSchema(f"unsupported keyword(s) {sorted(bad)} at {where}")
        if "$ref" in s:
            return self.gen(self.deref(s), path, depth, alt)
        if "allOf" in s:
            merged: object = {k: x for k, x in s.items() if k != "allOf"}
            for member in s["allOf"]:
                merged = self.merge(merged, member)
            return self.gen(merged, path, depth, alt)
        rng = self.rng(path, 0)  # alt-independent, so `(r + alt) % n` cycles through every option
        if "const" in s or "enum" in s:
            opts = [e for e in ([s["const"]] if "const" in s else s["enum"]) if self.valid(s, e)]
            if not opts:
                raise UnsupportedSchema(f"no const/enum value satisfies the rest of the schema at {where}")
            return json.loads(json.dumps(opts[(rng.randrange(len(opts)) + alt) % len(opts)]))
        if "anyOf" in s or "oneOf" in s:
            return self.branches(s, "anyOf" if "anyOf" in s else "oneOf", path, depth, alt, rng)
        if "not" in s:
            rest = {k: x for k, x in s.items() if k != "not"}
            for sub in [rest] + ([{**rest, "type": t} for t in TYPE_CHECKS] if "type" not in rest else []):
                for a in range(alt, alt + 3):
                    if self.valid(s, v := self.gen(sub, path, depth, a)):
                        return v
            raise UnsupportedSchema(f"cannot satisfy 'not' at {where}")
        inferred = [t for t, keys in TYPE_KEYS.items() if any(k in s for k in keys)][:1] or ["string"]
        error = UnsupportedSchema(f"empty 'type' list at {where}")
        for t in sorted(_types(s["type"]) if "type" in s else inferred, key=lambda t: t == "null"):
            try:  # null is valid but least useful, so it goes last
                if t in ("object", "array", "string", "number", "integer"):
                    return getattr(self, f"build_{t}")(s, path, depth, alt, rng)
                if t in ("boolean", "null"):
                    return [True, False][(rng.randrange(2) + alt) % 2] if t == "boolean" else None
                raise UnsupportedSchema(f"unknown type {t!r} at {where}")
            except UnsupportedSchema as e:
                error = e
        raise error

    def branches(self, s: dict, key: str, path: list, depth: int, alt: int, rng: random.Random) -> object:
        """anyOf/oneOf: try branches (merged with the siblings) until the whole node validates."""
        rest, opts = {k: x for k, x in s.items() if k != key}, list(s[key])
        rng.shuffle(opts)
        if depth >= MAX_DEPTH:  # deep down, prefer branches that do not recurse
            opts.sort(key=lambda b: "$ref" in json.dumps(b))
        for branch in opts:
            try:
                sub = self.merge(rest, branch)
                for a in range(alt, alt + 4):
                    if self.valid(s, v := self.gen(sub, path, depth, a)):  # oneOf: exactly one branch
                        return v
            except UnsupportedSchema:
                continue
        raise UnsupportedSchema(f"no '{key}' branch can be satisfied at {_where(path)}")

    def build_object(self, s: dict, path: list, depth: int, alt: int, rng: random.Random) -> dict:
        required = list(dict.fromkeys(s.get("required", [])))
        need, most = s.get("minProperties", 0), s.get("maxProperties", math.inf)
        if len(required) > most:
            raise UnsupportedSchema(f"more required properties than maxProperties at {_where(path)}")
        out = {k: self.gen(self.prop_schema(s, k), path + [k], depth + 1, alt) for k in required}
        for k in [k for k in s.get("properties", {}) if k not in out]:
            if len(out) >= most or (depth > MAX_DEPTH and len(out) >= need):
                break
            try:  # optional: skip what we cannot (or must not, e.g. `false`) produce
                out[k] = self.gen(self.prop_schema(s, k), path + [k], depth + 1, alt)
            except UnsupportedSchema:
                pass
        for n in range(1, need + 1):  # invent keys; patternProperties/additionalProperties govern them
            if len(out) < need and f"field{n}" not in out:
                out[f"field{n}"] = self.gen(self.prop_schema(s, f"field{n}"), path + [f"field{n}"], depth + 1, alt)
        return out

    def build_array(self, s: dict, path: list, depth: int, alt: int, rng: random.Random) -> list:
        prefix, items = _tuple_items(s)
        least = s.get("minItems", 0)
        n = max(least, len(prefix) or 1) if depth <= MAX_DEPTH else least
        n = min(n, s.get("maxItems", n), len(prefix) if items is False else n)
        if n < least:
            raise UnsupportedSchema(f"minItems cannot be reached (items is false) at {_where(path)}")
        unique, out, seen = s.get("uniqueItems", False), [], set()
        for i in range(n):
            for a in range(alt, alt + (12 if unique else 1)):
                v = self.gen(prefix[i] if i < len(prefix) else items, path + [i], depth + 1, a)
                if not unique or _key(v) not in seen:
                    break
            else:
                raise UnsupportedSchema(f"cannot produce {n} unique items at {_where(path)}")
            seen.add(_key(v))
            out.append(v)
        return out

    def build_string(self, s: dict, path: list, depth: int, alt: int, rng: random.Random) -> str:
        slug, patterned = _slug(path), "pattern" in s
        if s.get("minLength", 0) > 10_000:
            raise UnsupportedSchema(f"minLength too large at {_where(path)}")
        pool = self.words + [f"lab-{slug}"]
        shift = alt + (path[-1] if path and isinstance(path[-1], int) else 0)  # vary array items
        first = pool[shift] if shift < len(pool) else f"lab-{slug}-{shift - len(pool) + 2}"
        fmt = _format(s.get("format"), self.rng(path, alt), _slug([first]))
        for c in ([fmt] if fmt else []) + [first] + pool + (SAMPLES if patterned else []):
            c = _fit(c, s.get("minLength", 0), s.get("maxLength"), patterned)
            if c is not None and self.valid({k: s[k] for k in ("pattern", "format") if k in s}, c):
                return c
        raise UnsupportedSchema(f"no candidate string satisfies pattern/length at {_where(path)}")

    def build_integer(self, s: dict, path: list, depth: int, alt: int, rng: random.Random) -> int:
        return self.build_number(s, path, depth, alt, rng, integer=True)

    def build_number(self, s: dict, path: list, depth: int, alt: int, rng: random.Random,
                     integer: bool = False) -> float:
        lo, _, hi, _ = _bounds(s)
        a, b = _window(lo, hi)
        m = s.get("multipleOf")
        if m is not None:
            if not _is_num(m) or m <= 0:
                raise UnsupportedSchema(f"multipleOf must be a positive number at {_where(path)}")
            k0, k1 = math.ceil(a / m), math.floor(b / m)
            n = max(k1 - k0 + 1, 1)
            ks = [k0 + (rng.randrange(n) + alt + i) % n for i in range(10)]
            ks += [math.ceil(x / m) + d for x in (lo, hi) if x is not None for d in (-1, 0, 1)] + [0]
            cands = [x for k in ks for x in (k * m, round(k * m, 10))]
        elif integer:  # three consecutive values survive any exclusive bound at either end
            ia, n = math.ceil(a), max(math.floor(b) - math.ceil(a) + 1, 1)
            cands = [ia + (rng.randrange(n) + alt + i) % n for i in range(3)]
        else:  # 1-2 decimals reads well; more digits only for tight bounds
            free = self.rng(path, alt)
            cands = [round(free.uniform(a, b), d) for d in (1, 1, 2, 2, 6)] + [(a + b) / 2]
            cands += [(lo + hi) / 2] if lo is not None and hi is not None else []
        if integer:
            cands = [int(x) for x in cands if float(x).is_integer()]
        if not (ok := [x for x in cands if _num_ok(s, x)]):
            raise UnsupportedSchema(f"no {'integer' if integer else 'number'} fits the bounds at {_where(path)}")
        return ok[0] if integer else next((x for x in ok if not float(x).is_integer()), ok[0])


def _tuple_items(s: dict) -> tuple[list, object]:
    """(prefixItems, schema for the rest); also accepts the pre-2020 array form of `items`."""
    items = s.get("items", True)
    return (items, s.get("additionalItems", True)) if isinstance(items, list) else (s.get("prefixItems", []), items)
