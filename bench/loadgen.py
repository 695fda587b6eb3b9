"""A lean HTTP/1.1 load generator: `python -m bench.loadgen --url ... --clients N --duration S`.

Closed loop: each of N clients keeps one keep-alive connection and sends its next request as soon as the
previous answer arrives. It is plain asyncio sockets with a minimal response parser (no httpx per
request), so it spends far less CPU per request than the server it measures; its own CPU time is reported
(`client_cpu_ms_per_request`) so the reader can see what it took from the 2 shared cores. It runs in its own
process. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from urllib.parse import urlsplit

from bench.harness import summary_ms


def build_request(method: str, url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive", "Accept: application/json"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep_alive) after consuming one whole response."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split(b" ", 2)[1])
    length = None
    chunked = False
    keep_alive = True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            keep_alive = False
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep_alive


async def run(
    url: str,
    method: str,
    body: bytes,
    headers: dict[str, str],
    clients: int,
    duration: float,
    warmup: float,
    identities: list[dict[str, str]] | None = None,
) -> dict:
    """`identities`: extra headers per client (client i uses identities[i % len]), e.g. its own user and address."""
    host, port, _ = build_request(method, url, body, headers)
    requests = [build_request(method, url, body, {**headers, **extra})[2] for extra in identities or [{}]]
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = {"count": 0, "kinds": {}}

    async def client(request: bytes) -> None:
        reader = writer = None
        while loop.time() < stop_at:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                t0 = loop.time()
                writer.write(request)
                status, keep_alive = await read_response(reader)  # type: ignore[arg-type]
                t1 = loop.time()
                if t0 >= measure_from and t1 <= stop_at:
                    latencies.append(t1 - t0)
                    statuses[status] = statuses.get(status, 0) + 1
                    if status >= 400:
                        errors["count"] += 1
                if not keep_alive:
                    writer.close()
                    reader = writer = None
            except (OSError, ValueError, asyncio.IncompleteReadError, ConnectionError) as exc:
                if loop.time() >= measure_from:
                    errors["count"] += 1
                    kind = type(exc).__name__
                    errors["kinds"][kind] = errors["kinds"].get(kind, 0) + 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.05)
        if writer is not None:
            writer.close()

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(client(requests[i % len(requests)]) for i in range(clients)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    done = len(latencies)
    ok = sum(n for s, n in statuses.items() if s < 400)
    return {
        "clients": clients,
        "duration_s": duration,
        "requests": done,
        "ok": ok,
        "requests_per_s": round(ok / duration, 1),
        "latency": summary_ms(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors["count"],
        "error_kinds": errors["kinds"],
        "client_cpu_ms_per_request": round(cpu * 1000 / max(done, 1), 3),
        "client_cpu_share_of_one_core": round(cpu / (duration + warmup), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="")
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--identities", help="a JSON file: a list of header objects, one per client (cycled)")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    identities = json.loads(open(args.identities, encoding="utf-8").read()) if args.identities else None
    started = time.monotonic()
    result = asyncio.run(
        run(args.url, args.method, args.body.encode(), headers, args.clients, args.duration, args.warmup, identities)
    )
    result["wall_s"] = round(time.monotonic() - started, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
