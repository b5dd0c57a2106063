"""nbgrader's Execute preprocessor, with a cap on what one cell may print, and a score for a
notebook whose kernel dies.

nbgrader keeps every output of a cell in memory until the notebook is written, so a submission
that prints in a loop could exhaust the grader before the cell's time limit stops it. Past the
cap a cell's further output is dropped and one line says so; the cell still runs to its end
or its time limit and is scored on whether it raised, as always.

When a submission kills its own kernel (or the memory cap does), nbgrader gives up on the whole
notebook and records no score. Here the cell that was running gets an error, every later code
cell gets one too without running, and the notebook is scored: the tests that ran count.
"""

import json

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer


def _error(message: str):
    return new_output("error", ename="KernelDied", evalue=message, traceback=[f"KernelDied: {message}"])


class GradingExecute(Execute):
    max_cell_output = Integer(2_000_000, help="bytes of output kept per cell").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._output_bytes: dict[int, int] = {}
        self._dead = False
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if self._dead:
            if cell.cell_type == "code":
                cell.outputs = [_error("not run: the kernel had died in an earlier cell")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._dead = True
            cell.outputs.append(_error("the kernel died while this cell ran"))
            return cell, resources
        except CellTimeoutError as exc:  # the interrupt after the time limit was not answered
            cell.outputs.append(new_output("error", ename="CellTimeoutError", evalue=str(exc).splitlines()[0],
                                           traceback=[]))
            return cell, resources

    def output(self, outs, msg, display_id, cell_index):
        size = self._output_bytes.get(cell_index, 0)
        if size > self.max_cell_output:
            return None
        size += len(json.dumps(msg.get("content", {}), default=str))
        self._output_bytes[cell_index] = size
        if size > self.max_cell_output:
            note = f"[compatlab grader: output past {self.max_cell_output:,} bytes was dropped]\n"
            outs.append(new_output("stream", name="stdout", text=note))
            return None
        return super().output(outs, msg, display_id, cell_index)
