# A stand-in for systemd's notification socket: prints each datagram on one line ("|" for newlines)
# and closes any passed file descriptors, which releases systemd-notify's barrier.
import array, os, socket, sys

path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print("listening", flush=True)
while True:
    data, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
            for fd in fds:
                os.close(fd)
    print(data.decode("utf8", "replace").replace("\n", "|"), flush=True)
