"""The grading kernel: ipykernel with the guard (guard.py), as the runner starts it in the sandbox.

It reads the guard's settings from COMPATLAB_GUARD (which cells are the lesson's tests and its
own code, by the digest of their source; which module attributes the tests use), starts the
engine relay when sandboxed, makes itself the first process the memory limit's killer picks,
and sends its own terminal output to its stderr, which the runner logs.
"""

import json
import os
import sys

GUARD_VARIABLE = "COMPATLAB_GUARD"
RELAY_VARIABLE = "COMPATLAB_RELAY"  # "PORT=SOCKET …": the engines this kernel relays to


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    from compatlab.grader import guard, relay

    # ipykernel's banner and a cell's os.write(1, …) belong in the grading log, never the result
    os.dup2(2, 1)
    try:  # when the sandbox's memory runs out, the kernel (and its children) go first, not the runner
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass
    settings = json.loads(os.environ.get(GUARD_VARIABLE) or "{}")
    if os.environ.get(RELAY_VARIABLE):
        relay.start_in_thread("in", relay.parse(os.environ[RELAY_VARIABLE].split()))
    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:])
    guard.install(app.shell, app.kernel, settings.get("roles", {}), [tuple(pair) for pair in settings.get("watch", [])])
    app.start()


if __name__ == "__main__":
    main()
