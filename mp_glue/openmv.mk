# omv-rpc in an OpenMV firmware build. OpenMV's port config (ports/<port>/port_config.mk, or
# omv_portconfig.mk in older trees) includes this file at its end; `make openmv-firmware`
# adds that line (docs/openmv-firmware.md). The glue itself comes in as a user C module
# (mp_glue/micropython.mk, through a forwarder at the root of the user C modules); this file
# does what MicroPython's sub-make cannot do in OpenMV, where OpenMV links the image itself:
#   - passes MICROPY_PY_OMV_RPC and OMV_RPC_CARGO=0 to MicroPython's sub-make,
#   - builds the engine for the board's CPU and adds its object to OpenMV's link (LIBS),
#   - in trees that link MicroPython's objects from wildcard lists (before libmicropython.a,
#     OpenMV 2026-04), adds the glue's objects to those lists.
# Nothing happens unless the board's config sets MICROPY_PY_OMV_RPC = 1.

# The real path: cargo keys its cache on the package's path, so every tree shares one build.
OMV_RPC_ROOT := $(realpath $(dir $(lastword $(MAKEFILE_LIST)))..)

ifeq ($(MICROPY_PY_OMV_RPC),1)

MPY_MKARGS += MICROPY_PY_OMV_RPC=1 OMV_RPC_CARGO=0

# Cortex-M55 (OPENMV_N6, OPENMV_AE3) is Armv8.1-M; every other OpenMV CPU is Cortex-M4F/M7.
OMV_RPC_RUST_TARGET ?= $(if $(filter cortex-m55 cortex-m85,$(CPU)),thumbv8m.main-none-eabihf,thumbv7em-none-eabihf)
OMV_RPC_CARGO_DIR ?= $(OMV_RPC_ROOT)/build/openmv-engine/$(OMV_RPC_RUST_TARGET)
OMV_RPC_SAVED_GOAL := $(.DEFAULT_GOAL)
include $(OMV_RPC_ROOT)/mp_glue/rust.mk
.DEFAULT_GOAL := $(OMV_RPC_SAVED_GOAL)

# The engine goes in as the crate's own object, never as libomv_rpc.a: the archive also holds
# Rust's compiler_builtins, whose soft-float, libm and mem* members would replace libgcc's
# and newlib's in the image (107 members, +15 KB on an OPENMV4) without a single warning.
ifneq ($(filter %libomv_rpc.a,$(LIBS)),)
$(error omv-rpc: link $(OMV_RPC_RUST_OBJ), not libomv_rpc.a (its compiler_builtins would replace libgcc's functions))
endif
LIBS += $(OMV_RPC_RUST_OBJ)
$(or $(FIRMWARE),firmware): $(OMV_RPC_RUST_OBJ)

# Where MicroPython's sub-make puts the glue's objects depends on where omv-rpc sits relative
# to USER_C_MODULES, so they are found after that sub-make ran (a deferred variable).
OMV_RPC_GLUE_OBJ = $(shell find $(BUILD)/$(MICROPY_DIR) -path '*/omv-rpc/mp_glue/*.o' 2>/dev/null)
ifeq ($(MPY_LIB),)
# No libmicropython.a: OpenMV links MicroPython's objects from lists (MPY_FIRM_OBJ from
# 2025-04, FIRM_OBJ before).
OMV_RPC_OBJ_LIST := $(if $(filter undefined,$(origin MPY_FIRM_OBJ)),FIRM_OBJ,MPY_FIRM_OBJ)
ifeq ($(flavor $(OMV_RPC_OBJ_LIST)),simple)
$(error omv-rpc: $(OMV_RPC_OBJ_LIST) is a simple variable here; the glue objects cannot be added after MicroPython is built)
endif
$(OMV_RPC_OBJ_LIST) += $(OMV_RPC_GLUE_OBJ)
endif

endif
