"""The classroom's Unix accounts: one instructor and the learners, each a real user with a home.

LocalProcessSpawner runs every server as its user's UID, and nbgrader's exchange keeps learners
apart by UID, so every person needs an /etc/passwd entry. Ours are tagged twice: the GECOS field
says "compatlab classroom" and they belong to the group `compatlab-classroom`, which is also
what the hub lets in (PAMAuthenticator.allowed_groups). `classroom down --remove` deletes only
accounts with both tags; `up` refuses a name that exists without them.
"""

import grp
import pwd
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

GROUP = "compatlab-classroom"
GECOS = "compatlab classroom"
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")


class AccountError(ValueError):
    """A name that cannot be, or must not be, a classroom account."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str  # "instructor" or "learner"

    @property
    def home(self) -> Path:
        return Path(pwd.getpwnam(self.name).pw_dir)


def read_learners(spec: str) -> list[str]:
    """`--learners alice,bob` or `--learners @file` (one name a line; # comments)."""
    if spec.startswith("@"):
        lines = Path(spec[1:]).read_text().splitlines()
        names = [line.split("#", 1)[0].strip() for line in lines]
    else:
        names = [name.strip() for name in spec.split(",")]
    return list(dict.fromkeys(name for name in names if name))


def check_names(names: list[str]) -> None:
    """Refuse names that are not safe as Unix users, and existing accounts that are not ours."""
    problems = [f"{name!r} is not a valid account name (want {NAME.pattern})" for name in names
                if not NAME.match(name)]
    problems += [f"{name!r} is an existing account that compatlab did not create; choose another name"
                 for name in names if NAME.match(name) and exists(name) and not is_ours(name)]
    if problems:
        raise AccountError("; ".join(problems))


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def is_ours(name: str) -> bool:
    """Both tags: our GECOS and membership of our group."""
    try:
        entry = pwd.getpwnam(name)
        members = grp.getgrnam(GROUP).gr_mem
    except KeyError:
        return False
    return entry.pw_gecos.split(",")[0] == GECOS and name in members


def ours() -> list[str]:
    """Every account tagged as ours, e.g. for `down --remove`."""
    try:
        members = grp.getgrnam(GROUP).gr_mem
    except KeyError:
        return []
    return [name for name in members if is_ours(name)]


def ensure(accounts: list[Account], passwords: dict[str, str]) -> dict[str, str]:
    """Create the accounts that are missing, each with a fresh password (set with chpasswd for
    PAM); existing ones keep theirs. Returns every account's password that we know."""
    check_names([a.name for a in accounts])
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", GROUP], check=True)
    created = {}
    for account in accounts:
        if exists(account.name):
            continue
        # -m: a real home (the spawner cannot set HOME; jupyter needs ~/.local), 0700 by -K
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", GECOS,
                        "--groups", GROUP, "-K", "HOME_MODE=0700", account.name], check=True)
        created[account.name] = secrets.token_urlsafe(12)
    if created:
        lines = "".join(f"{name}:{password}\n" for name, password in created.items())
        subprocess.run(["chpasswd"], input=lines, text=True, check=True)
    return {**passwords, **created}


def remove(names: list[str]) -> None:
    """Delete accounts and their homes: only those tagged as ours."""
    for name in names:
        if not is_ours(name):
            raise AccountError(f"{name!r} was not created by compatlab: left alone")
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)  # its processes, by owner
        subprocess.run(["userdel", "--remove", name], check=True, stderr=subprocess.DEVNULL)
