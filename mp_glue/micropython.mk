# omv-rpc as a user C module of a make-based MicroPython port: build the port with
# USER_C_MODULES=<repository root> and py/py.mk includes this file. It adds modules _rpc and
# _mutex (the frozen shims in frozen/ make them `rpc` and `mutex`: include
# frozen/manifest.py from the board's manifest) and builds the engine with cargo.
#
# Settings (make variables):
#   MICROPY_PY_OMV_RPC=0     leave the module out (OpenMV guards every root module with a flag)
#   OMV_RPC_RUST_TARGET      the rustc target of the port's CPU (default thumbv7em-none-eabihf:
#                            Cortex-M4F/M7, hard float, as on OpenMV cams)
#   OMV_RPC_CARGO=0          do not run cargo: the port links the engine itself (OpenMV links
#                            the image itself, so LDFLAGS_USERMOD has no effect there: the
#                            engine object goes into its LIBS, see mp_glue/openmv.mk; ports/qemu
#                            links the archive with its own rules)
# With cargo, the engine's object OMV_RPC_RUST_OBJ is added to LDFLAGS_USERMOD. Link that
# object, not the archive OMV_RPC_RUST_LIB: the archive also carries Rust's compiler_builtins,
# whose soft-float, libm and mem* members would silently replace libgcc's and newlib's.
# OpenMV: mp_glue/openmv.mk, included by OpenMV's port config, does OpenMV's part.

MICROPY_PY_OMV_RPC ?= 1
ifeq ($(MICROPY_PY_OMV_RPC),1)

OMV_RPC_GLUE_DIR := $(USERMOD_DIR)
OMV_RPC_ROOT := $(abspath $(USERMOD_DIR)/..)
include $(OMV_RPC_GLUE_DIR)/sources.mk

SRC_USERMOD_C += $(addprefix $(OMV_RPC_GLUE_DIR)/,$(OMV_RPC_GLUE_SRC) $(OMV_RPC_MUTEX_SRC))
CFLAGS_USERMOD += -I$(OMV_RPC_GLUE_DIR) -I$(OMV_RPC_ROOT)/include

# The glue's objects, named as py/py.mk names them: the source path less the USER_C_MODULES
# prefix, under BUILD (in OpenMV, where a forwarder brings this file in from lib/omv-rpc,
# $(BUILD)/lib/omv-rpc/mp_glue/*.o).
OMV_RPC_GLUE_OBJ := $(addprefix $(BUILD)/,$(patsubst %.c,%.o,$(patsubst $(USER_C_MODULES)/%.c,%.c,\
	$(addprefix $(OMV_RPC_GLUE_DIR)/,$(OMV_RPC_GLUE_SRC)))))

OMV_RPC_RUST_TARGET ?= thumbv7em-none-eabihf
OMV_RPC_CARGO ?= 1
OMV_RPC_CARGO_DIR ?= $(BUILD)/omv-rpc-cargo
OMV_RPC_RUST_RULES := $(OMV_RPC_CARGO)
# rust.mk's rules must not become the port's default goal.
OMV_RPC_SAVED_GOAL := $(.DEFAULT_GOAL)
include $(OMV_RPC_GLUE_DIR)/rust.mk
.DEFAULT_GOAL := $(OMV_RPC_SAVED_GOAL)

ifeq ($(OMV_RPC_CARGO),1)
# The engine goes into the link as one object (the crate's own, with fat LTO: see rust.mk):
# an object is linked wherever LDFLAGS stand on the port's link line (an archive before the
# objects would be skipped), and what it needs from compiler builtins comes from libgcc.
LDFLAGS_USERMOD += $(OMV_RPC_RUST_OBJ)
# It is built before the glue is compiled, so that it is there at link time.
$(OMV_RPC_GLUE_OBJ): | $(OMV_RPC_RUST_OBJ)
endif

endif
