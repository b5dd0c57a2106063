"""The grading kernel's guard: the test machinery put back around every cell, the lesson's own
names restored for its tests, and a receipt for the runner after every cell.

A submission shares its kernel with the tests that grade it, so it can try to make them pass
without doing the work. The guard takes a snapshot when the kernel starts, before any notebook
code, of everything a test relies on that code could patch:

- the builtins, sys hooks (excepthook, displayhook, trace and profile functions, import hooks),
  the shell's and the kernel's classes, methods, handler tables, transformer lists, event
  callbacks and custom exception handler;
- the module attributes the tests use (`json.loads`, `np.allclose`: the runner lists them) and
  their entries in sys.modules;

and, as the lesson's own cells (setup, tests) run, the names they bind (`EngineError`,
`ENGINES`, `httpx`), the classes and functions they define, and the plain data they hold.

Before and after every cell the snapshot is put back, so a patch never outlives the cell that
made it. Before a test cell the lesson's names are rebound to the lesson's objects, and globals
that shadow builtins (`abs = ...`) are hidden; after it the learner's own bindings return.
After every cell the guard sends the runner a receipt on the iopub channel: what had changed
while the cell ran. The runner fails a test cell whose receipt reports a change, or that has
no receipt at all (code that silenced the guard).

It is a guard, not a wall: code in the same process can always reach it. What it cannot stop it
makes visible: a missing receipt fails the test, and the integrity scan flags such code.
"""

import builtins
import copy
import hashlib
import importlib
import os
import re
import signal
import sys
import sysconfig
import threading

from compatlab.grader import strict

RECEIPT = "compatlab_receipt"  # the iopub message type of a receipt
MISSING = object()
CACHES = {"__warningregistry__"}  # what Python itself writes into a module as it runs (warnings' cache)
# names IPython binds in the user namespace itself: never the lesson's, never shadows
IPYTHON_NAMES = re.compile(r"_+|_i+|_i\d+|_\d+|_[oi]h|_dh|In|Out|exit|quit|get_ipython")
PLAIN = (str, int, float, bool, type(None), bytes)


def _plain_data(value, depth: int = 0) -> bool:
    """JSON-like data (dicts, lists, tuples of plain values): safe to copy and compare."""
    if isinstance(value, PLAIN):
        return True
    if depth > 8:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, PLAIN) and _plain_data(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain_data(v, depth + 1) for v in value)
    return False


