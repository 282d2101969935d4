"""The official MCP Python SDK client, talking to an MCP server through Envoy with a
bearer token. Prints one JSON object with what each step gave.

    python client.py URL TOKEN
"""
import asyncio
import json
import sys

from mcp import ClientSession

from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def describe(e):
    parts = [f"{type(e).__name__}: {e}"]
    for sub in getattr(e, "exceptions", []) or []:
        parts.append(describe(sub))
    return " | ".join(parts)


async def main(url, token):
    headers = {"Authorization": f"Bearer {token}"}
    out = {}
    client = create_mcp_http_client(headers=headers)
    async with client, streamable_http_client(url, http_client=client) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            for label, args in [("small", {"amount": 50, "currency": "EUR"}),
                                ("large", {"amount": 5000, "currency": "EUR"})]:
                try:
                    r = await session.call_tool("create_payment", args)
                    text = " ".join(c.text for c in r.content if hasattr(c, "text"))
                    out[label] = {"ok": not r.is_error, "text": text}
                except Exception as e:  # the gateway's refusal reaches the client as an error
                    out[label] = {"ok": False, "error": describe(e)}
    print(json.dumps(out))


try:
    asyncio.run(main(sys.argv[1], sys.argv[2]))
except BaseException as e:  # noqa: BLE001 - report everything to the Rust test
    print(json.dumps({"fatal": describe(e)}))
