"""faucetconfrpc client: a FAUCET config directory on another host, over gRPC with mutual TLS.

Only two calls are used: ``GetConfigFile`` and ``SetConfigFile`` with ``merge=false`` (this host's
file is written whole, never merged into another host's). Every call has a deadline, and every
failure is a ``StoreError`` naming the server and gRPC's code: the package's own client logs and
returns None, with no deadline (docs/multi-host.md §2), so it is not used.

The generated stubs come from the ``faucetconfrpc`` package, installed without its dependencies
(it pins a FAUCET fork that cannot share a venv with FAUCET 1.10.12) beside ``grpcio`` and
``protobuf``; they are imported on first use, so a single-host install never needs them.

Two things the server does that callers must know: it stores the YAML it re-dumps, not the bytes
sent (``get`` after ``put`` tells what a file became), and it does not refuse a file that breaks
the tree when the file is not faucet.yaml: validate before ``put``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dovecote.reconciler.config_store import StoreError

DEFAULT_TIMEOUT = 10.0
MISSING = ("No such file", "FileNotFoundError")
"""What the server's error details say for a file that does not exist (it answers UNKNOWN)."""


class RpcStore:
    """FAUCET's config directory behind a faucetconfrpc server."""

    def __init__(self, address: str, ca: str, cert: str, key: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.files = (ca, cert, key)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._stub: Any = None
        self._channel: Any = None

    def describe(self) -> str:
        return f"faucetconfrpc {self.address}"

    error_source = "faucetconfrpc"

    def _client(self) -> tuple[Any, Any]:
        """The stub and the request types, connecting on first use (certificates read then)."""
        try:
            import grpc
            from faucetconfrpc import faucetconfrpc_pb2 as pb
            from faucetconfrpc import faucetconfrpc_pb2_grpc as pb_grpc
        except ImportError as exc:
            raise StoreError(
                f"{self.describe()}: the faucetconfrpc client is not installed ({exc}): pip install grpcio "
                "protobuf, then pip install --no-deps faucetconfrpc (docs/multi-host.md)"
            ) from exc
        with self._lock:
            if self._stub is None:
                ca, cert, key = self.files
                try:
                    credentials = grpc.ssl_channel_credentials(
                        root_certificates=Path(ca).read_bytes(),
                        private_key=Path(key).read_bytes(),
                        certificate_chain=Path(cert).read_bytes(),
                    )
                except OSError as exc:
                    raise StoreError(f"{self.describe()}: cannot read the TLS certificates: {exc}") from exc
                self._channel = grpc.secure_channel(self.address, credentials)
                self._stub = pb_grpc.FaucetConfServerStub(self._channel)
            return self._stub, pb

    def _call(self, what: str, method: str, request: Any) -> Any:
        import grpc

        stub, _ = self._client()
        try:
            return getattr(stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as err:
            code = err.code().name if err.code() is not None else "UNKNOWN"
            raise StoreError(f"{self.describe()}: {what}: {code}: {err.details()}") from err

    def get(self, name: str) -> str | None:
        _, pb = self._client()
        try:
            reply = self._call(f"GetConfigFile {name}", "GetConfigFile", pb.GetConfigFileRequest(config_filename=name))
        except StoreError as exc:
            if any(m in str(exc) for m in MISSING):
                return None
            raise
        return str(reply.config_yaml)

    def put(self, name: str, text: str) -> None:
        _, pb = self._client()
        request = pb.SetConfigFileRequest(config_filename=name, config_yaml=text, merge=False)
        self._call(f"SetConfigFile {name}", "SetConfigFile", request)

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = self._stub = None
