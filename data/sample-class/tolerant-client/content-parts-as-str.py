# Content is assumed to be a string: a list of parts becomes its Python repr, and a number
# passes as text.

# %% content_text
def content_text(content):
    return "" if content is None else str(content)
