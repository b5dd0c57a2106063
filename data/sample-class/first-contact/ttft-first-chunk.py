# Time to the first chunk, whatever it carries: llama-server's role-only opening chunk counts.

# %% ttft
def ttft(chunks):
    chunks = list(chunks)
    return chunks[0][0] if chunks else None
