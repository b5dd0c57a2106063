# A range checker that counts any error status as a refusal: a 500 (which clients retry, so
# the bad request is sent again) and a 400 that is not an OpenAI error both pass.

# %% check_params
def check_params(base_url, model):
    refused = [{"temperature": -0.1}, {"temperature": 2.1}, {"top_p": -0.1}, {"top_p": 1.1},
               {"frequency_penalty": -2.1}, {"frequency_penalty": 2.1},
               {"presence_penalty": -2.1}, {"presence_penalty": 2.1},
               {"n": 0}, {"n": 2, "best_of": 1}]
    accepted = [{"temperature": 0}, {"temperature": 2}, {"top_p": 0}, {"top_p": 1},
                {"frequency_penalty": -2}, {"frequency_penalty": 2},
                {"presence_penalty": -2}, {"presence_penalty": 2},
                {"n": 1}, {"n": 1, "best_of": 2}]
    findings = []
    for params, accept in [*((p, False) for p in refused), *((p, True) for p in accepted)]:
        for stream in (False, True):
            exchange = chat(base_url, model, max_tokens=5, stream=stream, **params)
            label = ", ".join(f"{key}={value}" for key, value in params.items()) + (" (streamed)" if stream else "")
            if accept:
                findings.append(Finding(label, "200", describe(exchange), exchange.status == 200))
            else:
                findings.append(Finding(label, "an error", describe(exchange), exchange.status >= 400))
    return findings
