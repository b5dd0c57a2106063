"""Attack code shared by the tests that grade it (test_guard.py, test_hostile.py)."""

# The body of a learner's function that ends the running cell itself, as far as a runner that
# trusted the kernel could tell: a clean receipt, an idle status and an execute_reply, sent on
# the kernel's own sockets. Found by an attacker's review of the grader.
FORGED_END = '''import sys
kernel = sys.modules["ipykernel.kernelapp"].IPKernelApp.instance().kernel
parent, ident = kernel.get_parent("shell"), kernel._parent_ident["shell"]
iopub = getattr(kernel, "iopub" + "_socket")
kernel.session.send(iopub, "compatlab" + "_receipt", {"role": "test", "changed": [], "refused": []}, parent=parent)
kernel.session.send(iopub, "status", {"execution_state": "idle"}, parent=parent)
shell = kernel.shell_channel_thread.manager.get_subshell_to_shell_channel_socket(None)
kernel.session.send(shell, "execute_reply", {"status": "ok", "execution_count": kernel.execution_count,
                                             "user_expressions": {}, "payload": []}, parent, ident=ident)
return "not implemented"'''
