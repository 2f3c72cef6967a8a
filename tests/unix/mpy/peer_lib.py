# Shared by the MicroPython-side scripts of the unix-port tests: pick the implementation
# under test and build its transports.
#   impl "mod": our module (`import rpc`, from MICROPYPATH=build/unix)
#   impl "ref": the independent pure-Python peer bench/ref_rpc.py
import sys


def load_impl(name):
    if name == "mod":
        import rpc
        if not hasattr(rpc, "rpc_master"):
            raise ImportError("module rpc has no rpc_master: %r" % rpc)
        return rpc
    if name == "ref":
        import ref_rpc
        return ref_rpc
    raise ValueError("impl must be mod or ref, not %r" % name)
