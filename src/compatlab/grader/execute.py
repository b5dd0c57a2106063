"""Running one submission's cells in the sandbox: nbclient, with every message of the kernel
treated as hostile input.

The runner (runner.py) uses `GradingClient` instead of nbgrader's Execute. It differs in what it
accepts from the kernel, which runs the learner's code:

- Output is capped per cell and per notebook, counting every message the kernel sends (display
  updates and widget messages too), and no single message may exceed `message_bytes` (ZeroMQ
  drops the connection). Past a cap, further output is dropped and one line says so; errors
  and stderr are kept, shortened, since dropping them would turn failed tests into passes.
- No widgets: comm messages are ignored, so no output can be captured into a widget.
- In a test cell, `execute_result` (which nbgrader would read as partial credit) and
  `clear_output` (which could wipe a failure) are ignored: a test passes or fails whole.
- A test cell must end with the guard's receipt (guard.py) saying nothing was patched while it
  ran; otherwise the runner adds the error that fails it. Any cell whose receipt reports a
  change, or is missing, is noted for review. And the kernel must confirm a test cell's end:
  a second reply, idle status or receipt for it means code sent the kernel's own messages.
- Time: each cell has a limit; when it passes, the kernel is interrupted, and a kernel that is
  still busy `interrupt_grace` seconds later is stopped. The whole notebook has a limit too.
  Once the kernel has died or been stopped, the later cells are marked "not run", and the
  notebook is still scored: the tests that ran count.
- A malformed message is dropped, never allowed to stop the run.
"""

import asyncio
import json
import os
import secrets
import signal
import socket
import uuid
from collections import Counter
from queue import Empty
from time import monotonic

import zmq
from jupyter_client import AsyncKernelClient, AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.provisioning import KernelProvisionerBase
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, DeadKernelError
from nbclient.util import ensure_async
from nbformat.v4 import new_output
from traitlets import Dict, Float, Integer, List, Unicode, default

from compatlab.grader.guard import RECEIPT
from compatlab.grader.warm import ephemeral_low


def _failure(msg_type: str, content: dict) -> bool:
    return msg_type == "error" or (msg_type == "stream" and content.get("name") == "stderr")


def _shortened(msg_type: str, content: dict) -> dict:
    if msg_type == "error":
        return {"ename": str(content.get("ename", "Error"))[:200], "evalue": str(content.get("evalue", ""))[:2000],
                "traceback": []}
    return {"name": "stderr", "text": str(content.get("text", ""))[:2000]}