class Snapshot:
    """Attributes, class dictionaries and lists that must not change, and a way to put them back.

    Values are compared by identity, never by ==, which code under test could override."""

    def __init__(self) -> None:
        self.attributes: list[tuple[str, object, str, object]] = []  # label, owner, name, value
        self.classes: dict[type, dict] = {}
        self.instances: list[tuple[str, object, dict]] = []  # objects whose methods must not be shadowed
        self.items: list[tuple[str, dict, str, object]] = []  # label, mapping, key, value
        self.lists: list[tuple[str, list, list, object]] = []
        self.mappings: list[tuple[str, dict, dict]] = []
        self.functions: dict[object, tuple] = {}
        self.hooks: list[tuple[str, object, object, object]] = []  # label, getter, setter, value

    def add_attribute(self, label: str, owner, name: str) -> None:
        self.attributes.append((label, owner, name, getattr(owner, name, MISSING)))

    def add_hook(self, label: str, getter, setter) -> None:
        """A setting read and written through functions (sys.settrace, sys.gettrace)."""
        self.hooks.append((label, getter, setter, getter()))

    def add_item(self, label: str, mapping: dict, key: str) -> None:
        if not any(entry[0] == label for entry in self.items):
            self.items.append((label, mapping, key, mapping.get(key, MISSING)))

    def add_class(self, cls: type) -> None:
        if cls not in self.classes and cls is not object and cls is not type:
            self.classes[cls] = dict(vars(cls))

    def add_machinery(self, obj, label: str) -> None:
        """An object of the test machinery: its classes' methods and its own method slots."""
        for cls in type(obj).__mro__:
            if cls.__module__.split(".")[0] in ("IPython", "ipykernel", "jupyter_client", "compatlab"):
                self.add_class(cls)
        self.instances.append((label, obj, _method_slots(obj)))

    def add_list(self, label: str, items: list, adoptable=None) -> None:
        """adoptable(item): items the list may gain or lose freely (a library's own callbacks)."""
        self.lists.append((label, items, list(items), adoptable or (lambda item: False)))

    def add_mapping(self, label: str, items: dict) -> None:
        """label: how a changed key is named, with {} for the key (`builtins.{}`)."""
        self.mappings.append((label, items, dict(items)))

    def add_function(self, func) -> None:
        if hasattr(func, "__code__"):
            self.functions[func] = (func.__code__, func.__defaults__, func.__kwdefaults__)

    def changes(self) -> list[str]:
        found = [label for label, owner, name, value in self.attributes if getattr(owner, name, MISSING) is not value]
        found += [label for label, mapping, key, value in self.items if mapping.get(key, MISSING) is not value]
        found += [label for label, getter, _, value in self.hooks if getter() is not value]
        for cls, saved in self.classes.items():
            now = vars(cls)
            if any(now.get(key, MISSING) is not value for key, value in saved.items()):
                found.append(f"{cls.__qualname__} (a method or attribute replaced)")
            elif any(key not in saved and _shadows(cls, key, value) for key, value in now.items()):
                found.append(f"{cls.__qualname__} (a method added over an inherited one)")
        for label, obj, saved in self.instances:
            now = _method_slots(obj)
            if now.keys() != saved.keys() or any(now[name] is not value for name, value in saved.items()):
                found.append(f"{label} (a method replaced on the object)")
        for label, items, saved, adoptable in self.lists:
            now, then = [x for x in items if not adoptable(x)], [x for x in saved if not adoptable(x)]
            if len(now) != len(then) or any(a is not b for a, b in zip(now, then)):
                found.append(label)
        for label, items, saved in self.mappings:
            found += [label.format(key) for key in items.keys() - saved.keys() - CACHES]
            found += [label.format(key) for key, value in saved.items()
                      if key not in CACHES and items.get(key, MISSING) is not value]
        found += [f"{getattr(func, '__qualname__', func)}'s code" for func, state in self.functions.items()
                  if (func.__code__, func.__defaults__, func.__kwdefaults__) != state]
        return found

    def restore(self) -> None:
        for _, owner, name, value in self.attributes:
            try:
                if value is MISSING:
                    if hasattr(owner, name):
                        delattr(owner, name)
                elif getattr(owner, name, MISSING) is not value:
                    setattr(owner, name, value)
            except (AttributeError, TypeError):
                pass
        for _, getter, setter, value in self.hooks:
            if getter() is not value:
                setter(value)
        for _, mapping, key, value in self.items:
            if value is MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = value
        for cls, saved in self.classes.items():
            now = vars(cls)
            for key in [key for key, value in now.items() if key not in saved and _shadows(cls, key, value)]:
                delattr(cls, key)
            for key, value in saved.items():
                if now.get(key, MISSING) is not value:
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        pass
        for _, obj, saved in self.instances:
            for name in _method_slots(obj).keys() - saved.keys():
                del obj.__dict__[name]
            obj.__dict__.update(saved)
        for _, items, saved, adoptable in self.lists:
            items[:] = [x for x in saved if not adoptable(x)] + [x for x in items if adoptable(x)]
        for _, items, saved in self.mappings:  # key by key: other threads read these dicts meanwhile
            for key in items.keys() - saved.keys() - CACHES:
                items.pop(key, None)
            for key, value in saved.items():
                if key not in CACHES and items.get(key, MISSING) is not value:
                    items[key] = value
        for func, (code, defaults, kwdefaults) in self.functions.items():
            func.__code__, func.__defaults__, func.__kwdefaults__ = code, defaults, kwdefaults


