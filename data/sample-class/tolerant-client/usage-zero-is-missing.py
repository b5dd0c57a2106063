# Token counts read with `or`: a count of 0 is falsy, so it falls through to the next name and
# ends as None (or as another field's number).

# %% read_usage
def read_usage(usage):
    if not usage:
        return None
    details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    return Usage(prompt_tokens=usage.get("prompt_tokens") or usage.get("input_tokens") or usage.get("prompt_eval_count"),
                 completion_tokens=usage.get("completion_tokens") or usage.get("output_tokens") or usage.get("eval_count"),
                 reasoning_tokens=details.get("reasoning_tokens") or None)
