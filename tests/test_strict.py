"""Strict comparisons in test cells: honest values compare as Python compares them; a value whose
class (defined in the notebook) decides its own equality, truth or membership decides nothing."""

import dataclasses

import numpy as np
import pytest

from compatlab.grader import strict
from compatlab.grader.strict import Refused, Strict, equal, rewrite

CHECK = Strict()


def notebook_namespace() -> dict:
    """Classes as a notebook defines them: module __main__."""
    namespace = {"__name__": "__main__"}
    exec('''
import dataclasses

class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __contains__(self, item): return True
    def __lt__(self, other): return True
    def __hash__(self): return 0

class AnyStr(str):
    def __eq__(self, other): return True
    __hash__ = str.__hash__

@dataclasses.dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

@dataclasses.dataclass
class OtherUsage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
''', namespace)
    return namespace


NB = notebook_namespace()


@pytest.mark.parametrize("left, right", [("Hello.", "Hello."), (1, 1.0), (True, 1), ([1, {"a": [2]}], [1, {"a": [2]}]),
                                         ((1, 2), (1, 2)), ({"x": None}, {"x": None}), ({1, 2}, {2, 1}),
                                         (np.float64(2.5), 2.5), (np.int64(3), 3), (None, None)])
def test_honest_values_compare_as_python_does(left, right):
    assert equal(left, right) and CHECK.compare(left, "==", right) and not CHECK.compare(left, "!=", right)


@pytest.mark.parametrize("left, right", [("a", "b"), ([1, 2], (1, 2)), ({"a": 1}, {"a": 2}), (1, "1"), ([1], [1, 2])])
def test_honest_differences_stay_differences(left, right):
    assert not equal(left, right) and CHECK.compare(left, "!=", right)


def test_an_object_that_equals_everything_is_refused_with_a_message_that_says_why():
    anything = NB["Anything"]()
    for expected in ("Hello.", 42, None, [1], {"a": 1}, NB["Usage"](11, 7)):
        for left, op, right in ((anything, "==", expected), (expected, "==", anything), (anything, "!=", expected)):
            with pytest.raises(Refused, match="class Anything with ==, and that class decides equality itself"):
                CHECK.compare(left, op, right)
    with pytest.raises(Refused):
        CHECK.compare(NB["AnyStr"]("x"), "==", "Hello.")
    assert len(CHECK.refused) >= 3  # what the guard's receipt reports


def test_a_librarys_object_that_equals_everything_is_refused_too():
    from unittest.mock import ANY, MagicMock

    for forged in (ANY, MagicMock()):
        with pytest.raises(Refused, match="decides equality itself"):
            CHECK.compare(forged, "==", "Hello.")
        with pytest.raises(Refused):
            CHECK.compare(forged, "==", NB["Usage"](11, 7))


def test_a_class_that_claims_to_be_a_librarys_is_still_the_notebooks():
    namespace = {"__name__": "__main__"}
    exec("class Disguised:\n    __module__ = 'json'\n    def __eq__(self, other): return True\n"
         "    def __bool__(self): return True\n    def __contains__(self, item): return True", namespace)
    disguised = namespace["Disguised"]()
    for check in (lambda: CHECK.compare(disguised, "==", "x"), lambda: CHECK.truth(disguised),
                  lambda: CHECK.compare("needle", "in", disguised)):
        with pytest.raises(Refused):
            check()


def test_isinstance_goes_by_the_real_type():
    namespace = {"__name__": "__main__", "Usage": NB["Usage"]}
    exec("class Fake:\n    __class__ = property(lambda self: Usage)", namespace)
    fake = namespace["Fake"]()
    assert isinstance(fake, NB["Usage"])  # Python is fooled
    assert not CHECK.isinstance(fake, NB["Usage"]) and CHECK.isinstance(NB["Usage"](1, 2), (NB["Usage"], int))
    assert "__compatlab_strict__.isinstance(x, Usage)" in rewrite("assert isinstance(x, Usage)")


def test_containers_of_such_objects_do_not_pass_either():
    anything = NB["Anything"]()
    for left, right in (([anything], [1]), ({"a": anything}, {"a": 1}), ((anything,), (1,))):
        with pytest.raises(Refused):
            equal(left, right)
    assert not equal({anything: 1}, {0: 1})  # keys must be plain


def test_dataclasses_compare_field_by_field_and_only_with_their_own_type():
    usage, anything = NB["Usage"], NB["Anything"]()
    assert equal(usage(11, 7), usage(11, 7)) and not equal(usage(11, 7), usage(11, 8))
    with pytest.raises(Refused):
        equal(usage(anything, anything), usage(11, 7))  # a field that decides for itself
    assert not equal(NB["OtherUsage"](11, 7), usage(11, 7))
    usage.__eq__ = lambda self, other: True  # a patched class: still field by field
    assert not equal(usage(0, 0), usage(11, 7))


def test_membership_and_truth():
    anything = NB["Anything"]()
    assert CHECK.compare("Paris", "in", 'got {"city": "Paris"}') and CHECK.compare("x", "not in", "abc")
    assert CHECK.compare(2, "in", [1, 2]) and CHECK.compare("a", "in", {"a": 1})
    assert not CHECK.compare(anything, "in", {"a": 1})
    with pytest.raises(Refused):
        CHECK.compare(anything, "in", [1, 2])
    with pytest.raises(Refused, match="decides that itself"):
        CHECK.compare("x", "in", anything)
    with pytest.raises(Refused, match="decides that itself"):
        CHECK.truth(anything)
    assert CHECK.truth([1]) is True and CHECK.truth("") is False and CHECK.truth(np.bool_(True)) is True
    assert CHECK.truth(ValueError("x")) is True  # no truth method of its own: Python's default


def test_ordering_is_for_numbers_and_strings():
    assert CHECK.compare(1, "<", 2.5) and CHECK.compare("a", "<=", "b") and CHECK.compare(np.float64(3), ">", 2)
    with pytest.raises(Refused, match="ordering checks take numbers or strings"):
        CHECK.compare(NB["Anything"](), "<", 3)


def test_a_rewritten_test_cell_runs_like_the_original_for_an_honest_answer_and_fails_for_a_forger():
    test_cell = '''
assert answer("Hello.") == "Hello."
assert answer(None) == "" and answer("x")
for bad in (42, 1.5):
    if answer(str(bad)) != str(bad):
        raise AssertionError(f"answer({bad!r})")
'''
    rewritten = rewrite(test_cell)
    assert "__compatlab_strict__.compare" in rewritten and "__compatlab_strict__.truth" in rewritten
    honest = {"__name__": "__main__", strict.NAME: CHECK, "answer": lambda x: "" if x is None else x}
    exec(test_cell, dict(honest))
    exec(rewritten, dict(honest))
    forger = {**honest, "answer": lambda x: NB["Anything"]()}
    exec(test_cell, dict(forger))  # Python's own comparisons: the forger passes
    with pytest.raises(Refused):
        exec(rewritten, dict(forger))


def test_rewrite_leaves_unparsable_source_alone():
    assert rewrite("assert (") == "assert ("


def test_dataclass_fields_marked_not_compared_are_skipped():
    @dataclasses.dataclass
    class Local:
        a: int
        b: int = dataclasses.field(compare=False)

    assert equal(Local(1, 2), Local(1, 3))