LIBRARIES = tuple({sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib")})
# compatlab's own package, wherever it is installed: not "compatlab" anywhere in a path, which a
# classroom's venv, /opt/compatlab/venv, has in every library's
COMPATLAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _library_code(obj) -> bool:
    """Is obj (a function, a class or an instance) installed library code, not the notebook's
    and not compatlab's?"""
    code = getattr(obj, "__code__", None) or getattr(getattr(obj, "__func__", None), "__code__", None)
    if code is not None:
        filename = code.co_filename
    else:
        cls = obj if isinstance(obj, type) else type(obj)
        filename = getattr(sys.modules.get(cls.__module__), "__file__", None) or ""
    return filename.startswith(LIBRARIES) and not filename.startswith(COMPATLAB)


def _shadows(cls: type, name: str, value) -> bool:
    """Does a callable newly set on cls hide something a base class defines?"""
    return callable(value) and any(name in vars(base) for base in cls.__mro__[1:])


def _method_slots(obj) -> dict:
    """The object's own attributes that hide a method of its class (`kernel.do_execute = ...`)."""
    own = getattr(obj, "__dict__", None)
    if not isinstance(own, dict):
        return {}
    return {name: value for name, value in own.items() if callable(getattr(type(obj), name, None))}


class Guard:
    def __init__(self, shell, kernel, roles: dict[str, str]) -> None:
        self.shell, self.kernel = shell, kernel
        self.roles = roles  # sha256 of a cell's source -> "test" or "lesson" (the runner's list)
        self.pid = os.getpid()
        self.role = "student"
        self.snapshot = Snapshot()
        self.protected: dict[str, object] = {}  # names the lesson's own cells bound
        self.data: dict[str, object] = {}  # deep copies of the plain data among them
        self.stash: dict[str, object] = {}  # the learner's bindings, hidden while a test runs
        self.before: dict[str, object] = {}
        # saved bound methods: patching the session or the guard's class later does not reach them
        self._send, self._iopub, self._parent = kernel.session.send, kernel.iopub_socket, kernel.get_parent
        self._strict = getattr(builtins, strict.NAME)

    def take(self, watch: list[tuple[str, str]]) -> None:
        """The snapshot, once the guard's own callbacks are registered (they are part of it)."""
        snap, shell, kernel = self.snapshot, self.shell, self.kernel
        snap.add_item("sys.modules['builtins']", sys.modules, "builtins")
        snap.add_mapping("builtins.{}", vars(builtins))
        for name in ("excepthook", "displayhook", "stdout", "stderr", "breakpointhook", "unraisablehook"):
            snap.add_attribute(f"sys.{name}", sys, name)
        # a trace or profile function sees, and can change, every frame a test runs
        snap.add_hook("sys.settrace", sys.gettrace, sys.settrace)
        snap.add_hook("sys.setprofile", sys.getprofile, sys.setprofile)
        snap.add_hook("threading.settrace", threading.gettrace, threading.settrace)
        snap.add_hook("threading.setprofile", threading.getprofile, threading.setprofile)
        # importing some libraries adds their own import hooks: theirs may come and go
        snap.add_list("sys.meta_path", sys.meta_path, adoptable=_library_code)
        snap.add_list("sys.path_hooks", sys.path_hooks, adoptable=_library_code)
        for obj, label in ((shell, "the shell"), (kernel, "the kernel"), (shell.displayhook, "the display hook"),
                           (shell.display_pub, "the display publisher"), (kernel.session, "the session"),
                           (sys.stdout, "sys.stdout"), (sys.stderr, "sys.stderr"), (self, "the guard"),
                           (getattr(builtins, strict.NAME), "the strict comparisons")):
            snap.add_machinery(obj, label)
        for name in ("custom_exceptions", "CustomTB", "displayhook", "display_pub", "display_trap",
                     "input_transformer_manager", "compile", "user_ns"):
            snap.add_attribute(f"the shell's {name}", shell, name)
        for name in ("shell", "session", "iopub_socket", "shell_handlers", "control_handlers"):
            snap.add_attribute(f"the kernel's {name}", kernel, name)
        for name in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            snap.add_list(f"the shell's {name}", getattr(shell, name))
        manager = shell.input_transformer_manager
        for name in ("cleanup_transforms", "line_transforms", "token_transformers"):
            snap.add_list(f"the input transformer's {name}", getattr(manager, name))
        snap.add_mapping("the kernel's message handler {}", kernel.shell_handlers)
        snap.add_mapping("the kernel's control handler {}", kernel.control_handlers)
        snap.add_mapping("the shell's {} callbacks", shell.events.callbacks)
        for event, callbacks in shell.events.callbacks.items():
            # libraries register their own (matplotlib's inline backend: post_execute,
            # post_run_cell); code from the notebook may not
            snap.add_list(f"the {event} callbacks", callbacks, adoptable=_library_code)
        # the guard's and the strict checks' own code: their classes above, their functions here
        for module in (sys.modules[__name__], strict):
            snap.add_mapping(module.__name__ + ".{}", vars(module))
        for module_name, attribute in [*watch, ("dataclasses", "fields"), ("dataclasses", "is_dataclass")]:
            try:
                module = importlib.import_module(module_name)
            except Exception:  # noqa: BLE001 -- a test that needs it will say so itself
                continue
            snap.add_item(f"sys.modules[{module_name!r}]", sys.modules, module_name)
            snap.add_attribute(f"{module_name}.{attribute}", module, attribute)
            value = getattr(module, attribute, None)
            if isinstance(value, type):
                snap.add_class(value)
            elif callable(value):
                snap.add_function(value)

    # ---------------------------------------------------------------- around each cell

    def before_cell(self, info=None) -> None:
        self.snapshot.restore()
        source = getattr(info, "raw_cell", "") or ""
        self.role = self.roles.get(hashlib.sha256(source.encode()).hexdigest(), "student")
        if self.role != "student":
            self.before = dict(self.shell.user_ns)
        if self.role == "test":
            self._lesson_names_in()

    def after_cell(self, result=None) -> None:
        if os.getpid() != self.pid:
            # a child the notebook forked (os.fork()) has come back from the cell: it would go on
            # as a second kernel on the same sockets, so it ends here
            os._exit(0)
        _reap_a_crowd_of_dead_children()
        changed = self.snapshot.changes()
        self.snapshot.restore()
        if self.role != "student":
            self._protect_new_names()
        if self.role == "test":
            self._lesson_names_out()
        self._receipt(changed)
        self.role = "student"

    def _receipt(self, changed: list[str]) -> None:
        refused, self._strict.refused[:] = list(self._strict.refused[:5]), []
        try:
            self._send(self._iopub, RECEIPT, {"role": self.role, "changed": changed[:20], "refused": refused},
                       parent=self._parent("shell"), ident=b"compatlab.receipt")
        except Exception:  # noqa: BLE001 -- no receipt: the runner fails a test cell without one
            pass

    # ---------------------------------------------------------------- the lesson's own names

    def _protect_new_names(self) -> None:
        for name, value in self.shell.user_ns.items():
            if IPYTHON_NAMES.fullmatch(name) or self.before.get(name, MISSING) is value:
                continue
            self.protected[name] = value
            self.data.pop(name, None)
            if _plain_data(value) and not isinstance(value, PLAIN):
                self.data[name] = copy.deepcopy(value)
            elif isinstance(value, type) and value.__module__ == "__main__":
                self.snapshot.add_class(value)
            elif getattr(value, "__module__", None) == "__main__" and hasattr(value, "__code__"):
                self.snapshot.add_function(value)
        for name, value in self.protected.items():  # a test may change its own data
            if name in self.data and self.shell.user_ns.get(name) is value:
                self.data[name] = copy.deepcopy(value)

    def _lesson_names_in(self) -> None:
        """Before a test: the lesson's bindings and data back, builtin-named globals hidden."""
        ns, self.stash = self.shell.user_ns, {}
        for name, value in self.protected.items():
            current = ns.get(name, MISSING)
            if current is not value:
                self.stash[name] = current
                ns[name] = value
            # still plain data (nothing of the learner's inside), and equal: nothing to put back;
            # checked in that order, so != only ever compares plain values
            if name in self.data and (not _plain_data(value) or value != self.data[name]):
                _put_back(value, self.data[name])
        for name in [name for name in ns if name in vars(builtins) and name not in self.protected]:
            if not IPYTHON_NAMES.fullmatch(name):
                self.stash[name] = ns.pop(name)

    def _lesson_names_out(self) -> None:
        ns = self.shell.user_ns
        for name, value in self.stash.items():
            if ns.get(name, MISSING) is not self.protected.get(name, MISSING):
                continue  # the test itself bound the name anew: keep the test's
            if value is MISSING:
                ns.pop(name, None)
            else:
                ns[name] = value
        self.stash = {}


DEAD_CHILDREN = 16  # more than this many, and they came from a fork loop: reap them


def _reap_a_crowd_of_dead_children() -> None:
    """Dead children count against the kernel's process limit until reaped, and a fork bomb
    leaves hundreds: without a slot the kernel cannot start a thread for the next cell. A few
    are left alone, so subprocess and multiprocessing still collect their own children."""
    me, dead = os.getpid(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            dead.append(int(pid))
    if len(dead) > DEAD_CHILDREN:
        for pid in dead:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _forked_child() -> None:
    """In a child the notebook forks: an interrupt ends it at once (SIGINT's default action).
    ipykernel interrupts the kernel's whole process group; hundreds of forked copies of the
    kernel each formatting a traceback would starve the kernel itself."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except ValueError:  # forked from a thread other than the main one: nothing to change
        pass


def _put_back(target, saved) -> None:
    """Restore plain data in place, so anything holding the same object sees the lesson's data."""
    fresh = copy.deepcopy(saved)
    if isinstance(target, dict):
        target.clear()
        target.update(fresh)
    elif isinstance(target, list):
        target[:] = fresh


def install(shell, kernel, roles: dict[str, str], watch: list[tuple[str, str]]) -> Guard:
    setattr(builtins, strict.NAME, strict.Strict())  # what rewritten test cells call (strict.py)
    guard = Guard(shell, kernel, roles)
    os.register_at_fork(after_in_child=_forked_child)
    shell.events.register("pre_run_cell", guard.before_cell)
    shell.events.register("post_run_cell", guard.after_cell)
    guard.take(watch)
    return guard
