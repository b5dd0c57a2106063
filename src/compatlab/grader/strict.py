"""Strict comparisons in test cells: a value from the notebook cannot decide its own test.

A test such as `assert content_text("Hi") == "Hi"` calls the learner's function and compares
what it returned. Python lets the returned object decide: an object whose `__eq__` answers
True to everything (or whose `__bool__`, `__contains__` do) passes every such test without an
answer. So the grader rewrites each test cell before it runs (`rewrite`, on the grader's side;
the stored notebook keeps the original): `==`, `!=`, `<`, `<=`, `>`, `>=`, `in` and `not in`
go through `compare`, and every truth test (`assert x`, `if x`, `not x`, `and`/`or` in those)
through `truth`, both living in builtins, under the guard's watch (guard.py).

The rules. "Defined in the notebook" is judged by where a method's code lives (a cell, a file
the notebook wrote, code built at run time), never by a class's `__module__`:

- equality: plain data (str, numbers, bool, None, bytes, numpy scalars) equals only plain data;
  instances of the same dataclass are compared field by field, by these same rules; two
  different dataclasses are unequal; a value whose class decides equality itself (any `__eq__`
  but Python's own types', such as `unittest.mock.ANY` or a class from the notebook) compared
  with plain data or a dataclass is refused: the test fails with a message that says so;
- lists, tuples and dicts are compared element by element, by these rules; dict keys and set
  members must be plain (str, int, float, bool, None, bytes, tuples of those);
- ordering (`<`…) is for numbers and strings only;
- `x in container`: strings in strings, elements of lists and tuples by these rules, plain keys
  in dicts and sets; a container class defined in the notebook decides nothing;
- truth: a class defined in the notebook with its own `__bool__` or `__len__` is refused;
- `isinstance(x, C)` goes by `type(x)`: a `__class__` property does not pass for C.

What was refused goes into the guard's receipt, so the submission is also noted for review.

Honest answers (strings, numbers, lists, dicts, the lesson's own dataclasses) compare exactly
as Python compares them. Library objects (numpy scalars, pandas frames) keep their own rules.
"""

import ast
import dataclasses
import sysconfig
import types

from compatlab.grader.cell_ast import parse_cell

NAME = "__compatlab_strict__"
OPERATORS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
             ast.In: "in", ast.NotIn: "not in"}
PLAIN = (str, int, float, bool, type(None), bytes)
NUMBERS = (int, float, bool)


# ---------------------------------------------------------------- the grader's side: rewriting


def rewrite(source: str) -> str:
    """The test cell's source with its comparisons and truth tests made strict; the source
    unchanged when it cannot be parsed (it will fail on its own)."""
    tree = parse_cell(source)
    if tree is None:
        return source
    tree = ast.fix_missing_locations(_Rewrite().visit(tree))
    return ast.unparse(tree)


def _call(method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Attribute(ast.Name(NAME, ast.Load()), method, ast.Load()), list(args), [])


class _Rewrite(ast.NodeTransformer):
    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) != 1 or type(node.ops[0]) not in OPERATORS:
            return node  # `is`, and chained comparisons, which are not in our tests
        return _call("compare", node.left, ast.Constant(OPERATORS[type(node.ops[0])]), node.comparators[0])

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "isinstance" and len(node.args) == 2 and not node.keywords:
            return _call("isinstance", *node.args)
        return node

    def _truth(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.BoolOp):
            return ast.BoolOp(node.op, [self._truth(value) for value in node.values])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ast.UnaryOp(ast.Not(), self._truth(node.operand))
        if isinstance(node, ast.Constant) or (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                                               and isinstance(node.func.value, ast.Name)
                                               and node.func.value.id == NAME):
            return node
        return _call("truth", node)

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        self.generic_visit(node)
        node.test = self._truth(node.test)
        return node

    def visit_If(self, node):
        self.generic_visit(node)
        node.test = self._truth(node.test)
        return node

    visit_While = visit_IfExp = visit_If

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            node.operand = self._truth(node.operand)
        return node


# ---------------------------------------------------------------- the kernel's side: the checks


class Refused(TypeError):
    """A test was handed a value that decides its own comparison."""