def error_output(ename: str, evalue: str):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GradedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse oversized messages (ZeroMQ drops that connection)."""

    message_bytes = Integer(8 * 2**20).tag(config=True)

    def _create_connected_socket(self, channel: str, identity: bytes | None = None):
        from jupyter_client.connect import channel_socket_types

        sock = self.context.socket(channel_socket_types[channel])
        sock.linger = 1000
        sock.setsockopt(zmq.MAXMSGSIZE, self.message_bytes)  # before connect: applies to the connection
        if identity:
            sock.identity = identity
        sock.connect(self._make_url(channel))
        return sock

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """jupyter_client's wait (a kernel_info reply on shell, and IOPub proved connected), with
        one change: IOPub counts as connected, and drained, once the idle status of that very
        request arrives. jupyter_client then waits for 0.2 s of silence on IOPub, which was 0.2 s
        of every graded notebook."""
        deadline = monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            request = self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply and reply.get("msg_type") == "kernel_info_reply" and await self._idle_after(request, 0.5):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    async def _idle_after(self, request: str, within: float) -> bool:
        end = monotonic() + within
        while (left := end - monotonic()) > 0:
            try:
                msg = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (msg.get("parent_header", {}).get("msg_id") == request and msg.get("msg_type") == "status"
                    and msg.get("content", {}).get("execution_state") == "idle"):
                return True
        return False


class GradedKernelManager(AsyncKernelManager):
    """Starts the guarded kernel (kernel.py) with the command prefix the runner was given
    (setpriv to the kernel's own user, prlimit), whatever kernelspec the notebook names."""

    prefix = List(Unicode()).tag(config=True)
    python = Unicode().tag(config=True)
    kernel_env = Dict().tag(config=True)

    @default("cache_ports")
    def _no_port_cache(self) -> bool:
        # the ports are ours to choose (write_connection_file): jupyter_client's port cache
        # would pick ephemeral ones before we are asked
        return False
    reserved_ports = List(Integer()).tag(config=True)  # the relayed engines' ports, taken inside the sandbox

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(argv=[*self.prefix, self.python, "-m", "compatlab.grader.kernel", "-f", "{connection_file}"],
                          env=self.kernel_env, language="python", display_name="Python 3 (compatlab grading)",
                          # the kernel interrupts itself when asked on its control channel: no
                          # signal from us has to cross the user switch
                          interrupt_mode="message")

    def _client_factory_default(self):
        return GradedKernelClient

    def write_connection_file(self, **kwargs) -> None:
        # the kernel's relay listens on the engines' port numbers inside the sandbox: its own
        # ports must be others (jupyter_client would pick any free one)
        taken = set(self.reserved_ports)
        for name in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
            if not getattr(self, name):
                setattr(self, name, _free_port(self.ip, taken))
                taken.add(getattr(self, name))
        super().write_connection_file(**kwargs)
        # jupyter_client writes it 0600; the kernel runs as a user of its own and must read it.
        # Its folder is the runner's (0711), so nobody else in the sandbox can list it.
        os.chmod(self.connection_file, 0o644)


class AttachedProvisioner(KernelProvisionerBase):
    """A kernel forked into this sandbox from the worker's warm template (warm.py): already
    running, as the kernel's user. The runner watches it and stops it (it may signal it: the
    runner keeps CAP_KILL, and sees only this sandbox's processes), and never starts one."""

    pid = Integer(0)
    info = Dict()

    @property
    def has_process(self) -> bool:
        return self.pid > 0

    async def pre_launch(self, **kwargs):
        return {**kwargs, "cmd": []}

    async def launch_kernel(self, cmd, **kwargs):
        return {**self.info, "key": self.info["key"].encode()}  # jupyter_client's is bytes

    async def poll(self) -> int | None:
        try:  # its parent is the sandbox's init, which reaps it: a zombie is gone all but in name
            with open(f"/proc/{self.pid}/stat", "rb") as stat:
                return 1 if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z" else None
        except (OSError, IndexError):
            return 1

    async def wait(self) -> int | None:
        while await self.poll() is None:
            await asyncio.sleep(0.05)
        return 1

    async def send_signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        pass


class AttachedKernelManager(GradedKernelManager):
    """GradedKernelManager for a kernel that is already running (AttachedProvisioner)."""

    attach = Dict().tag(config=True)  # {"connection": connection info, "pid": the kernel's PID here}

    async def _async_pre_start_kernel(self, **kw):
        self.kernel_id = self.kernel_id or str(uuid.uuid4())
        self.provisioner = AttachedProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self,
                                               pid=self.attach["pid"], info=self.attach["connection"])
        return [], kw


def _free_port(ip: str, taken: set[int]) -> int:
    """A free port below the ephemeral range. A port from bind(0) is an ephemeral one: while the
    kernel imports, the client's own connection attempts can be given it as their source port,
    and the kernel then dies on "Address in use" (jupyter_client issue #154)."""
    low = ephemeral_low()
    while True:
        port = secrets.randbelow(low - 10_000) + 10_000
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((ip, port))
            except OSError:
                continue
        return port


