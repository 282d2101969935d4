"""A real MCP server (the official Python SDK, streamable HTTP) for the Envoy end-to-end
test host-tests/envoy/tests/mcp.rs. It knows nothing about tokens: actwarden in Envoy
decides who may call what.

    python server.py PORT [json]
"""
import sys

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


app.run(transport="streamable-http", host="127.0.0.1", port=port, json_response=json_response)
