"""Where a classroom lives on the machine. Fixed paths, so `down` finds what `up` made."""

from pathlib import Path

# Root's alone (0700): the hub's database, cookie secret, pid file, its config, the passwords.
STATE = Path("/var/lib/compatlab-classroom")
PASSWORDS = STATE / "passwords.txt"  # name:password a line, 0600: the instructor reads it as root
HUB_CONFIG = STATE / "jupyterhub_config.py"
HUB_PID = STATE / "jupyterhub.pid"
HUB_LOG = STATE / "jupyterhub.log"
ROSTER = STATE / "roster.json"  # who is the instructor, who learns, the ports

# Everyone's, read-only: the kit without answers, its venv, the proxy.
OPT = Path("/opt/compatlab")
KIT = OPT / "kit"
VENV = OPT / "venv"
PROXY = OPT / "proxy"
CHP = PROXY / "node_modules" / ".bin" / "configurable-http-proxy"

# The check service's Unix socket, in a folder only root can write: no learner can answer in its
# place (and collect the tokens check() sends) while it is down, as on a loopback port.
CHECK_SOCKET = Path("/run/compatlab-classroom/check.sock")

# nbgrader's exchange: everyone writes (1777, root's); nbgrader sets the modes below it.
EXCHANGE = Path("/srv/compatlab/exchange")
COURSE_ID = "compatlab"
