# A structured-output checker that probes only the non-streamed path: an engine that drops the
# schema, or cuts JSON at a stop string, only when streaming passes.

# %% check_structured
def check_structured(base_url, model):
    json_object = {"type": "json_object"}
    probes = [("json_object", json_object, None, {}), ("json_object, stop=[',', '}']", json_object, None,
                                                       {"stop": [",", "}"]})]
    for name, schema in TRICKY_SCHEMAS.items():
        response_format = {"type": "json_schema", "json_schema": {"name": name.strip("$"), "schema": schema}}
        probes.append((f"json_schema {name}", response_format, schema, {}))
    findings = []
    for label, response_format, schema, extra in probes:
        exchange = chat(base_url, model, response_format=response_format, **extra)
        expected = "valid against the schema" if schema else "a JSON object"
        ok = False
        if exchange.status == 200:
            try:
                value = json.loads(exchange.contents().get(0, ""))
            except ValueError:
                value = ok = False
            else:
                ok = schema_errors(value, schema) == [] if schema else isinstance(value, dict)
        findings.append(Finding(label, expected, describe(exchange), ok))
    return findings
