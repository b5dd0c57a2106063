"""Known mistakes: the sample class's wrong answers, named, so feedback can say which one a
learner's failures look like and which hint to read.

Each wrong answer in data/sample-class/<lesson>/manifest.toml lists the test cells it fails
(`loses`), a sentence naming the mistake (`mistake`), where the hint is (`hint`) and a piece of
the failure message that identifies it (`says`). A learner's result matches when every cell in
`loses` failed and one of those failures says `says`: the failing cells alone would confuse
mistakes that break the same exercise in different ways.
"""

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from compatlab.grader.course import course_root


def sample_class() -> Path:
    """The course's sample class (in a classroom, the instructor's copy: it holds answers)."""
    return course_root() / "data" / "sample-class"


@dataclass(frozen=True)
class Mistake:
    name: str  # the sample student who makes it
    loses: tuple[str, ...]
    says: str
    mistake: str
    hint: str

    def matches(self, results: list[dict]) -> bool:
        failed = {r["name"]: r["message"] for r in results if not r["passed"]}
        return bool(self.loses) and all(cell in failed for cell in self.loses) \
            and any(self.says in failed[cell] for cell in self.loses)

    def advice(self) -> str:
        return f"{self.mistake} ({self.hint})" if self.hint else self.mistake


@cache
def known_mistakes(lesson: str, folder: Path | None = None) -> tuple[Mistake, ...]:
    folder = folder or sample_class()
    try:
        manifest = tomllib.loads((folder / lesson / "manifest.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return ()
    return tuple(Mistake(name, tuple(entry.get("loses", ())), entry["says"], entry["mistake"], entry.get("hint", ""))
                 for name, entry in manifest.get("students", {}).items()
                 if entry.get("says") and entry.get("mistake"))


def annotate(results: list[dict], lesson: str) -> list[dict]:
    """Give each failed test the likely mistakes that explain it (`likely`: a list of sentences)."""
    found = [m for m in known_mistakes(lesson) if m.matches(results)]
    for result in results:
        result["likely"] = [m.advice() for m in found if not result["passed"] and result["name"] in m.loses]
    return results
