"""The instructor's side: build and release lessons, grade a class, report on it."""
