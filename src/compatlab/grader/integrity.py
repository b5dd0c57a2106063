"""The integrity scan: code in a learner's cells that reaches into the grader, flagged for review.

Tests run in the learner's own kernel, so a determined submission can reach the machinery that
scores it. The guard (guard.py) undoes and reports what it can see; this scan reads the code
itself and names, by cell and line, the constructs that have no business in an answer here:
the kernel's internals (`get_ipython()`, its history `In`/`_ih`), interpreter hooks
(`sys.displayhook`, `sys.settrace`, `sys._getframe`, frame objects, `inspect.currentframe`),
`ctypes`, `gc`, writes to builtins, to attributes of imported modules (`np.allclose = ...`) or
to the lesson's own objects (`ENGINES[...] = ...`), signal handlers and `os.kill`, and code
built at run time (`exec`, `eval`). A flag never changes a score: it puts the submission in
the "needs review" list of the table, grades.csv and the report, for a person to read.

It is a scan, not a proof: code can be obfuscated past it, and honest code can trip it.
"""

import ast
import builtins
from dataclasses import dataclass

MODULES = {"ctypes": "ctypes (raw memory)", "_ctypes": "ctypes (raw memory)", "cffi": "cffi (raw memory)",
           "gc": "gc (finds any object, the grader's too)", "linecache": "linecache (the tests' source)",
           "ipykernel": "the kernel's own package", "IPython": "IPython's internals",
           "jupyter_client": "the kernel's protocol", "zmq": "the kernel's sockets",
           "compatlab.grader": "the grader's own code"}
ATTRIBUTES = {
    "_getframe": "reads the interpreter's frames", "f_back": "walks up the call stack",
    "f_locals": "reads another frame's variables", "f_globals": "reads another frame's globals",
    "f_code": "reads another frame's code", "tb_frame": "walks a traceback's frames", "gi_frame": "reads a frame",
    "cr_frame": "reads a frame", "ag_frame": "reads a frame", "co_consts": "reads compiled code's constants",
    "__code__": "touches compiled code", "__globals__": "reaches a function's globals",
    "__closure__": "reaches a function's closure", "__builtins__": "touches the builtins",
    "__subclasses__": "searches every class", "currentframe": "reads the interpreter's frames",
    "getouterframes": "walks the call stack", "getinnerframes": "walks the call stack",
    "extract_stack": "walks the call stack", "walk_stack": "walks the call stack",
    "displayhook": "touches the display hook (what nbgrader reads as partial credit)",
    "excepthook": "touches the exception hook", "settrace": "installs a trace function",
    "setprofile": "installs a profile function", "meta_path": "installs an import hook",
    "path_hooks": "installs an import hook", "set_custom_exc": "replaces the kernel's error handling",
    "custom_exceptions": "replaces the kernel's error handling", "CustomTB": "replaces the kernel's error handling",
    "showtraceback": "touches the kernel's error display", "do_execute": "touches the kernel's execution",
    "shell_handlers": "touches the kernel's message handlers", "input_transformer_manager": "rewrites later cells",
    "input_transformers_cleanup": "rewrites later cells", "input_transformers_post": "rewrites later cells",
    "ast_transformers": "rewrites later cells", "display_pub": "touches the kernel's display publisher",
    "iopub_socket": "touches the kernel's output channel", "user_ns": "touches the kernel's namespace",
    "history_manager": "reads the kernel's history",
}
HISTORY = {"In", "Out", "_ih", "_oh", "_i", "_ii", "_iii", "_dh"}
# module functions that read the call stack or source code: the tests' own lines, as they run
STACK_READERS = {"inspect": {"stack", "trace", "currentframe", "getouterframes", "getinnerframes", "getframeinfo",
                             "getsource", "getsourcelines", "findsource", "getblock", "getlineno"},
                 "traceback": {"extract_stack", "format_stack", "print_stack", "walk_stack", "extract_tb",
                               "format_tb", "print_tb", "walk_tb", "StackSummary"},
                 "linecache": {"getline", "getlines", "cache", "updatecache", "checkcache"}}
DISGUISES = {"__module__": "sets __module__ in a class: disguises where the class was defined",
             "__class__": "sets __class__ in a class: makes isinstance() see another class",
             "__qualname__": "sets __qualname__ in a class: disguises the class"}
CALLS = {"exec": "runs code built at run time", "eval": "runs code built at run time",
         "compile": "compiles code at run time", "__import__": "imports by a computed name",
         "breakpoint": "starts a debugger"}
SIGNAL_CALLS = {"signal", "setitimer", "alarm", "pthread_kill", "siginterrupt", "set_wakeup_fd"}
MUTATORS = {"update", "clear", "pop", "popitem", "setdefault", "append", "extend", "insert", "remove", "sort",
            "reverse", "add", "discard", "__setitem__", "__delitem__", "__setattr__"}
