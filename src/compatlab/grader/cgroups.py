"""Memory and process limits for a whole sandbox, with control groups (as root).

rlimits apply to one process each (RLIMIT_AS) or to one user (RLIMIT_NPROC); a submission that
forks four children of 1.5 GB each stays under a 4 GB per-process cap. A control group counts
the sandbox as a whole: every process in it, and the files it writes to its tmpfs /tmp.

Both hierarchies are supported, whichever the machine mounts: cgroup v2 (one tree, `memory.max`,
`pids.max`, `cgroup.kill`) and v1 (a tree per controller, `memory.limit_in_bytes`, `pids.max`;
its processes are killed one by one). A group is made per sandbox, under the grader's own
group, and removed after it. Without root, or without the controllers, there is no group and
only the rlimits hold (README, "Grading safely").
"""

import os
import signal
import time
from pathlib import Path

MOUNTS = Path("/proc/self/mountinfo")
MEMBERSHIP = Path("/proc/self/cgroup")


def _mounts() -> dict[str, Path]:
    """Where each controller's hierarchy is mounted: {"memory": …, "pids": …} for v1, {"": …} for v2."""
    found = {}
    for line in MOUNTS.read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        mount, options = Path(fields[4]), fields[-1].split(",")
        if fstype == "cgroup2":
            found.setdefault("", mount)
        elif fstype == "cgroup":
            for controller in ("memory", "pids"):
                if controller in options:
                    found[controller] = mount
    return found


def _own_groups() -> dict[str, str]:
    """This process's group per hierarchy: {"memory": "/a/b", "pids": "/", "": "/x"}."""
    groups = {}
    for line in MEMBERSHIP.read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    return groups


class SandboxGroup:
    """One sandbox's control group(s): created with limits, joined by the sandbox's first
    process (`procs_files`), killed and removed at the end."""

    def __init__(self, folders: list[Path], version: int) -> None:
        self.folders, self.version = folders, version

    @classmethod
    def create(cls, name: str, memory_bytes: int, processes: int) -> "SandboxGroup | None":
        """None when this machine or user cannot make one (not root, no controllers)."""
        if os.geteuid() != 0:
            return None
        try:
            mounts, own = _mounts(), _own_groups()
            if "memory" in mounts and "pids" in mounts:
                return cls._v1(name, mounts, own, memory_bytes, processes)
            if "" in mounts:
                return cls._v2(name, mounts[""], memory_bytes, processes)
        except OSError:
            return None
        return None

    @classmethod
    def _v1(cls, name, mounts, own, memory_bytes, processes) -> "SandboxGroup":
        memory = mounts["memory"] / own.get("memory", "/").lstrip("/") / name
        pids = mounts["pids"] / own.get("pids", "/").lstrip("/") / name
        group = cls([memory, pids], 1)
        for folder in group.folders:
            folder.mkdir()
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():  # no swap either
            (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (pids / "pids.max").write_text(str(processes))
        return group

    @classmethod
    def _v2(cls, name, mount: Path, memory_bytes, processes) -> "SandboxGroup | None":
        # a process may only live in a leaf, and the grader's own group has processes: the
        # sandbox groups go under the root, whose controllers root can enable
        enabled = (mount / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(enabled):
            (mount / "cgroup.subtree_control").write_text("+memory +pids")
        folder = mount / name
        folder.mkdir()
        group = cls([folder], 2)
        (folder / "memory.max").write_text(str(memory_bytes))
        if (folder / "memory.swap.max").exists():
            (folder / "memory.swap.max").write_text("0")
        (folder / "pids.max").write_text(str(processes))
        return group

    def procs_files(self) -> list[str]:
        return [str(folder / "cgroup.procs") for folder in self.folders]

    def out_of_memory(self) -> bool:
        """Did the kernel's OOM killer act in this group?"""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in (self.folders[0] / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def kill(self) -> None:
        if self.version == 2 and (self.folders[0] / "cgroup.kill").exists():
            (self.folders[0] / "cgroup.kill").write_text("1")
            return
        for _ in range(50):  # v1: no cgroup.kill; a fork between reading and killing needs another round
            pids = [int(p) for p in (self.folders[0] / "cgroup.procs").read_text().split()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill()
        for folder in self.folders:
            for _ in range(100):  # the last processes take a moment to leave
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
