# Frozen modules of the virtual cam: the rpc shim, included exactly as a board manifest of
# a custom OpenMV firmware would include it.
include("$(REPO_DIR)/frozen/manifest.py")
