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
# a warm kernel (warm.py) starts before its job is known: its guard's settings come later, on
# this descriptor, and it answers nobody until they have
SETTINGS_VARIABLE = "COMPATLAB_GUARD_FD"


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
    if os.environ.get(RELAY_VARIABLE):
        relay.start_in_thread("in", relay.parse(os.environ[RELAY_VARIABLE].split()))
    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:])
    settings = json.loads(_late_settings(int(fd)) if (fd := os.environ.pop(SETTINGS_VARIABLE, None))
                          else os.environ.get(GUARD_VARIABLE) or "{}")
    guard.install(app.shell, app.kernel, settings.get("roles", {}), [tuple(pair) for pair in settings.get("watch", [])])
    app.start()


def _late_settings(fd: int) -> bytes:
    """The guard's settings, written whole by the grader once the job is known; nothing (the
    grader ended the sandbox instead) ends the kernel."""
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    if not data:
        os._exit(0)
    return data


if __name__ == "__main__":
    main()
