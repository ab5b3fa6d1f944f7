"""`python -m supportbot.core.healthcheck HOST:PORT [SERVICE] [--ca FILE]`: exits 0 when the
server answers SERVING on the standard gRPC health protocol (container health checks; an exec
probe where a server uses TLS, which Kubernetes' built-in gRPC probe does not speak)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, service: str = "", timeout_s: float = 3.0, root_certificates: bytes | None = None) -> bool:
    if root_certificates is None:
        channel = grpc.insecure_channel(address)
    else:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates))
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supportbot.core.healthcheck", description=__doc__)
    parser.add_argument("address", help="HOST:PORT of the gRPC server")
    parser.add_argument("service", nargs="?", default="", help="a service name; default: the whole server")
    parser.add_argument("--ca", type=Path, help="CA bundle: talk TLS and trust this CA")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    arguments = parser.parse_args(argv)
    roots = arguments.ca.read_bytes() if arguments.ca else None
    return 0 if check(arguments.address, arguments.service, arguments.timeout, roots) else 1


if __name__ == "__main__":
    sys.exit(main())
