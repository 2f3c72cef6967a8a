# The glue's C sources, relative to mp_glue/ (one list for the native-module Makefile and
# micropython.mk; micropython.cmake globs the same files). Every transport_<bus>.c is a
# transport (transport.h).
OMV_RPC_GLUE_SRC = modrpc.c rpc_port.c rpc_stream.c \
	$(sort $(notdir $(wildcard $(OMV_RPC_GLUE_DIR)/transport_*.c)))
OMV_RPC_MUTEX_SRC = modmutex.c
