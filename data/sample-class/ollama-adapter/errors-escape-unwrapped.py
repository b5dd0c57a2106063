# A stream that handles what the engine says but not what the network does: httpx's
# ConnectError, ReadTimeout and RemoteProtocolError reach the caller unwrapped, and a stream
# that ends without its done frame passes as complete.

# %% ollama_adapter
class OllamaAdapter(AIAdapter):
    """Ollama's native chat API behind the AIAdapter interface."""

    def __init__(self, base_url, model, *, connect_timeout=2.0, read_timeout=30.0):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.connect_timeout = connect_timeout  # for the TCP connection: a local daemon is instant
        self.read_timeout = read_timeout  # between two bytes: covers a model load before the first

    def __repr__(self):
        return f"OllamaAdapter({self.base_url!r}, {self.model!r})"

    def health_check(self, timeout=1.0):
        try:
            return httpx.get(f"{self.base_url}/api/version", timeout=timeout).status_code == 200
        except httpx.HTTPError:  # refused, timed out, reset: all mean "not healthy"
            return False

    def list_models(self):
        url = f"{self.base_url}/api/tags"
        try:
            response = httpx.get(url, timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise OllamaUnavailable(f"cannot connect: {exc}", url=url) from exc
        except httpx.HTTPError as exc:
            raise OllamaProtocolError(f"{type(exc).__name__}: {exc}", url=url) from exc
        if response.status_code >= 400:
            raise OllamaServerError(response.text, url=url, status=response.status_code)
        return [model["name"] for model in response.json()["models"]]

    def stream(self, messages, tools=None, **opts):
        url = f"{self.base_url}/api/chat"
        where = {"url": url, "model": self.model}
        body = {"model": self.model, "messages": messages, "stream": True, "options": opts}
        if tools:
            body["tools"] = tools
        with httpx.Client(timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout)) as client:
            with client.stream("POST", url, json=body) as response:
                if response.status_code >= 400:  # Ollama's words are in the body's "error" field
                    response.read()
                    try:
                        message = response.json()["error"]
                    except (ValueError, KeyError, TypeError):
                        message = response.text
                    raise OllamaServerError(message, status=response.status_code, **where)
                for line in response.iter_lines():
                    yield to_chunk(parse_line(line, **where))
