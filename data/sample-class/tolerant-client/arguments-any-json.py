# Arguments decoded, but never checked to be an object: a list, a number or arguments encoded
# twice (a JSON string holding JSON) come back as if they were arguments.

# %% tool_arguments
def tool_arguments(raw):
    if isinstance(raw, dict):
        return raw
    if raw is None or not str(raw).strip():
        return {}
    try:
        return json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise EngineError(f"tool arguments are not valid JSON ({exc}): {raw}", detail=str(raw)) from None
