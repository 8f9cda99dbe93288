"""A gRPC client nobody on this project wrote (Python grpcio), for tests.

Usage: raw_grpc.py TARGET CALLS_JSON, where CALLS_JSON is a list of
{"method": "/pkg.Service/Method", "body": "<hex protobuf>", "metadata": [[k, v], ...]}.
Each call is a unary call with raw bytes (no generated code); prints one
JSON list of {"method", "code", "details", "body"} with grpc's status names.
"""
import json
import sys

import grpc


def main():
    target, calls = sys.argv[1], json.loads(sys.argv[2])
    out = []
    with grpc.insecure_channel(target) as channel:
        for c in calls:
            call = channel.unary_unary(c["method"])
            try:
                body = call(
                    bytes.fromhex(c.get("body", "")),
                    metadata=[tuple(m) for m in c.get("metadata", [])],
                    timeout=5,
                )
                out.append({"method": c["method"], "code": "OK", "details": "", "body": body.hex()})
            except grpc.RpcError as e:
                out.append({"method": c["method"], "code": e.code().name, "details": e.details()})
    print(json.dumps(out))


main()
