"""Benchmark the Twilio channel's three ways to send against a local provider that answers each
message after --latency seconds; prints a Markdown table.

    python bench/channels.py [--messages 3000] [--latency 0.2] [--schemes http https]

The provider (aiohttp's web server, in its own process, on uvloop when installed) speaks
Twilio's Messages API, keeps connections alive and counts the TCP connections it accepted;
over HTTPS its certificate is signed by a throwaway trustme CA that the client trusts through
SSL_CERT_FILE and REQUESTS_CA_BUNDLE. Side by side in the same run, for each scheme:

- SDK create, 100 threads: `client.messages.create` (the Twilio SDK over requests), as `send`
  did before the thin client;
- send, 100 threads: `TwilioChannel.send`, one POST through requests' kept-alive pool;
- send_async, 500 in flight: `TwilioChannel.send_async` on one event loop, concurrency 500.

Each way warms up first (its connections opened); then sends/s is messages over the wall
time, CPU per send this process's CPU (every thread's; the provider runs in another process)
over the messages, and connections opened what the provider accepted during the run. Medians
of --rounds alternating rounds.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests
from engine import markdown

from nurture.channels.config import TwilioConfig
from nurture.channels.protocol import OutgoingMessage
from nurture.channels.twilio import TwilioChannel

ACCOUNT = "AC" + "1" * 32
SENDER = "+15550001111"


def serve(port: int, latency: float, cert: str | None, key: str | None) -> None:
    """The provider: answers a message after `latency`, counts connections (GET /connections)."""
    import ssl

    from aiohttp import web

    seen: set[object] = set()  # every connection's transport (kept: no id is reused)
    new = [0]

    async def message(request: web.Request) -> web.Response:
        if request.transport not in seen:
            seen.add(request.transport)
            new[0] += 1
        await request.post()
        await asyncio.sleep(latency)
        return web.json_response({"sid": "SM" + uuid.uuid4().hex, "status": "queued"}, status=201)

    async def connections(request: web.Request) -> web.Response:
        count, new[0] = new[0], 0
        return web.json_response({"connections": count})

    app = web.Application()
    app.router.add_post(f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json", message)
    app.router.add_get("/connections", connections)
    context = None
    if cert and key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None, backlog=1024)


@contextmanager
def provider(latency: float, tls: bool, folder: Path) -> Iterator[str]:
    """The provider in its own process for the block; its base URL."""
    from servers import free_port

    port, options = free_port(), []
    if tls:
        import trustme

        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1")
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
        issued.private_key_pem.write_to_path(str(folder / "key.pem"))
        options = ["--cert", str(folder / "cert.pem"), "--key", str(folder / "key.pem")]
    command = [sys.executable, __file__, "serve", str(port), str(latency), *options]
    process = subprocess.Popen(command)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        _wait_for(url, folder / "ca.pem" if tls else None)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _wait_for(url: str, ca: Path | None) -> None:
    for _ in range(200):
        try:
            requests.get(f"{url}/connections", verify=str(ca) if ca else True, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"the provider at {url} did not start")


def messages(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(channel="sms", recipient=f"+1555{i:07d}", body="Hi", key=f"{i}:hi:1")
        for i in range(count)
    ]


def channel(url: str, concurrency: int) -> TwilioChannel:
    fields = {"account_sid": ACCOUNT, "auth_token": "token", "sms_from": SENDER, "api_url": url}
    return TwilioChannel(TwilioConfig(**fields, timeout=30, concurrency=concurrency), "sms")


def in_threads(send: Callable[[OutgoingMessage], object], batch: list[OutgoingMessage]) -> None:
    with ThreadPoolExecutor(100) as senders:
        list(senders.map(send, batch))


Run = Callable[[list[OutgoingMessage]], None]


def sdk(sms: TwilioChannel) -> tuple[Run, Callable[[], None]]:
    create = sms.client.messages.create
    return lambda batch: in_threads(lambda m: create(**sms.parameters(m)), batch), lambda: None


def thin(sms: TwilioChannel) -> tuple[Run, Callable[[], None]]:
    return lambda batch: in_threads(sms.send, batch), lambda: None


def on_the_loop(sms: TwilioChannel) -> tuple[Run, Callable[[], None]]:
    """Every batch on one long-lived loop, as the engine runs it (its connections kept)."""
    loop = asyncio.new_event_loop()

    async def send_all(batch: list[OutgoingMessage]) -> None:
        await asyncio.gather(*(sms.send_async(m) for m in batch))

    def close() -> None:
        loop.run_until_complete(sms.aclose())
        loop.close()

    return lambda batch: loop.run_until_complete(send_all(batch)), close


WAYS = {
    "SDK create, 100 threads": (sdk, 256),
    "send, 100 threads": (thin, 256),
    "send_async, 500 in flight": (on_the_loop, 500),
}


def measure(url: str, way: str, count: int, ca: Path | None) -> tuple[float, float, int]:
    """Sends/s, CPU seconds per send and connections opened, for `count` messages."""
    make, concurrency = WAYS[way]
    run, close = make(channel(url, concurrency))
    run(messages(min(concurrency, count)))  # warm: connections open, code loaded
    _connections(url, ca)
    wall, cpu = time.perf_counter(), time.process_time()
    run(messages(count))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    opened = _connections(url, ca)
    close()
    return count / wall, cpu / count, opened


def rounds(url: str, count: int, ca: Path | None, times: int) -> list[dict[str, str]]:
    """Each way `times` times, alternating; the medians."""
    results: dict[str, list[tuple[float, float, int]]] = {way: [] for way in WAYS}
    for _ in range(times):
        for way in WAYS:
            results[way].append(measure(url, way, count, ca))
            print(way, results[way][-1], file=sys.stderr)
    return [
        {
            "scheme": url.partition(":")[0],
            "way": way,
            "sends/s": f"{statistics.median(r[0] for r in done):,.0f}",
            "CPU per send": f"{statistics.median(r[1] for r in done) * 1000:.2f} ms",
            "connections opened": str(max(r[2] for r in done)),
        }
        for way, done in results.items()
    ]


def _connections(url: str, ca: Path | None) -> int:
    answer = requests.get(f"{url}/connections", verify=str(ca) if ca else True, timeout=5)
    return int(answer.json()["connections"])


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        port, latency = int(sys.argv[2]), float(sys.argv[3])
        cert = sys.argv[sys.argv.index("--cert") + 1] if "--cert" in sys.argv else None
        key = sys.argv[sys.argv.index("--key") + 1] if "--key" in sys.argv else None
        return serve(port, latency, cert, key)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--schemes", nargs="+", default=["http", "https"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for scheme in args.schemes:
            tls = scheme == "https"
            ca = Path(folder) / "ca.pem" if tls else None
            with provider(args.latency, tls, Path(folder)) as url:
                if ca:
                    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(ca)
                rows += rounds(url, args.messages, ca, args.rounds)
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(
        f"{args.messages} messages a round, medians of {args.rounds} alternating rounds, "
        f"provider latency {args.latency * 1000:.0f} ms; load average {load}\n"
    )
    print(markdown(rows))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    main()
