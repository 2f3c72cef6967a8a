# openmv: an OpenMV firmware image with omv-rpc in it, from a user's OpenMV checkout
# (openmv/firmware.py; the steps it takes are in docs/openmv-firmware.md).
#   make openmv-firmware OPENMV_DIR=<checkout> [TARGET=OPENMV4] [OPENMV_MAKE_ARGS="..."]
#        builds the stock image, applies the marked edits, builds the image with omv-rpc in
#        build/openmv/<TARGET>/{stock,omv-rpc}/bin/firmware.elf and prints both sizes
#        (OPENMV_STOCK=0: only ours)
#   make openmv-apply / openmv-status OPENMV_DIR=<checkout> [TARGET=...]   edits only / what is there
#   make openmv-firmware-undo OPENMV_DIR=<checkout>   restores the tree byte for byte
#   make openmv-test   the command on miniature trees of each OpenMV layout, the engine object's
#                      sections, the manifest include with MicroPython's manifest tool (no
#                      OpenMV checkout needed; about 30 s)

OPENMV_TARGET = $(if $(TARGET),$(TARGET),OPENMV4)
OPENMV_STOCK ?= 1
OPENMV_TOOL = python3 openmv/firmware.py

.PHONY: openmv-firmware openmv-firmware-undo openmv-apply openmv-status openmv-test openmv-need-dir

openmv-need-dir:
	@test -n "$(OPENMV_DIR)" || { echo "set OPENMV_DIR=<your OpenMV firmware checkout>"; exit 1; }

openmv-firmware: openmv-need-dir deps-apt deps-rust
	$(OPENMV_TOOL) build --openmv "$(OPENMV_DIR)" --target $(OPENMV_TARGET) \
	  --make-args "$(OPENMV_MAKE_ARGS)" $(if $(filter 0,$(OPENMV_STOCK)),--no-stock)

openmv-apply: openmv-need-dir
	$(OPENMV_TOOL) apply --openmv "$(OPENMV_DIR)" --target $(OPENMV_TARGET)

openmv-status: openmv-need-dir
	$(OPENMV_TOOL) status --openmv "$(OPENMV_DIR)" --target $(OPENMV_TARGET)

openmv-firmware-undo: openmv-need-dir
	$(OPENMV_TOOL) undo --openmv "$(OPENMV_DIR)"

openmv-test: deps-apt deps-rust deps-py deps-mpy
	MPY_DIR=$(MPY_DIR) $(VENV)/bin/pytest -q -p no:cacheprovider tests/openmv

TEST_TARGETS += openmv-test
