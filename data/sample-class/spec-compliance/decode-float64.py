# np.frombuffer without a dtype reads float64, numpy's default: eight bytes per number, so a
# float32 vector decodes to half as many values, all wrong (or fails when the byte count is not
# a multiple of eight). The check itself is right, so it reports every engine as broken.

# %% embeddings
def decode_embedding(b64):
    return np.frombuffer(base64.b64decode(b64)).tolist()


def check_embeddings(base_url, model):
    inputs = ["The quick brown fox.", "jumps over the lazy dog"]
    floats = post(base_url, "/embeddings", {"model": model, "input": inputs, "encoding_format": "float"})
    packed = post(base_url, "/embeddings", {"model": model, "input": inputs, "encoding_format": "base64"})
    findings = []
    for index in range(len(inputs)):
        label = f"base64 embedding {index}"
        expected = "little-endian float32, equal to the float list"
        try:
            reference = floats.body["data"][index]["embedding"]
            decoded = decode_embedding(packed.body["data"][index]["embedding"])
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            findings.append(Finding(label, expected, f"{floats.status}/{packed.status} {exc!r}", False))
            continue
        same = len(decoded) == len(reference) and bool(np.allclose(decoded, reference, rtol=1e-6, atol=1e-7))
        findings.append(Finding(label, expected, f"{len(decoded)} values vs {len(reference)}", same))
    return findings
