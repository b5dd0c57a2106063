# nbgrader's course settings for compatlab. `compatlab release` and `compatlab grade` load this
# file and point the working trees somewhere else; run by hand from this folder
# (`cd grader && nbgrader generate_assignment compat-harness --force`) it does the same as
# `make release`, once `make release` has written the .ipynb beside each master.
import os

c = get_config()  # noqa: F821 (nbgrader provides it)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "course")
os.makedirs(BUILD, exist_ok=True)  # sqlite creates the gradebook file, not its folder

c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = "compatlab"
c.CourseDirectory.source_directory = "solutions"  # the masters and their notebooks
c.CourseDirectory.release_directory = "lessons"  # what learners open
# The working trees and the gradebook hold hidden tests and answers: never in git.
c.CourseDirectory.submitted_directory = os.path.join(BUILD, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(BUILD, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(BUILD, "feedback")
c.CourseDirectory.solution_directory = os.path.join(BUILD, "solution")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(BUILD, "gradebook.db")
# jupytext masters (*.py) carry the solutions: they must never be copied into a release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "*.ipynb.orig"]

# A lesson's cells talk to local engines in milliseconds; a minute is room for a slow machine.
c.Execute.timeout = 60

# What a learner's copy has where a solution was. nbgrader's default, a bare
# `raise NotImplementedError()`, stops Run All at the first unanswered exercise without a word, and
# its test cells fail on a message-less exception; this one says what is wrong and what to do.
c.ClearSolutions.code_stub = {
    "python": '# YOUR CODE HERE\nraise NotImplementedError("this exercise is not answered yet: replace this line with your code")',
}
