"""A TCP proxy in front of the store's server that a test cuts and restores: a store outage."""

import contextlib
import socket
import threading


class Proxy:
    """A TCP forwarder from 127.0.0.1:`port` to `target` that a test can cut (open connections
    dropped, new ones closed at once: a store that went away) and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.open, self.lock = target, threading.Event(), threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
