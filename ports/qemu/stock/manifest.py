# The "stock firmware" build (NATMOD=1) freezes stand-ins for the rpc.py and mutex.py that
# OpenMV's stock firmware freezes, so that the virtual cam finds a module of each name in
# .frozen, as a user's cam does, and the tests can show which one `import` takes once
# rpc.mpy and mutex.mpy are copied on.
freeze(".", ("rpc.py", "mutex.py"))