SETTINGS = {"rcParams", "options", "style"}  # plotting and display settings: writing them is ordinary


@dataclass(frozen=True)
class Finding:
    cell: str  # the cell's grade_id, or "cell N"
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.cell} line {self.line}: {self.what}" if self.line else f"{self.cell}: {self.what}"


def scan(notebook, learner_cells: set[int], lesson_names: set[str], released: frozenset[str] = frozenset(),
         test_names: frozenset[str] = frozenset()) -> list[Finding]:
    """Findings in the learner's code cells (by index); lesson_names are what the lesson's own
    cells bind, test_names what its test cells read; a line that is in the released lesson as it
    stands (`released`, stripped lines) is the lesson's own code, not the learner's. Module
    aliases come from every import."""
    sources = {i: cell.source for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    parsed, too_deep = {}, set()
    for i, source in sources.items():
        try:
            parsed[i] = _parse_with_offset(source)
        except TooDeep:
            too_deep.add(i)
    trees = {i: tree for i, (tree, _) in parsed.items() if tree}
    module_of = {alias: module for tree in trees.values() for alias, module in _module_aliases(tree).items()}
    modules = set(module_of)
    findings = []
    for index in sorted(learner_cells & (trees.keys() | too_deep)):
        cell = notebook.cells[index]
        label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        if index in too_deep:  # a cell built to be too deep for the scan is itself a finding
            findings.append(Finding(label, 0, "the scan could not read this cell: it nests too deeply"))
            continue
        raw_lines = sources[index].splitlines()
        shadowable = test_names & (lesson_names | set(vars(builtins)))
        offset = parsed[index][1]
        visitor = _Visitor(module_of, lesson_names - modules, raw_lines, shadowable, offset)
        try:
            visitor.visit(trees[index])
        except RecursionError:
            findings.append(Finding(label, 0, "the scan could not read this cell: it nests too deeply"))
            continue
        findings += [Finding(label, line, what) for line, what in sorted(set(visitor.found))
                     if not (0 < line <= len(raw_lines) and raw_lines[line - 1].strip()
                             and raw_lines[line - 1].strip() in released)]
    return findings


def lesson_bindings(sources: list[str]) -> set[str]:
    """The names the lesson's own cells bind at top level: assignments, defs, classes, imports."""
    names = set()
    for source in sources:
        tree = _parse(source)
        for node in tree.body if tree else []:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((alias.asname or alias.name.split(".")[0]) for alias in node.names)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def names_read(sources: list[str]) -> frozenset[str]:
    """Every name the cells read (the test cells: what a learner must not rebind)."""
    return frozenset(n.id for source in sources if (tree := _parse(source))
                     for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))


class TooDeep(Exception):
    """Python's own parser or the scan ran out of recursion on this cell."""


def _parse(source: str) -> ast.Module | None:
    try:
        return _parse_with_offset(source)[0]
    except TooDeep:
        return None


def _parse_with_offset(source: str) -> tuple[ast.Module | None, int]:
    """The cell's syntax tree, and how many lines to add to its line numbers to find them in
    the source: 0, unless IPython had to rewrite the cell (magics), dropping leading blank lines."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(source), 0
    except (SyntaxError, ValueError):
        pass
    except (RecursionError, MemoryError):
        raise TooDeep from None
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None, 0
    except (RecursionError, MemoryError):
        raise TooDeep from None
    blank = 0
    for line in source.splitlines():
        if line.strip():
            break
        blank += 1
    return tree, blank


def _module_aliases(tree: ast.Module) -> dict[str, str]:
    """{name in the notebook: the module it names}, from every `import` (builtins and sys too)."""
    aliases = {"builtins": "builtins", "sys": "sys"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
    return aliases


def _bound_names(statement: ast.stmt) -> set[str]:
    """The names one top-level statement binds."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {alias.asname or alias.name.split(".")[0] for alias in statement.names}
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, (ast.AnnAssign, ast.AugAssign, ast.For)) else []
    return {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}


def _local_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """A function's parameters and the names it assigns, minus those it declares global."""
    names = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}
    declared_global = set()
    pending = list(func.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)  # its body is a scope of its own
            continue
        if isinstance(node, ast.Global):
            declared_global.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        if not isinstance(node, ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))
    return names - declared_global


def _root(node: ast.AST) -> tuple[str | None, list[str]]:
    """The name an attribute or subscript chain starts from, and the attributes on the way."""
    attrs = []
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        if isinstance(node, ast.Attribute):
            attrs.append(node.attr)
        node = node.func if isinstance(node, ast.Call) else node.value
    return (node.id if isinstance(node, ast.Name) else None), attrs[::-1]


