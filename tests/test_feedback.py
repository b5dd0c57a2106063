"""Feedback shows no line of a test cell and no value of the grader's environment, whatever a
failure message contains; messages are plain text of bounded length; console text is escaped."""

import re
from io import StringIO

from nbformat.v4 import new_code_cell, new_notebook, new_output
from rich.console import Console

from compatlab.grader import feedback
from compatlab.grader.feedback import HIDDEN, MAX_MESSAGE, grader_secrets, redact
from compatlab.grader.safe_text import cell, console, plain, spreadsheet

TEST_LINES = ['assert read_usage({"prompt_tokens": 5, "completion_tokens": 40}) == Usage(5, 40, None)',
              "for bad in ('[\"Paris\"]', '42'):", "else:"]


def failing_test(evalue: str):
    test = new_code_cell("...", metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "test_x",
                                                       "points": 2}})
    test.outputs = [new_output("error", ename="ValueError", evalue=evalue, traceback=[])]
    return new_notebook(cells=[test])


def test_a_test_line_copied_into_a_message_is_hidden_even_reindented():
    leak = "here is your test:\n        assert read_usage({\"prompt_tokens\": 5,   \"completion_tokens\": 40})  ==  Usage(5, 40, None)"
    [result] = feedback.test_results(failing_test(leak), {"test_x": (0, 2)}, TEST_LINES, [])
    assert "read_usage({" not in result["message"] and HIDDEN in result["message"]
    assert result["message"].startswith("ValueError: here is your test:")


def test_short_lines_and_honest_messages_are_kept():
    honest = "tool_arguments('42') should raise EngineError; else: it returned {}"
    assert redact(honest, TEST_LINES, []) == honest


def test_the_graders_environment_never_shows():
    secrets = grader_secrets({"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG", "OLLAMA_HOST": "http://127.0.0.1:11435",
                              "OPENAI_API_KEY": "sk-instructors-real-key", "SHORT": "abc"})
    # the engines' addresses are the kernel's own; short values are noise; the API key is the grader's
    assert secrets == ["sk-instructors-real-key", "wJalrXUtnFEMI/K7MDENG"]  # longest first
    message = redact("env: {'AWS_SECRET_ACCESS_KEY': 'wJalrXUtnFEMI/K7MDENG'} via http://127.0.0.1:11435", [], secrets)
    assert "wJalrXUtnFEMI" not in message and "http://127.0.0.1:11435" in message


def test_messages_are_capped_and_plain():
    message = redact("\x1b[31mred\x1b[0m \u202e" + "x" * 100_000, [], [])
    assert len(message) <= MAX_MESSAGE + 2 and "\x1b" not in message and "\u202e" not in message
    assert message.startswith("red \N{REPLACEMENT CHARACTER}x")


def test_console_text_has_no_escapes_and_no_markup():
    name = "evil\x1b[2J\x1b]0;pwned\x07[bold red]boom[/]"
    out = StringIO()
    terminal = Console(file=out, force_terminal=True, width=200)
    terminal.print(f"student {console(name)}")
    terminal.print(cell(name))
    printed = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # rich's own colours, nothing else
    assert "\x1b" not in printed and "\x07" not in printed and "]0;pwned" in printed
    assert printed.count("[bold red]boom[/]") == 2  # shown literally, never applied


def test_plain_keeps_lines_only_when_asked():
    assert plain("a\nb\tc", keep_lines=True) == "a\nb\tc"
    assert "\n" not in plain("a\nb")


def test_spreadsheets_never_see_a_formula():
    assert spreadsheet("=HYPERLINK(\"http://evil\")") == "'=HYPERLINK(\"http://evil\")"
    assert spreadsheet("graded") == "graded" and spreadsheet(15.0) == 15.0


def test_the_report_escapes_and_shortens_a_failure_message_and_counts_one_lesson(tmp_path):
    import pandas as pd

    from compatlab.grader.report import SHOWN, LessonResults, write_report

    hostile = "AssertionError: <script>alert(1)</script>" + "y" * 1000
    grades = pd.DataFrame([{"student": s, "assignment": "lesson-a", "score": score, "max_score": 2.0,
                            "status": "graded", "test_x": score, "review": ""} for s, score in
                           (("ada", 2.0), ("bob", 0.0), ("cy", 0.0))])
    lesson = LessonResults(grades, {"test_x": 2.0}, {"test_x": [hostile, hostile]})
    other = LessonResults(grades.assign(assignment="lesson-b", score=None), {"test_x": 2.0})
    write_report(tmp_path / "report.html", grades, {"lesson-a": lesson, "lesson-b": other}, tmp_path / "feedback")
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "AssertionError: &lt;script&gt;alert(1)&lt;/script&gt;yyy" in page
    assert "y" * SHOWN not in page  # shortened
    assert "<td><code>test_x</code></td><td class=num>1 / 3</td><td class=num>33 %</td>" in page
    assert "<td class=num>2 of 2</td>" in page and "No submission of this lesson was graded" in page
