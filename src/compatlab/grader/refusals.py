"""Two of nbgrader's own steps that must never run on a course compatlab grades.

The nbgrader_config.py that `compatlab grade` writes beside its gradebook (and the classroom's
instructor config) opens the course to formgrader and nbgrader's commands, whose buttons include:

- Autograde, which runs a student's notebook in a plain kernel with the grader's rights, outside
  compatlab's sandbox;
- Generate feedback, which writes nbgrader's own page, hidden tests and all, where compatlab's
  page waits for `release_feedback`.

Both are set to refuse, with a sentence that says what to run instead: an nbgrader step that
cannot build one of its preprocessors stops before it writes anything.
"""

from nbconvert.preprocessors import Preprocessor


class UseCompatlabGrade(Preprocessor):
    def __init__(self, **kwargs):
        raise RuntimeError("nbgrader's own autograde would run this student's code outside compatlab's sandbox: "
                           "run `compatlab grade` instead (it regrades any submission whose autograded notebook "
                           "is missing)")


class UseCompatlabFeedback(Preprocessor):
    def __init__(self, **kwargs):
        raise RuntimeError("nbgrader's own feedback page shows the hidden tests: `compatlab grade` writes each "
                           "learner's page (no test code) where `nbgrader release_feedback` reads it")


def config_lines() -> list[str]:
    """What an nbgrader_config.py says to make those two steps refuse."""
    return [f"c.Autograde.sanitize_preprocessors = [{__name__ + '.UseCompatlabGrade'!r}]",
            f"c.GenerateFeedback.preprocessors = [{__name__ + '.UseCompatlabFeedback'!r}]"]
