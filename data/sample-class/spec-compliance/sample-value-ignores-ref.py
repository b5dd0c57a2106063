# A generator that handles enum, const, anyOf/oneOf and minItems but never follows a $ref:
# a referenced schema has no `type` of its own, so the value is null.

# %% sample_value
def sample_value(schema, root=None):
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return sample_value(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        properties = schema.get("properties", {})
        names = [*properties, *(name for name in schema.get("required", []) if name not in properties)]
        return {name: sample_value(properties.get(name, {})) for name in names}
    if kind == "array":
        return [sample_value(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 0))
    if kind in ("integer", "number"):
        value = schema.get("minimum", schema.get("maximum", 0))
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None
