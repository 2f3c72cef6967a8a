# Freezes the omv-rpc Python shims into a firmware image (the C parts come in as the user C
# module mp_glue/). A board's manifest includes this file:
#     include("<path to omv-rpc>/frozen/manifest.py")
# Transports added in their own files (rpc_<bus>.py beside rpc.py) are frozen too.
import os

module("rpc.py")
module("mutex.py")
for _name in sorted(os.listdir(".")):  # the manifest tools run this from its own directory
    if _name.startswith("rpc_") and _name.endswith(".py"):
        module(_name)
