"""The process that runs one submission inside the sandbox, as an unprivileged user.

`compatlab grade` (root, outside) writes a job to this process's stdin: the notebook's code
cells with their roles (the lesson's tests, the lesson's own code, the learner's), the limits,
and how to start the kernel (as a second user of its own). This process runs the cells with
GradingClient (execute.py) and writes one JSON result to stdout: each cell's outputs and
execution count, and notes for review. Nothing else goes to stdout: its own and the kernel's
terminal output go to stderr, which the grader keeps, capped, in grading.log.

The result is the only thing that leaves the sandbox, and the grader reads it as hostile
input: capped in size, parsed, checked against the notebook format, and merged into the
notebook the grader holds, whose sources never left its hands.
"""

import json
import os
import sys

from compatlab.process import EngineProcess

# --ready-fd=N: closed to say the sandbox is up, before the imports below, so that a warm kernel
# forked into it (sandbox.run, warm.py) starts while they load; --paced-engine=JSON: the
# sandbox's own paced lab engine (sandbox.paced_engine), which boots while they load too
PACED: EngineProcess | None = None
for _arg in sys.argv[1:]:
    if _arg.startswith("--ready-fd="):
        os.close(int(_arg.split("=", 1)[1]))
    elif _arg.startswith("--paced-engine="):
        _paced = json.loads(_arg.split("=", 1)[1])
        PACED = EngineProcess(*_paced["args"], port=_paced["port"], prefix=tuple(_paced["prefix"])).launch()

import asyncio  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402
from traitlets.config import Config  # noqa: E402

from compatlab.grader.execute import AttachedKernelManager, GradedKernelManager, GradingClient  # noqa: E402
from compatlab.grader.kernel import GUARD_VARIABLE  # noqa: E402


def run_job(job: dict, home: Path) -> dict:
    cells = job["cells"]
    notebook = new_notebook(cells=[new_code_cell(cell["source"]) for cell in cells])
    limits, kernel = job["limits"], job["kernel"]
    home.chmod(0o711)  # the kernel may open the connection file by name; nobody may list the folder
    work = home / "work"  # the kernel's working folder, $HOME and $TMPDIR
    work.mkdir()
    work.chmod(0o777)
    env = {**kernel["env"], "HOME": str(work), "TMPDIR": str(work), GUARD_VARIABLE: json.dumps(job["guard"])}
    if PACED is not None:  # the notebook's first cell may ask it for a stream
        PACED.wait_ready(60)
    for attempt in (1, 2):
        # a warm kernel, forked into this sandbox before the job came (warm.py), or one of our own
        warm = attempt == 1 and "attach" in kernel
        manager = (AttachedKernelManager if warm else GradedKernelManager)(
            prefix=kernel["prefix"], python=sys.executable, kernel_env=env, connection_file=str(home / "kernel.json"),
            reserved_ports=kernel["reserved_ports"],
            config=Config({"GradedKernelClient": {"message_bytes": limits["message_bytes"]},
                           "AttachedKernelManager": {"attach": kernel.get("attach", {})}}))
        client = GradingClient(notebook, [cell["role"] for cell in cells], [cell["label"] for cell in cells],
                               km=manager, timeout=limits["cell_timeout"], notebook_timeout=limits["notebook_timeout"],
                               cell_output_bytes=limits["cell_output_bytes"],
                               notebook_output_bytes=limits["notebook_output_bytes"], startup_timeout=120,
                               resources={"metadata": {"path": str(work)}})
        try:
            asyncio.run(client.async_run())
            break
        except RuntimeError as exc:
            # a kernel that dies before its first reply has run no cell of the notebook: that
            # is the machine's trouble (a port taken, say), never the student's; try once more,
            # with a kernel of our own
            if attempt == 2 or "before replying to kernel_info" not in str(exc):
                raise
            traceback.print_exc()
    return {"cells": [{"index": spec["index"], "outputs": cell.outputs, "execution_count": cell.execution_count}
                      for spec, cell in zip(cells, notebook.cells)],
            "review": client.review}


def main() -> None:
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")  # the result, and only the result
    os.dup2(2, 1)  # everything else printed here (and by the kernel) goes to the log
    home = Path(tempfile.mkdtemp(prefix="runner-"))
    try:
        answer = run_job(json.loads(sys.stdin.buffer.read()), home)
    except Exception as exc:  # noqa: BLE001 -- the grader reports it for this student alone
        traceback.print_exc()
        answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:  # in a sandbox its tmpfs goes anyway; with --no-sandbox this is the host's /tmp
        shutil.rmtree(home, ignore_errors=True)
    result.write(json.dumps(answer))
    result.close()


if __name__ == "__main__":
    main()
