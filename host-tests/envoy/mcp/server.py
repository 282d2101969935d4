"""A real MCP server (the official Python SDK, streamable HTTP) for the Envoy end-to-end
test host-tests/envoy/tests/mcp.rs. It knows nothing about tokens: actwarden in Envoy
decides who may call what.

    python server.py PORT [json]

Every request that reaches it is recorded (method, path, the `x-agent-*` headers, the
JSON-RPC method and name, the test's `x-test-mark`), and `GET /_record` (asked directly,
not through Envoy) returns the record as JSON: what the upstream really saw. A request
with `x-test-answer: garbage` or `x-test-answer: big` is answered by the recorder itself
with a 200 `application/json` body that is not JSON, or is 20000 bytes of JSON, to test
the gateway's tools/list filtering.
"""
import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

port = int(sys.argv[1])
json_response = len(sys.argv) > 2 and sys.argv[2] == "json"
app = MCPServer("payments")


@app.tool()
def create_payment(amount: float, currency: str) -> str:
    """Pay someone."""
    return f"paid {amount} {currency}"


@app.tool()
def get_invoice(invoice_id: str) -> str:
    """Read an invoice."""
    return f"invoice {invoice_id}"


@app.tool()
def admin_reset() -> str:
    """Nobody may call this."""
    return "reset"


RECORD = []


async def respond(send, status, content_type, body):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def recording(inner):
    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        if scope["path"] == "/_record":
            return await respond(send, 200, b"application/json", json.dumps(RECORD).encode())
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        entry = {"method": scope["method"], "path": scope["path"],
                 "agent": {k: v for k, v in headers.items() if k.startswith("x-agent-")},
                 "mark": headers.get("x-test-mark")}
        try:
            rpc = json.loads(body)
            entry["rpc"] = rpc.get("method")
            entry["name"] = (rpc.get("params") or {}).get("name")
        except (ValueError, AttributeError):
            pass
        RECORD.append(entry)
        answer = headers.get("x-test-answer")
        if answer == "garbage":
            return await respond(send, 200, b"application/json", b'{"jsonrpc": "2.0", "id": 7, "resu')
        if answer == "big":
            tools = [{"name": f"tool_{i}", "description": "x" * 100} for i in range(160)]
            doc = {"jsonrpc": "2.0", "id": 7, "result": {"tools": tools}}
            return await respond(send, 200, b"application/json", json.dumps(doc).encode())
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await inner(scope, replay, send)

    return asgi


starlette_app = app.streamable_http_app(json_response=json_response)
uvicorn.run(recording(starlette_app), host="127.0.0.1", port=port, log_level="warning")