class Strict:
    """Installed in builtins as NAME by the guard; see the module's docstring for the rules.
    `refused` lists what was refused, for the guard's receipt (and a review note)."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def compare(self, left, op: str, right) -> bool:
        try:
            return self._compare(left, op, right)
        except Refused as exc:
            self.refused.append(str(exc))
            raise

    def truth(self, value) -> bool:
        try:
            return self._truth(value)
        except Refused as exc:
            self.refused.append(str(exc))
            raise

    def isinstance(self, value, classes) -> bool:
        """isinstance by the value's real type: a `__class__` property cannot pass for the lesson's class."""
        return issubclass(type(value), classes)

    def _compare(self, left, op: str, right) -> bool:
        if op == "==":
            return equal(left, right)
        if op == "!=":
            return not equal(left, right)
        if op in ("in", "not in"):
            return contains(right, left) == (op == "in")
        if not (_orderable(left) and _orderable(right)):
            raise Refused(f"a test compared {type(left).__name__} {op} {type(right).__name__}: "
                          "ordering checks take numbers or strings")
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]

    def _truth(self, value) -> bool:
        if _own(type(value), "__bool__", "__len__"):
            raise Refused(f"a test asked whether a value of class {type(value).__name__} is true, and that class, defined in the "
                          "notebook, decides that itself: return plain values (str, numbers, lists, dicts) or the "
                          "lesson's own classes")
        return bool(value)


LIBRARIES = tuple({sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib")})
BUILTIN_CALLABLES = (types.BuiltinFunctionType, types.WrapperDescriptorType, types.MethodDescriptorType,
                     types.MethodWrapperType, types.ClassMethodDescriptorType)


def _notebooks(method) -> bool:
    """Is this method the notebook's (a cell, a file it wrote, code built at run time), rather
    than Python's own or an installed library's? Judged by where its code lives, which a class
    cannot disguise (its `__module__` it can)."""
    method = getattr(method, "__func__", method)  # staticmethod, classmethod
    code = getattr(method, "__code__", None)
    if code is None:
        return not isinstance(method, BUILTIN_CALLABLES)
    return not code.co_filename.startswith(LIBRARIES)


def _own(cls: type, *methods: str) -> bool:
    """Does a class in cls's MRO define one of `methods` with the notebook's code?"""
    return any(name in vars(klass) and (klass.__module__ == "__main__" or _notebooks(vars(klass)[name]))
               for klass in cls.__mro__ for name in methods)


def _decides_equality(cls: type) -> bool:
    """Anything but Python's own object, number, string and container types defining ==."""
    return any(("__eq__" in vars(klass) or "__ne__" in vars(klass)) and klass not in BUILTIN_TYPES
               for klass in cls.__mro__)


BUILTIN_TYPES = {object, str, int, float, bool, bytes, type(None), list, tuple, dict, set, frozenset, complex}


def _plain_scalar(value) -> bool:
    """A str, number, bool, None or bytes, or a numpy scalar (numpy decides its ==, not the notebook)."""
    if type(value) in PLAIN:
        return True
    return type(value).__module__ == "numpy" and getattr(value, "shape", None) == ()


def _orderable(value) -> bool:
    return (type(value) in (*NUMBERS, str, bytes)) or _plain_scalar(value)


def _hashable_plain(value) -> bool:
    if type(value) is tuple:
        return all(_hashable_plain(v) for v in value)
    return type(value) in PLAIN


def _refuse_equality(value) -> Refused:
    return Refused(f"a test compared a value of class {type(value).__name__} with ==, and that class decides "
                   "equality itself: return plain values (str, numbers, lists, dicts) or the lesson's own classes")


def equal(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if _own(type(a), "__eq__", "__ne__") or _own(type(b), "__eq__", "__ne__"):
            raise _refuse_equality(a if _own(type(a), "__eq__", "__ne__") else b)
        return (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and isinstance(a, list) == isinstance(b, list)
                and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict) or isinstance(b, dict):
        if _own(type(a), "__eq__", "__ne__") or _own(type(b), "__eq__", "__ne__"):
            raise _refuse_equality(a if _own(type(a), "__eq__", "__ne__") else b)
        return (isinstance(a, dict) and isinstance(b, dict) and all(_hashable_plain(k) for k in (*a, *b))
                and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a))
    if isinstance(a, (set, frozenset)) or isinstance(b, (set, frozenset)):
        return (type(a) in (set, frozenset) and type(b) in (set, frozenset)
                and all(_hashable_plain(v) for v in (*a, *b)) and a == b)
    if _plain_scalar(a) and _plain_scalar(b):
        return _as_bool(a == b)
    if _plain_scalar(a) or _plain_scalar(b):  # plain data equals only plain data
        other = b if _plain_scalar(a) else a
        if _decides_equality(type(other)):
            raise _refuse_equality(other)
        return False
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b) and not isinstance(a, type):
        if type(a) is not type(b):
            return False  # two different dataclasses: unequal, as Python says
        return all(equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a) if f.compare)
    if dataclasses.is_dataclass(a) or dataclasses.is_dataclass(b):
        other = b if dataclasses.is_dataclass(a) else a
        if _decides_equality(type(other)):
            raise _refuse_equality(other)
        return False
    if _own(type(a), "__eq__", "__ne__") or _own(type(b), "__eq__", "__ne__"):
        raise _refuse_equality(a if _own(type(a), "__eq__", "__ne__") else b)
    return _as_bool(a == b)


def _as_bool(result) -> bool:
    """A comparison's result, if it is a real yes or no (numpy's bool included); else no."""
    if type(result) is bool:
        return result
    return type(result).__module__ == "numpy" and getattr(result, "shape", None) == () and bool(result)


def contains(container, item) -> bool:
    if isinstance(container, (str, bytes)):
        if _own(type(container), "__contains__"):
            return False
        return item in container  # str.__contains__ takes only a str (else TypeError, as in Python)
    if isinstance(container, (list, tuple)) and not _own(type(container), "__contains__", "__iter__"):
        return any(equal(item, element) for element in container)
    if isinstance(container, (dict, set, frozenset)) and not _own(type(container), "__contains__"):
        return _hashable_plain(item) and item in container
    if _own(type(container), "__contains__", "__iter__", "__getitem__"):
        raise Refused(f"a test looked inside a value of class {type(container).__name__}, defined in the notebook, "
                      "which decides that itself: return a list, tuple, dict or string")
    return item in container
