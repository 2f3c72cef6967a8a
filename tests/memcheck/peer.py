# The module under valgrind memcheck: `peer.py slave SPEC` or `peer.py master SPEC N`.
# (tests/memcheck/test_memcheck.py drives a hostile peer against it.)
# slave: serves echo, heap (the GC heap in use after a collection, as text) and quit, with limits
#   of 4096 bytes (so that "just over the limit" is cheap to send), until quit.
# master: N rounds of: a call "hostile" (the test's slave answers it with mutated traffic), then a
#   call "echo" that the test's slave answers right; prints "ROUND i ok|FAIL" per round and the
#   heap before and after as "HEAP start end".
import gc
import sys

from peer_lib import load_impl, make

rpc = load_impl("mod")
role, spec = sys.argv[1], sys.argv[2]
obj = make(rpc, role, spec)
obj.set_limits(max_argument_len=4096, max_result_len=4096, max_frame_len=4096)


def heap_now():
    gc.collect()
    return gc.mem_alloc()


class Quit(Exception):
    pass


if role == "slave":
    def echo(arg):
        return bytes(arg)

    def heap(arg):
        return str(heap_now()).encode()

    def _quit():
        raise Quit()

    def quit(arg):
        obj.schedule_callback(_quit)
        return b"bye"

    for cb in (echo, heap, quit):
        obj.register_callback(cb)
    print("SLAVE READY")
    try:
        obj.loop(recv_timeout=1000, send_timeout=1000)
    except Quit:
        print("QUIT")
else:
    rounds = int(sys.argv[3])
    # The first round allocates what stays (the packet buffer, interned names): measure after it.
    start = None
    for i in range(rounds):
        # Round 0 uses the longest argument: the glue keeps its packet buffer at the largest
        # size so far (no allocation per call), which is not a leak.
        obj.call("hostile", b"h" * (63 if i == 0 else i % 64), send_timeout=300, recv_timeout=300)
        r = obj.call("echo", b"round %d" % i, send_timeout=3000, recv_timeout=3000)
        ok = r is not None and bytes(r) == b"round %d" % i
        print("ROUND %d %s heap %d %s" % (i, "ok" if ok else "FAIL", heap_now(), "" if ok else obj.last_error))
        if i == 0:
            start = heap_now()
    print("HEAP %d %d" % (start, heap_now()))
    obj.call("quit", b"", send_timeout=1000, recv_timeout=1000)
    print("DONE")