class GradingClient(NotebookClient):
    """See the module's docstring. `roles[i]` is "test", "lesson" or "student" for cell i and
    `labels[i]` how a review note names it."""

    notebook_timeout = Integer(600).tag(config=True)
    cell_output_bytes = Integer(2_000_000).tag(config=True)
    notebook_output_bytes = Integer(10_000_000).tag(config=True)
    interrupt_grace = Float(10.0).tag(config=True)

    def __init__(self, nb, roles: list[str], labels: list[str], **kw) -> None:
        kw.setdefault("kernel_manager_class", GradedKernelManager)
        # shutdown "immediate": the kernel is killed at the end, not asked and waited for
        super().__init__(nb, allow_errors=True, interrupt_on_timeout=True, raise_on_iopub_timeout=False,
                         store_widget_state=False, record_timing=False, shutdown_kernel="immediate", **kw)
        self.error_on_timeout = {"ename": "CellTimeoutError", "evalue": "", "traceback": []}
        self.comm_open_handlers = {}
        self.roles, self.labels = roles, labels
        self.current = -1  # the cell being run
        self.review: list[str] = []
        self.on_cell_executed = self._note_reply

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self.requests: dict[int, str] = {}  # cell index -> its execute request's id
        self.arrived: Counter = Counter()  # (request id, "reply" | "idle" | "receipt") -> how many came
        self.receipts: dict[int, list[dict]] = {}
        self.cell_bytes: dict[int, int] = {}
        self.notebook_bytes = 0
        self.capped: set[int] = set()
        self.failed_past_cap: set[int] = set()
        self.timed_out = False
        self.cell_limit = self.timeout

    # ---------------------------------------------------------------- the cells, in order

    async def async_run(self):
        """Run every code cell under the limits; the notebook, with outputs, whatever happens."""
        self.reset_execution_trackers()
        deadline = monotonic() + self.notebook_timeout
        finished = False
        try:
            async with self.async_setup_kernel(cleanup_kc=True):
                await self.async_wait_for_reply(await ensure_async(self.kc.kernel_info()))
                await self._run_cells(deadline)
                finished = True
        except Exception:
            if not finished:
                raise
            self.log.warning("stopping the kernel failed; the sandbox ends it anyway", exc_info=True)
        return self.nb

    async def _run_cells(self, deadline: float) -> None:
        stopped = ""  # once set: why the kernel is gone, for every later cell
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            if stopped:
                cell.outputs = [error_output("NotRun", stopped)]
                continue
            left = deadline - monotonic()
            if left < 1:
                await self._stop_kernel()
                stopped = f"not run: the notebook reached its time limit of {self.notebook_timeout} s"
                cell.outputs = [error_output("NotebookTimeout", stopped)]
                continue
            stopped = await self._run_cell(cell, index, min(self.timeout, left))

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            self._count_arrivals(channel)
        execute = kc.execute

        def execute_and_remember(*args, **kwargs):
            msg_id = execute(*args, **kwargs)
            self.requests[self.current] = msg_id
            return msg_id

        kc.execute = execute_and_remember
        return kc

    def _count_arrivals(self, channel) -> None:
        """Count every reply, idle status and receipt per request as it arrives, whoever reads it;
        drop what cannot be read (a bad signature, broken JSON: a kernel out of descriptors sends
        such things), within the time the caller allowed."""
        get_msg = channel.get_msg

        async def counted(timeout=None):
            end = None if timeout is None else monotonic() + timeout
            while True:
                left = None if end is None else max(0.0, end - monotonic())
                try:
                    msg = await ensure_async(get_msg(timeout=left))
                except Empty:
                    raise
                except Exception as exc:  # noqa: BLE001 -- a message from the kernel is hostile input
                    self.log.warning("dropped a message the kernel sent that could not be read: %s", exc)
                    if end is not None and monotonic() >= end:
                        raise Empty from None
                    continue
                break
            if not isinstance(msg, dict):
                return msg
            kind, content = msg.get("msg_type"), msg.get("content") or {}
            parent = (msg.get("parent_header") or {}).get("msg_id")
            if kind == "execute_reply":
                self.arrived[(parent, "reply")] += 1
            elif kind == "status" and isinstance(content, dict) and content.get("execution_state") == "idle":
                self.arrived[(parent, "idle")] += 1
            elif kind == RECEIPT:
                self.arrived[(parent, "receipt")] += 1
            return msg

        channel.get_msg = counted

    async def _confirm(self, index: int, within: float) -> str:
        """After a test cell: "" when the kernel confirms the cell ended once, else why not.

        Code in the notebook can send messages on the kernel's own sockets, an execute_reply
        and an idle status among them, so that the runner moves on while the test is still
        failing. A kernel_info request is answered only after the cell's real end, and the
        shell and iopub channels keep their order: by the time its reply and its idle status
        are in, every real message of the cell has arrived and been counted."""
        ping = await ensure_async(self.kc.kernel_info())
        if not await self._kernel_answers(within, ping):
            return "stopped"
        end = monotonic() + 5
        while self.arrived[(ping, "idle")] == 0 and (left := end - monotonic()) > 0:
            try:
                await ensure_async(self.kc.iopub_channel.get_msg(timeout=left))
            except Exception:  # noqa: BLE001 -- queue.Empty: no more
                break
        request = self.requests.get(index)
        if any(self.arrived[(request, kind)] > 1 for kind in ("reply", "idle", "receipt")):
            return "forged"
        return ""

    async def _run_cell(self, cell, index: int, limit: float) -> str:
        """Run one cell; "" if the kernel lives on, else why the later cells will not run."""
        self.cell_limit, self.timed_out, self.current = max(1, int(limit)), False, index
        try:
            await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
        except DeadKernelError:
            cell.outputs.append(error_output("KernelDied", "the kernel died while this cell ran "
                                                           "(it crashed, was killed, or hit the memory limit)"))
            return "not run: the kernel had died in an earlier cell"
        if self.timed_out:
            if not await self._kernel_answers(self.interrupt_grace):
                await self._stop_kernel()
                cell.outputs.append(error_output(
                    "CellTimeoutError", f"the cell ran past its {self.cell_limit} s limit and ignored the interrupt, "
                                        "so the kernel was stopped"))
                return "not run: the kernel was stopped after an earlier cell ignored its interrupt"
            return ""
        if self.roles[index] == "test":
            verdict = await self._confirm(index, self.cell_limit)
            if verdict == "stopped":
                await self._stop_kernel()
                cell.outputs.append(error_output("GraderGuard", "the kernel never confirmed that this test had "
                                                                "ended, so the kernel was stopped and the test does not count"))
                self.review.append(f"{self.labels[index]}: the kernel did not confirm the end of this test")
                return "not run: the kernel was stopped after an earlier test did not confirm its end"
            if verdict == "forged":
                note = "the kernel answered this cell twice: code in the notebook sent the kernel's own messages"
                cell.outputs.append(error_output("GraderGuard", note + ", so this test does not count"))
                self.review.append(f"{self.labels[index]}: {note}")
        self._check_receipt(cell, index)
        return ""

    def _get_timeout(self, cell) -> int:
        return self.cell_limit

    async def _async_handle_timeout(self, timeout: int, cell=None):
        self.timed_out = True
        self.error_on_timeout = {"ename": "CellTimeoutError", "evalue": f"the cell ran past its {timeout} s limit",
                                 "traceback": []}
        return await super()._async_handle_timeout(timeout, cell)

    async def _kernel_answers(self, within: float, msg_id: str | None = None) -> bool:
        """Is the kernel idle again? A kernel_info request waits behind a cell still running."""
        msg_id = msg_id or await ensure_async(self.kc.kernel_info())
        end = monotonic() + within
        while (left := end - monotonic()) > 0:
            try:
                reply = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Exception:  # noqa: BLE001 -- queue.Empty: no answer in time
                return False
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return True
        return False

    async def _stop_kernel(self) -> None:
        try:
            await ensure_async(self.km.shutdown_kernel(now=True))
        except Exception:  # noqa: BLE001 -- already gone
            pass

    def _note_reply(self, cell, cell_index, execute_reply):
        """An error reply with no error output (a timeout, or a kernel with tracebacks silenced)
        still fails the cell: nbgrader's rule, kept."""
        content = (execute_reply or {}).get("content", {})
        if content.get("status") == "error":
            ename = str(content.get("ename", "Error"))
            if not any(o.output_type == "error" and o.get("ename") == ename for o in cell.outputs):
                cell.outputs.append(error_output(ename, str(content.get("evalue", ""))[:2000]))

    def _check_receipt(self, cell, index: int) -> None:
        receipts = self.receipts.pop(index, [])
        changed = sorted({str(item)[:120] for receipt in receipts for item in receipt.get("changed") or []})[:8]
        test = self.roles[index] == "test"
        if not receipts:
            note = "the grader's guard sent no report for this cell: code in the notebook changed the kernel's machinery"
            if test:
                cell.outputs.append(error_output("GraderGuard", note + ", so this test does not count"))
            self.review.append(f"{self.labels[index]}: {note}")
        elif changed:
            note = f"the notebook's code changed {', '.join(changed)} while this cell ran"
            if test:
                cell.outputs.append(error_output("GraderGuard", note + "; tests do not count while the test machinery is patched"))
            self.review.append(f"{self.labels[index]}: {note}")
        refused = sorted({str(item)[:200] for receipt in receipts for item in receipt.get("refused") or []})[:3]
        if refused:
            self.review.append(f"{self.labels[index]}: {refused[0]}")

    # ---------------------------------------------------------------- each message

    def process_message(self, msg, cell, cell_index):
        msg_type = str(msg.get("msg_type") or msg.get("header", {}).get("msg_type") or "")
        content = msg.get("content")
        if not isinstance(content, dict):
            return None
        if msg_type == "status":
            return super().process_message(msg, cell, cell_index)  # idle ends the cell
        if msg_type == "execute_input":
            return None
        size = len(json.dumps(content, default=str)) + sum(len(b) for b in msg.get("buffers") or [])
        self.notebook_bytes += size
        self.cell_bytes[cell_index] = self.cell_bytes.get(cell_index, 0) + size
        if msg_type == RECEIPT:
            if isinstance(content.get("changed"), list):
                self.receipts.setdefault(cell_index, []).append(content)
            return None
        if self._over_cap(cell, cell_index):
            if not _failure(msg_type, content) or cell_index in self.failed_past_cap:
                return None
            # a cell's failure is never dropped (one is enough), or flooding the output first
            # would make a test pass
            self.failed_past_cap.add(cell_index)
            msg = {**msg, "content": _shortened(msg_type, content)}
        if msg_type.startswith("comm"):
            return None
        if self.roles[cell_index] == "test" and msg_type in ("execute_result", "clear_output"):
            return None
        try:
            return super().process_message(msg, cell, cell_index)
        except CellExecutionComplete:
            raise
        except Exception:  # noqa: BLE001 -- a malformed message is dropped, never fatal
            self.log.warning("dropped a malformed %s message from the kernel", msg_type)
            return None

    def _over_cap(self, cell, cell_index: int) -> bool:
        if self.cell_bytes[cell_index] <= self.cell_output_bytes and self.notebook_bytes <= self.notebook_output_bytes:
            return False
        if cell_index not in self.capped:
            self.capped.add(cell_index)
            which = (f"the notebook's {self.notebook_output_bytes:,}" if self.notebook_bytes > self.notebook_output_bytes
                     else f"the cell's {self.cell_output_bytes:,}")
            cell.outputs.append(new_output("stream", name="stdout",
                                           text=f"[compatlab grader: output past {which} bytes was dropped]\n"))
        return True
