# The cam side of Protocol V2 as a user C module: module `protocol` (OpenMV's API), the
# stdin/stdout/stream channels, and the device engine (protocol/src, linked from the archive
# that protocol/cam builds). Off unless the port asks for it (OMV_PROTOCOL_V2=1): the
# repository root is USER_C_MODULES of every port build.
OMV_PROTOCOL_V2 ?= 0
ifeq ($(OMV_PROTOCOL_V2),1)
SRC_USERMOD_C += $(USERMOD_DIR)/mp/modprotocol.c
CFLAGS_USERMOD += -I$(USERMOD_DIR)/include -DOMV_PROTOCOL_V2=1
endif
