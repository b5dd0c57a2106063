"""`compatlab classroom up` and `compatlab classroom down`: the steps in order."""

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys

from compatlab.classroom import accounts, course_folder, exchange, hub, hub_config, install
from compatlab.classroom.paths import CHECK_SOCKET, EXCHANGE, HUB_CONFIG, OPT, PASSWORDS, ROSTER, STATE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_passwords() -> dict[str, str]:
    if not PASSWORDS.exists():
        return {}
    return dict(line.split(":", 1) for line in PASSWORDS.read_text().splitlines() if ":" in line)


def _write_private(path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(text)


def _ask(question: str) -> str:
    try:
        return input(question).strip().lower()
    except EOFError:  # no terminal to answer from
        return ""


def _needs_root() -> int | None:
    if os.geteuid() != 0:
        print("error: a classroom makes Unix accounts and runs the hub as root: run it as root", file=sys.stderr)
        return 2
    return None


def run_up(instructor: str, learners: list[str], port: int) -> int:
    if (code := _needs_root()) is not None:
        return code
    roster = json.loads(ROSTER.read_text()) if ROSTER.exists() else {}
    if roster and roster["instructor"] != instructor:
        print(f"error: this classroom's instructor is {roster['instructor']}; `classroom down` first to change it",
              file=sys.stderr)
        return 2
    people = [accounts.Account(instructor, "instructor")] + [accounts.Account(n, "learner") for n in learners]
    try:
        accounts.check_names([p.name for p in people])
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    STATE.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(STATE, 0o700)
    print(f"Installing the kit for every user in {OPT} …", flush=True)
    try:
        install.install()
        exchange.ensure()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    passwords = accounts.ensure(people, _read_passwords())
    _write_private(PASSWORDS, "".join(f"{name}:{pw}\n" for name, pw in sorted(passwords.items())))
    course, made = course_folder.ensure(instructor, people[0].home)
    print(f"The instructor's course folder: {course}" + ("" if made else " (kept as it was)"))
    every_learner = sorted(set(roster.get("learners", [])) | set(learners))
    if hub.running_pid() is None:
        ports = hub_config.Ports(public=port, hub=_free_port(), proxy_api=_free_port())
        _write_private(HUB_CONFIG, hub_config.render(instructor, str(course), ports))
        print("Starting JupyterHub …", flush=True)
        try:
            hub.start(port)
        except hub.HubError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        roster["ports"] = dataclasses.asdict(ports)
    _write_private(ROSTER, json.dumps({**roster, "instructor": instructor, "learners": every_learner}, indent=1))
    print(f"The classroom is up: http://127.0.0.1:{roster['ports']['public']}/ for {instructor} and "
          f"{len(every_learner)} learner(s); their passwords are in {PASSWORDS} (root's).")
    return 0


def run_down(remove: bool, yes: bool) -> int:
    if (code := _needs_root()) is not None:
        return code
    print("Stopped the hub, its proxy, servers and check service." if hub.stop() else "No hub was running.")
    if not remove:
        return 0
    doomed = accounts.ours()
    print("This deletes:\n"
          + "".join(f"  the account {name} and its home\n" for name in doomed)
          + f"  {OPT} (the kit, its venv, the proxy)\n  {EXCHANGE.parent} (the exchange: every submission and feedback)\n"
          + f"  {STATE} (the hub's database, the passwords)\n  {CHECK_SOCKET.parent} (the check service's socket)")
    if not yes and _ask("Delete all this? [y/N] ") != "y":
        print("Nothing deleted (--yes deletes without asking).")
        return 1
    accounts.remove(doomed)
    subprocess.run(["groupdel", accounts.GROUP], check=False, stderr=subprocess.DEVNULL)
    exchange.remove()
    for folder in (OPT, STATE, CHECK_SOCKET.parent):
        shutil.rmtree(folder, ignore_errors=True)
    print("Deleted.")
    return 0
