"""A small asyncio TCP proxy that injects faults between two nodes: added latency,
refused connections (reset), a blackhole (accepts, never answers), a connection cut
after N bytes from upstream, and a byte flipped after N bytes. netem and toxiproxy are
not available on these machines, so the tests bring their own."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass


@dataclass
class Faults:
    latency_s: float = 0.0
    reset: bool = False  # every new connection is reset at once
    blackhole: bool = False  # connections are accepted and then ignored
    cut_after: int | None = None  # upstream bytes forwarded before the connection is cut
    corrupt_at: int | None = None  # upstream byte offset flipped (per connection)


class FaultProxy:
    """Listens on 127.0.0.1:<port> and forwards to ``target`` (host, port)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.faults = Faults()
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # End every connection now: a task left pending on the stopped loop would be
            # destroyed at garbage collection, inside some later test, and fail it.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self._ready.set()

        self.loop.run_until_complete(serve())
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        faults = self.faults
        if faults.reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            return
        if faults.blackhole:
            await asyncio.sleep(3600)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pump(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, upstream: bool
        ) -> None:
            sent = 0
            try:
                while data := await src.read(65536):
                    if faults.latency_s:
                        await asyncio.sleep(faults.latency_s)
                    if upstream and faults.corrupt_at is not None:
                        at = faults.corrupt_at - sent
                        if 0 <= at < len(data):
                            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
                    if upstream and faults.cut_after is not None:
                        room = faults.cut_after - sent
                        if room <= len(data):
                            dst.write(data[: max(0, room)])
                            await dst.drain()
                            raise ConnectionResetError("cut by the fault proxy")
                    dst.write(data)
                    await dst.drain()
                    sent += len(data)
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(
            pump(reader, up_writer, False), pump(up_reader, writer, True), return_exceptions=True
        )
