# An error validator that checks message and type and nothing else: llama-server's error
# object, which has no `param`, passes, and so does a `code` of any type.

# %% is_openai_error
def is_openai_error(status, body):
    if status < 400 or not isinstance(body, dict):
        return False
    error = body.get("error")
    return isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)
