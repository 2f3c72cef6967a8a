# omv-rpc as a user C module of a cmake-based MicroPython port (rp2, esp32, ...): build the port
# with USER_C_MODULES=<repository root>/mp_glue/micropython.cmake. It adds modules _rpc and
# _mutex (the frozen shims in frozen/ make them `rpc` and `mutex`: include
# frozen/manifest.py from the board's manifest) and builds the engine with cargo.
#
#   OMV_RPC_RUST_TARGET  the rustc target of the port's CPU (default thumbv7em-none-eabihf:
#                        Cortex-M4F/M7; thumbv6m-none-eabi for an RP2040)

set(OMV_RPC_GLUE_DIR ${CMAKE_CURRENT_LIST_DIR})
get_filename_component(OMV_RPC_ROOT ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
set(OMV_RPC_RUST_TARGET "thumbv7em-none-eabihf" CACHE STRING "rustc target of the engine")

add_library(usermod_omv_rpc INTERFACE)

# The same sources as sources.mk: the driver, the port services, and every transport_<bus>.c.
file(GLOB OMV_RPC_TRANSPORT_SRC ${OMV_RPC_GLUE_DIR}/transport_*.c)
target_sources(usermod_omv_rpc INTERFACE
    ${OMV_RPC_GLUE_DIR}/modrpc.c
    ${OMV_RPC_GLUE_DIR}/rpc_port.c
    ${OMV_RPC_GLUE_DIR}/rpc_stream.c
    ${OMV_RPC_TRANSPORT_SRC}
    ${OMV_RPC_GLUE_DIR}/modmutex.c
)
target_include_directories(usermod_omv_rpc INTERFACE
    ${OMV_RPC_GLUE_DIR}
    ${OMV_RPC_ROOT}/include
)

# The engine: cargo builds the static library into the workspace's target dir.
set(OMV_RPC_RUST_LIB ${OMV_RPC_ROOT}/target/${OMV_RPC_RUST_TARGET}/release/libomv_rpc.a)
file(GLOB_RECURSE OMV_RPC_RUST_SRC ${OMV_RPC_ROOT}/src/*.rs)
add_custom_command(
    OUTPUT ${OMV_RPC_RUST_LIB}
    COMMAND cargo build --release --lib --target ${OMV_RPC_RUST_TARGET}
            --manifest-path ${OMV_RPC_ROOT}/Cargo.toml --target-dir ${OMV_RPC_ROOT}/target
    DEPENDS ${OMV_RPC_RUST_SRC} ${OMV_RPC_ROOT}/Cargo.toml
    COMMENT "Building the omv-rpc engine for ${OMV_RPC_RUST_TARGET}"
    VERBATIM
)
add_custom_target(omv_rpc_engine DEPENDS ${OMV_RPC_RUST_LIB})
add_dependencies(usermod_omv_rpc omv_rpc_engine)
target_link_libraries(usermod_omv_rpc INTERFACE ${OMV_RPC_RUST_LIB})

target_link_libraries(usermod INTERFACE usermod_omv_rpc)
