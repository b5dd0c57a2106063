"""The hub's configuration, written from one template with every value explained. Each fact about
JupyterHub below was read in jupyterhub 6.1.1's source (file names given)."""

import json
from dataclasses import dataclass

from compatlab.classroom.accounts import GROUP
from compatlab.classroom.paths import CHECK_SOCKET, CHP, HUB_PID, KIT, STATE, VENV

TEMPLATE = '''\
# Written by `compatlab classroom up` (src/compatlab/classroom/hub_config.py); rewritten at each
# `up` when the hub is not running. Runs as root: LocalProcessSpawner switches to each user.
c = get_config()  # noqa: F821

# Loopback only: app.py's default ip is '' (every interface). The hub's own API (hub_port) and
# the proxy's API get free loopback ports too, so a second hub on the machine cannot collide.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
# npm's configurable-http-proxy, installed in a folder of its own: an absolute command, so the
# hub never looks for a global one (proxy.py's default is the bare name on PATH).
c.ConfigurableHTTPProxy.command = {chp}

# The hub's state beside this file, root's alone (0700): otherwise they land in the working folder.
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/jupyterhub_cookie_secret"  # the hub refuses one others can read
c.JupyterHub.pid_file = {pid}  # `classroom down` stops the hub by it

# Real Unix passwords through PAM (set by `up` with chpasswd). Whoever is in the group
# {group} may log in, so a learner added by a later `up` needs no restart
# (LocalAuthenticator.allowed_groups, auth.py). Nobody is a hub admin: an admin could open
# every learner's server.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.allowed_groups = {{{group}}}

# One process per user under their own UID: nbgrader's exchange keeps learners apart by UID
# (SimpleLocalProcessSpawner would run everyone as one).
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = {singleuser}
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = c.Spawner.start_timeout = 120  # JupyterLab's first start on 2 cores
# The hub runs from root's environment: LocalProcessSpawner would pass its PATH, PYTHONPATH and
# VIRTUAL_ENV on (env_keep, spawner.py), which point into /root. Keep only the locale.
c.LocalProcessSpawner.env_keep = ["LANG", "LC_ALL"]
c.Spawner.environment = {{"PATH": {path}}}

INSTRUCTOR = {instructor}
BY_ROLE = {{
    # the course folder (solutions, hidden tests, gradebook): COMPATLAB_COURSE for compatlab
    "instructor": {instructor_env},
    # the learner's JupyterLab (no formgrader, no course list, no news) and check()'s grader
    "learner": {learner_env},
}}


def by_role(spawner):
    role = "instructor" if spawner.user.name == INSTRUCTOR else "learner"
    spawner.environment = {{**spawner.environment, **BY_ROLE[role]}}


c.Spawner.pre_spawn_hook = by_role

{service}'''

SERVICE = '''\
# check() in a learner's notebook posts it here: the service grades it with the hidden tests,
# which learners cannot read. It runs as root (the hub's user), so each check gets the grader's
# own sandbox users, control group and slots, and reads a copy of the instructor's course made
# for that check. It listens on a Unix socket in a folder only root can write, so no learner can
# take its place; it asks the hub whose token each caller sent. No "url": the proxy has nothing
# to route. The hub starts it, restarts it if it stops, and stops it with the hub (services/service.py).
c.JupyterHub.services = [{{
    "name": "compatlab-check",
    "command": [{compatlab}, "check-service", "--socket", "{socket}"],
    "environment": {service_env},
}}]
'''


@dataclass(frozen=True)
class Ports:
    public: int  # where people log in
    hub: int  # the hub's API, for servers and services
    proxy_api: int


def render(instructor: str, course: str, ports: Ports) -> str:
    path = f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin"
    compatlab = f"{VENV}/bin/compatlab"
    learner_env = {"JUPYTER_CONFIG_PATH": f"{KIT}/src/compatlab/learner_config",
                   "COMPATLAB_CHECK_URL": f"unix:{CHECK_SOCKET}"}
    service = SERVICE.format(socket=CHECK_SOCKET, compatlab=q(compatlab),
                             service_env=q({"COMPATLAB_COURSE": course, "PATH": path}))
    return TEMPLATE.format(
        port=ports.public, hub_port=ports.hub, proxy_api_port=ports.proxy_api, chp=q([str(CHP)]), state=STATE,
        pid=q(str(HUB_PID)), group=q(GROUP), singleuser=q([f"{VENV}/bin/jupyterhub-singleuser"]), path=q(path),
        instructor=q(instructor), instructor_env=q({"COMPATLAB_COURSE": course}), learner_env=q(learner_env),
        service=service)


def q(value) -> str:
    """A value as Python source (JSON's strings, lists and dicts are Python's too)."""
    return json.dumps(value)
