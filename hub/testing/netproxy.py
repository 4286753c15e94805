"""A TCP proxy whose connections can be cut at once: how tests and `hub chaos` simulate a
network failure between the hub and RabbitMQ without touching the broker.

    proxy = TcpProxy("127.0.0.1", 5672)      # listen on 127.0.0.1:<proxy.port>
    ...                                       # point the hub at amqp://...@127.0.0.1:<proxy.port>/
    proxy.cut()                               # every open connection drops; new ones still work
"""
from __future__ import annotations

import socket
import threading

class TcpProxy:
    """Forwards a local port to ``target``; `cut` drops every open connection at once.

    Used to prove that the RabbitMQ adapter survives a network cut and reconnects.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)  # the timeout was for connecting; idle links stay up
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> int:
        """Drop every connection through the proxy; returns how many sockets were cut."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        return len(sockets)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()
