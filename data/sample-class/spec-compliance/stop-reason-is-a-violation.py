# A choices checker that treats vLLM's stop_reason as a violation of the spec: every vLLM
# deployment fails a check that a strict client (the SDK included) never trips over.

# %% check_choices
def check_choices(base_url, model):
    findings = []
    whole = chat(base_url, model, n=2, max_tokens=8)
    indexes = sorted(choice.get("index") for choice in (whole.body or {}).get("choices", [])) \
        if whole.status == 200 else []
    findings.append(Finding("n=2", "choices 0 and 1", f"{whole.status} choices {indexes}", indexes == [0, 1]))
    streamed = chat(base_url, model, n=2, max_tokens=8, stream=True)
    reasons = streamed.finish_reasons() if streamed.status == 200 else {}
    ok = sorted(reasons) == [0, 1] and all(reasons.values())
    findings.append(Finding("n=2 (streamed)", "choices 0 and 1, each finished", f"{streamed.status} {reasons}", ok))
    best = chat(base_url, model, n=1, best_of=2, max_tokens=8)
    count = len((best.body or {}).get("choices", [])) if best.status == 200 else 0
    findings.append(Finding("n=1, best_of=2", "one choice", f"{best.status} {count} choices", count == 1))
    extra = chat(base_url, model, max_tokens=8, top_k=20, repetition_penalty=1.1)
    ok = extra.status == 200 or (extra.status == 400 and is_openai_error(extra.status, extra.body))
    findings.append(Finding("extra parameters top_k, repetition_penalty", "200, or 400 with an OpenAI error",
                            describe(extra), ok))
    client = openai.OpenAI(base_url=base_url, api_key="lab", max_retries=0, timeout=10)
    try:
        reply = client.chat.completions.create(model=model, messages=HELLO, max_tokens=8, stop=["engine"])
    except openai.APIError as exc:
        findings.append(Finding("stop_reason", "only OpenAI's fields", f"{type(exc).__name__}: {exc}"[:120], False))
        return findings
    extras = [choice.model_extra or {} for choice in reply.choices]
    ok = not any("stop_reason" in extra for extra in extras)
    findings.append(Finding("stop_reason", "only OpenAI's fields", str(extras), ok))
    return findings
