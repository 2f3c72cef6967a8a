/*
 * rpc_transports.h: the transport constructors that module _rpc exports (see transport.h
 * for how to add a transport). The I2C/SPI/CAN transports plug in through transport_bus.h:
 * when it exists and defines RPC_BUS_TRANSPORT_GLOBALS(X) (lines of
 * X(MP_QSTR_<name>, <constructor fun object>)), those constructors are exported too.
 */
#ifndef OMV_RPC_MP_GLUE_RPC_TRANSPORTS_H
#define OMV_RPC_MP_GLUE_RPC_TRANSPORTS_H

#include "py/obj.h"

extern const mp_obj_fun_builtin_var_t rpc_stream_transport_obj;
extern const mp_obj_fun_builtin_fixed_t rpc_python_transport_obj;
extern const mp_obj_fun_builtin_fixed_t rpc_network_transport_obj;

#if defined(__has_include)
#if __has_include("transport_bus.h")
#include "transport_bus.h"
#endif
#endif
#ifndef RPC_BUS_TRANSPORT_GLOBALS
#define RPC_BUS_TRANSPORT_GLOBALS(X)
#endif

#define RPC_TRANSPORT_GLOBALS(X) \
    X(MP_QSTR_stream_transport, rpc_stream_transport_obj) \
    X(MP_QSTR_python_transport, rpc_python_transport_obj) \
    X(MP_QSTR_network_transport, rpc_network_transport_obj) \
    RPC_BUS_TRANSPORT_GLOBALS(X)

#endif /* OMV_RPC_MP_GLUE_RPC_TRANSPORTS_H */
