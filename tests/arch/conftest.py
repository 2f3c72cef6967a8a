import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The virtual cam's harness and host peers (tests/qemu/vcam.py, peer.py).
sys.path.insert(0, os.path.join(HERE, "..", "qemu"))
sys.path.insert(0, HERE)
