# The engine (the Rust crate at the repository root) built for one target, as a static
# library and as the crate's own object taken out of it (`ar x`). A native module links the
# object (mpy_ld.py takes object files, and the archive's compiler_builtins objects are not
# wanted); firmware may link either.
#
# In:  OMV_RPC_ROOT         the repository root (holds Cargo.toml)
#      OMV_RPC_RUST_TARGET  a rustc target (thumbv7em-none-eabihf), or empty for the host
#      OMV_RPC_CARGO_DIR    cargo's target dir for this build (one per target and flags)
#      OMV_RPC_RUSTFLAGS    e.g. -C relocation-model=pic for an x86-64 native module
#      OMV_RPC_CARGO_ARGS   how cargo builds it (default: the static library alone, fat LTO,
#                           one codegen unit, panic=abort: one object holds all the engine)
# Out: OMV_RPC_RUST_LIB, OMV_RPC_RUST_OBJ and the rules that make them.

CARGO ?= cargo
OMV_RPC_CARGO_ARGS ?= rustc --release --lib --crate-type staticlib \
	--config profile.release.panic=\"abort\" --config profile.release.lto=true \
	--config profile.release.codegen-units=1
OMV_RPC_RUST_PROFILE_DIR = $(OMV_RPC_CARGO_DIR)/$(if $(OMV_RPC_RUST_TARGET),$(OMV_RPC_RUST_TARGET)/)release
OMV_RPC_RUST_LIB = $(OMV_RPC_RUST_PROFILE_DIR)/libomv_rpc.a
OMV_RPC_RUST_OBJ = $(OMV_RPC_CARGO_DIR)/omv_rpc_engine.o
# For Arm targets two kinds of section rustc writes are taken out, so that the object links
# like one of arm-none-eabi-gcc's: its unwind index (.ARM.exidx.*, useless with panic=abort, and
# orphans in a linker script that does not place them), and its .note.GNU-stack. GCC for
# arm-none-eabi writes no such note; one object with it makes GNU ld judge the stack of the
# whole image, find every GCC object without the note, warn "missing .note.GNU-stack section
# implies executable stack" and give the image a GNU_STACK RWE header.
OMV_RPC_ARM_OBJCOPY ?= $(if $(filter thumb% arm%,$(OMV_RPC_RUST_TARGET)),arm-none-eabi-objcopy)
OMV_RPC_STRIP_SECTIONS ?= '.ARM.exidx*' '.rel.ARM.exidx*' '.ARM.extab*' '.rel.ARM.extab*' \
	.note.GNU-stack

# OMV_RPC_RUST_RULES=0: only the variables (someone else builds the library).
OMV_RPC_RUST_RULES ?= 1
ifeq ($(OMV_RPC_RUST_RULES),1)
# cargo decides what is out of date, so it always runs; the object is replaced only when it
# changed, so that nothing relinks for nothing.
$(OMV_RPC_RUST_LIB): omv-rpc-rust-always
	RUSTFLAGS="$(OMV_RPC_RUSTFLAGS)" $(CARGO) $(OMV_RPC_CARGO_ARGS) --quiet \
	    --manifest-path $(OMV_RPC_ROOT)/Cargo.toml --target-dir $(OMV_RPC_CARGO_DIR) \
	    $(if $(OMV_RPC_RUST_TARGET),--target $(OMV_RPC_RUST_TARGET))

$(OMV_RPC_RUST_OBJ): $(OMV_RPC_RUST_LIB)
	rm -rf $(OMV_RPC_CARGO_DIR)/objects && mkdir -p $(OMV_RPC_CARGO_DIR)/objects
	cd $(OMV_RPC_CARGO_DIR)/objects && ar x $(abspath $<) $$(ar t $(abspath $<) | grep '^omv_rpc-.*\.o$$')
	@test $$(ls $(OMV_RPC_CARGO_DIR)/objects | wc -l) = 1 || \
	    { echo "rust.mk: expected one omv_rpc object in $<"; exit 1; }
ifneq ($(OMV_RPC_ARM_OBJCOPY),)
	$(OMV_RPC_ARM_OBJCOPY) $(addprefix --remove-section=,$(OMV_RPC_STRIP_SECTIONS)) \
	    $(OMV_RPC_CARGO_DIR)/objects/*.o
endif
	cmp -s $(OMV_RPC_CARGO_DIR)/objects/*.o $@ || cp $(OMV_RPC_CARGO_DIR)/objects/*.o $@

.PHONY: omv-rpc-rust-always
endif
