# A stdio MCP server written as many small Python servers are: print() to a pipe, never flushed.
# Python block-buffers a stdout that is not a terminal, so its answers reach the pipe only because
# the sidecar gives its children PYTHONUNBUFFERED=1; without it every call would hang.
#
#   python3 test/peers/stdio-python-server.py
import json
import sys

for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue  # a notification
    method = message.get("method")
    if method == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "python-print-server", "version": "1.0.0"},
        }
    elif method == "tools/list":
        result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        text = "python says " + message["params"].get("arguments", {}).get("message", "")
        result = {"content": [{"type": "text", "text": text}]}
    else:
        error = {"code": -32601, "message": "Method not found"}
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "error": error}))
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}))