class _Visitor(ast.NodeVisitor):
    def __init__(self, module_of: dict[str, str], lesson_names: set[str], raw_lines: list[str], shadowable: set[str],
                 offset: int) -> None:
        self.module_of, self.modules = module_of, set(module_of)
        self.lesson_names, self.raw_lines, self.offset = lesson_names, raw_lines, offset
        self.shadowable = shadowable  # names the tests read that the lesson or Python defines
        self.found: list[tuple[int, str]] = []
        self.scopes: list[set[str]] = []  # the local names of the functions we are inside

    def _global(self, name: str | None, among: set[str]) -> bool:
        """Is `name` one of `among` here, not a local variable that happens to share its name?"""
        return name in among and not any(name in scope for scope in self.scopes)

    def visit_Module(self, node: ast.Module) -> None:
        for statement in node.body:  # top level only: a local of the same name shadows nothing
            for name in _bound_names(statement):
                if name in self.shadowable:
                    self.flag(statement, f"rebinds {name}, which the tests use (they are given the lesson's own)")
        self.generic_visit(node)

    def visit_FunctionDef(self, node) -> None:
        self.scopes.append(_local_names(node))
        self.generic_visit(node)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.scopes.append({a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)})
        self.generic_visit(node)
        self.scopes.pop()

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0) + self.offset, what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._flag_module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module:
            self._flag_module(node, node.module)
            for alias in node.names:
                if alias.name in STACK_READERS.get(node.module, ()) or (node.module == "inspect" and alias.name in ATTRIBUTES):
                    self.flag(node, f"imports {node.module}.{alias.name}: reads the call stack or source code")

    def _flag_module(self, node: ast.AST, module: str) -> None:
        for name, why in MODULES.items():
            if module == name or module.startswith(name + "."):
                self.flag(node, f"imports {module}: {why}")

    def visit_Name(self, node: ast.Name) -> None:
        number = node.lineno + self.offset
        line = self.raw_lines[number - 1] if 0 < number <= len(self.raw_lines) else ""
        if node.id == "get_ipython" and "get_ipython" in line:  # a magic's rewrite has no such text
            self.flag(node, "calls get_ipython(): reaches into the kernel")
        elif node.id in HISTORY or (node.id.startswith("_i") and node.id[2:].isdigit()):
            self.flag(node, f"reads {node.id}: the kernel's history holds the tests' source")
        elif node.id == "__builtins__":
            self.flag(node, "touches __builtins__")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ATTRIBUTES:
            self.flag(node, f".{node.attr}: {ATTRIBUTES[node.attr]}")
        elif isinstance(node.value, ast.Name) and self._global(node.value.id, self.modules):
            module = self.module_of[node.value.id]
            if node.attr in STACK_READERS.get(module, ()):
                self.flag(node, f"{module}.{node.attr}: reads the call stack or source code (the tests' own lines)")
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            for name in _bound_names(statement) & DISGUISES.keys():
                self.flag(statement, DISGUISES[name])
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in CALLS:
            self.flag(node, f"{func.id}(): {CALLS[func.id]}")
        if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr", "setattr", "delattr") \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in HISTORY:
            self.flag(node, f"reads {node.args[1].value} by name: the kernel's history holds the tests' source")
        if isinstance(func, ast.Name) and func.id in ("setattr", "delattr") and node.args:
            root, _ = _root(node.args[0])
            if self._global(root, self.modules) or self._global(root, self.lesson_names):
                self.flag(node, f"{func.id}() on {root}: changes what the tests use")
        if isinstance(func, ast.Attribute):
            root, attrs = _root(func)
            if self._global(root, {"signal"}) and func.attr in SIGNAL_CALLS:
                self.flag(node, f"signal.{func.attr}(): installs signal handling")
            elif self._global(root, {"os"}) and func.attr in ("kill", "killpg"):
                self.flag(node, f"os.{func.attr}(): signals other processes")
            elif self._global(root, self.lesson_names) and func.attr in MUTATORS and len(attrs) == 1:
                self.flag(node, f"{root}.{func.attr}(): changes {root}, which the lesson defined")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.slice, ast.Constant) and node.slice.value in HISTORY:
            self.flag(node, f"reads {node.slice.value} by name: the kernel's history holds the tests' source")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ("globals", "vars"):
                self.flag(node, f"writes through {value.func.id}(): changes names behind the tests' back")
        self.generic_visit(node)

    def _targets(self, node: ast.AST, targets: list[ast.AST]) -> None:
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, (ast.Attribute, ast.Subscript)) and isinstance(part.ctx, (ast.Store, ast.Del)):
                    root, attrs = _root(part)
                    if root is None or SETTINGS & set(attrs):
                        continue
                    where = ".".join([root, *attrs]) + ("[...]" if isinstance(part, ast.Subscript) else "")
                    if self._global(root, self.modules):
                        self.flag(node, f"changes {where}, an attribute of a module the tests may use")
                    elif self._global(root, self.lesson_names):
                        self.flag(node, f"changes {where}, which the lesson defined")

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node, node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets(node, [node.target])
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets(node, [node.target])
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node, node.targets)
        self.generic_visit(node)
