"""A seccomp filter for the sandbox: system calls student code has no use for, refused.

The sandbox's users are per worker, not per student, and a few kernel facilities keep state
per user rather than per namespace: the kernel keyrings (`add_key`, `request_key`, `keyctl`)
would carry data from one student's sandbox to the next one on the same worker. Others are
kernel attack surface a notebook never needs: `bpf`, `perf_event_open`, `userfaultfd`, and
`unshare`/`setns` (new namespaces inside the sandbox). They fail with EPERM.

bubblewrap takes the filter as a compiled classic-BPF program on a file descriptor
(`--seccomp FD`); it is built here by hand, for x86-64 and AArch64. System calls of another
architecture (32-bit calls on x86-64, the x32 ABI) are refused outright, so they cannot be
used to get around the list. On other machines there is no filter (README, "Grading safely").
"""

import errno
import os
import platform
import struct

# (audit architecture, {name: number}) from the kernel's syscall tables
TABLES = {
    "x86_64": (0xC000003E, {"add_key": 248, "request_key": 249, "keyctl": 250, "bpf": 321, "perf_event_open": 298,
                            "userfaultfd": 323, "unshare": 272, "setns": 308}),
    "aarch64": (0xC00000B7, {"add_key": 217, "request_key": 218, "keyctl": 219, "bpf": 280, "perf_event_open": 241,
                             "userfaultfd": 282, "unshare": 97, "setns": 268}),
}
X32_BIT = 0x40000000
LOAD, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
ALLOW, DENY = 0x7FFF0000, 0x00050000 | errno.EPERM  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO(EPERM)


def _op(code: int, k: int, true: int = 0, false: int = 0) -> bytes:
    return struct.pack("HBBI", code, true, false, k)


def program() -> bytes | None:
    """The filter for this machine's architecture, or None where there is no table."""
    if platform.machine() not in TABLES:
        return None
    arch, calls = TABLES[platform.machine()]
    numbers = sorted(calls.values())
    deny_at = 4 + len(numbers) + 1  # the index of the final "deny"
    ops = [_op(LOAD, 4),  # seccomp_data.arch
           _op(JEQ, arch, 0, deny_at - 2),  # another architecture: deny
           _op(LOAD, 0)]  # seccomp_data.nr
    ops.append(_op(JGE, X32_BIT, deny_at - 4, 0))
    for i, number in enumerate(numbers):
        ops.append(_op(JEQ, number, deny_at - (5 + i), 0))
    ops += [_op(RET, ALLOW), _op(RET, DENY)]
    return b"".join(ops)


def descriptor() -> int | None:
    """A file descriptor holding the program, for bwrap's --seccomp; the caller closes it."""
    code = program()
    if code is None:
        return None
    read, write = os.pipe()
    os.write(write, code)
    os.close(write)
    return read
