"""A minimal faucetconfrpc client, run *inside* a rig host (copied there by the experiments).

It speaks faucetconfrpc's gRPC service with its generated stubs (PyPI ``faucetconfrpc``), over
mutual TLS, with a deadline, and reports the gRPC status code instead of swallowing it (the
package's own ``FaucetConfRpcClient`` logs errors and returns None). Prints one JSON object.

    python rpc_client.py [--server faucetconfrpc:59999] [--certs /etc/faucetconfrpc] get [FILE]
    python rpc_client.py set FILE < yaml          (whole file, merge=false)
    python rpc_client.py dpnames | aclnames
    python rpc_client.py --no-client-cert get     (refused: the server requires a client certificate)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import grpc
from faucetconfrpc import faucetconfrpc_pb2 as pb
from faucetconfrpc import faucetconfrpc_pb2_grpc as pb_grpc


def stub(server: str, certs: Path, client_cert: bool = True) -> pb_grpc.FaucetConfServerStub:
    """A stub over mutual TLS; ``client_cert=False`` shows the server refusing a client without one."""
    if client_cert:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(certs / "ca.crt").read_bytes(),
            private_key=(certs / "client.key").read_bytes(),
            certificate_chain=(certs / "client.crt").read_bytes(),
        )
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.crt").read_bytes())
    return pb_grpc.FaucetConfServerStub(grpc.secure_channel(server, credentials))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default="faucetconfrpc:59999")
    parser.add_argument("--certs", type=Path, default=Path("/etc/faucetconfrpc"))
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--no-client-cert", action="store_true", help="connect without a client certificate")
    parser.add_argument("op", choices=["get", "set", "dpnames", "aclnames"])
    parser.add_argument("file", nargs="?", default="")
    args = parser.parse_args()
    server = stub(args.server, args.certs, client_cert=not args.no_client_cert)
    start = time.monotonic()
    result: dict = {"op": args.op, "file": args.file}
    try:
        if args.op == "get":
            reply = server.GetConfigFile(pb.GetConfigFileRequest(config_filename=args.file), timeout=args.timeout)
            result["yaml"] = reply.config_yaml
        elif args.op == "set":
            request = pb.SetConfigFileRequest(config_filename=args.file, config_yaml=sys.stdin.read(), merge=False)
            server.SetConfigFile(request, timeout=args.timeout)
        elif args.op == "dpnames":
            result["dp_names"] = list(server.GetDpNames(pb.GetDpNamesRequest(), timeout=args.timeout).dp_name)
        else:
            result["acl_names"] = list(server.GetAclNames(pb.GetAclNamesRequest(), timeout=args.timeout).acl_name)
        result["code"] = "OK"
    except grpc.RpcError as err:
        result["code"] = err.code().name
        result["details"] = err.details()
    result["seconds"] = round(time.monotonic() - start, 3)
    print(json.dumps(result))
    return 0 if result["code"] == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
