# A raw REPL for the MicroPython unix port over TCP, so that mpremote (which drives a board
# through its raw REPL, `mpremote connect socket://127.0.0.1:PORT ...`) can work on the unix
# port as on a board: the unix port's own REPL has no raw mode. Runs under the unix port:
#     micropython repl_server.py PORT    -> prints "listening", serves one connection, exits
# The protocol is the board's: Ctrl-A enters raw mode ("raw REPL; CTRL-B to exit\r\n>"),
# code up to Ctrl-D is run and answered "OK", its output, \x04, its error, \x04, ">"; Ctrl-D
# on an empty line is a soft reset (fresh globals); raw-paste mode (Ctrl-E A Ctrl-A) is
# declined ("R\x00"), so mpremote falls back to plain raw mode.
import io
import socket
import sys

BANNER = b"raw REPL; CTRL-B to exit\r\n>"


class Output:
    def __init__(self):
        self.buf = io.StringIO()

    def print(self, *args, sep=" ", end="\n"):
        self.buf.write(sep.join(str(a) for a in args) + end)


def run(code, env):
    out = Output()
    env["print"] = out.print
    err = io.StringIO()
    try:
        exec(code, env)
    except BaseException as e:  # noqa: B902 (the board reports every exception)
        sys.print_exception(e, err)
    return out.buf.getvalue().encode(), err.getvalue().encode()


def serve(conn):
    raw = False
    code = bytearray()
    env = {"__name__": "__main__"}
    pending = b""
    while True:
        data = pending or conn.recv(4096)
        pending = b""
        if not data:
            return
        for i in range(len(data)):
            c = data[i]
            if not raw:
                if c == 1:
                    raw = True
                    code = bytearray()
                    conn.send(BANNER)
                continue
            if c == 1:
                code = bytearray()
                conn.send(BANNER)
            elif c == 2:
                raw = False
                conn.send(b"\r\n>>> ")
            elif c == 3:
                code = bytearray()
            elif c == 5:
                # raw-paste request: Ctrl-E 'A' Ctrl-A; declined
                pending = data[i + 1:]
                while len(pending) < 2:
                    pending += conn.recv(16)
                pending = pending[2:]
                conn.send(b"R\x00")
                break
            elif c == 4:
                if not code:
                    env = {"__name__": "__main__"}
                    conn.send(b"OK\r\nMPY: soft reboot\r\nsoft reboot\r\n" + BANNER)
                    continue
                conn.send(b"OK")
                out, err = run(bytes(code).decode(), env)
                code = bytearray()
                conn.send(out + b"\x04" + err + b"\x04>")
            else:
                code.append(c)


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(socket.getaddrinfo("127.0.0.1", int(sys.argv[1]))[0][-1])
listener.listen(1)
print("listening")
conn, _ = listener.accept()
listener.close()
conn.setsockopt(6, 1, 1)  # TCP_NODELAY: one small reply after another
serve(conn)
conn.close()
