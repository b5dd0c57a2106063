# A report of violations only: the passing checks are dropped, so a conformant engine gets an
# empty table, and nobody can tell "passed" from "never checked".

# %% report
def check_errors(base_url, model, embed_model):
    missing = "no-such-model:latest"
    probes = [("unknown model", chat(base_url, missing)),
              ("unknown model (streamed)", chat(base_url, missing, stream=True)),
              ("unknown embedding model", post(base_url, "/embeddings", {"model": missing, "input": "hi"}))]
    return [Finding(label, "404 with an OpenAI error", describe(exchange),
                    exchange.status == 404 and is_openai_error(exchange.status, exchange.body))
            for label, exchange in probes]


def conformance_report(base_url, model, embed_model=EMBED_MODEL):
    findings = [*check_params(base_url, model), *check_structured(base_url, model),
                *check_embeddings(base_url, embed_model), *check_choices(base_url, model),
                *check_errors(base_url, model, embed_model)]
    return table([finding for finding in findings if not finding.ok])
