"""The grading kernel: ipykernel, with a guard against monkeypatching the test machinery.

A submission shares its kernel with the tests that grade it, so it can try to make them pass
without doing the work: replace a builtin (`isinstance = lambda *a: True`), silence tracebacks
(`showtraceback`), or rewrite later cells (an input transformer that drops `assert` lines).
The guard snapshots all of that when the kernel starts, before any notebook code, and

- before every cell, puts the snapshot back, so a patch never outlives the cell that made it;
- after every cell, if something was changed while it ran, writes one line to stderr. In a
  test cell that line is what nbgrader reads as a failure, so a test that ran with patched
  builtins (patched, say, by the function it called) scores 0.

It is a guard, not a wall: code written to remove the guard's own hooks gets past it. The
sandbox (sandbox.py) still bounds what such code can touch, and the instructor sees it.
"""

import builtins
import sys

SHELL_METHODS = ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "transform_cell", "showtraceback",
                 "_showtraceback", "showsyntaxerror", "get_exception_only")
SHELL_LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
SYS_HOOKS = ("excepthook", "displayhook", "stdout", "stderr")


class Guard:
    def __init__(self, shell) -> None:
        self.shell = shell
        self.builtins = dict(vars(builtins))
        self.methods = {name: vars(type(shell)).get(name) for name in SHELL_METHODS}
        self.lists = {name: list(getattr(shell, name)) for name in SHELL_LISTS}
        self.sys = {name: getattr(sys, name) for name in SYS_HOOKS}
        self.stderr = sys.stderr
        self.callbacks = {event: list(funcs) for event, funcs in shell.events.callbacks.items()}

    def changes(self) -> list[str]:
        """What differs from the snapshot, by name."""
        found = [f"builtins.{name}" for name, value in vars(builtins).items()
                 if name not in self.builtins or self.builtins[name] is not value]
        found += [f"builtins.{name} (deleted)" for name in self.builtins if name not in vars(builtins)]
        found += [f"the shell's {name}" for name, value in self.methods.items()
                  if name in vars(self.shell) or vars(type(self.shell)).get(name) is not value]
        found += [f"the shell's {name}" for name, items in self.lists.items() if getattr(self.shell, name) != items]
        found += [f"sys.{name}" for name, value in self.sys.items() if getattr(sys, name) is not value]
        return found

    def restore(self) -> None:
        table = vars(builtins)
        for name in [name for name in table if name not in self.builtins]:
            del table[name]
        table.update(self.builtins)
        for name, value in self.methods.items():
            vars(self.shell).pop(name, None)  # an instance attribute shadowing the method
            if value is not None:
                setattr(type(self.shell), name, value)
        for name, items in self.lists.items():
            getattr(self.shell, name)[:] = items
        for name, value in self.sys.items():
            setattr(sys, name, value)

    def before_cell(self, *_) -> None:
        self.restore()

    def after_cell(self, *_) -> None:
        changed = self.changes()
        self.restore()
        if changed:
            self.stderr.write(f"compatlab grader: this cell changed {', '.join(changed[:6])}; "
                              "tests do not count while the test machinery is patched\n")
            self.stderr.flush()


def install(shell) -> Guard:
    guard = Guard(shell)
    shell.events.register("pre_run_cell", guard.before_cell)
    shell.events.register("post_run_cell", guard.after_cell)
    return guard


def main() -> None:
    import os

    from ipykernel.kernelapp import IPKernelApp

    from compatlab.grader import relay

    # the kernel's own terminal output (ipykernel's banner when it has no parent process to
    # report to, a cell's os.write(1, …)) goes where its stderr goes, grading.log: never the
    # instructor's console
    os.dup2(2, 1)
    if os.environ.get("COMPATLAB_RELAY"):  # sandboxed: the lab engines are reached through the relay
        relay.start_in_thread("in", relay.parse(os.environ["COMPATLAB_RELAY"].split()))
    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:])
    install(app.shell)
    app.start()


if __name__ == "__main__":
    main()
