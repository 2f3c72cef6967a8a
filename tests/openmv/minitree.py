"""Miniature OpenMV firmware trees: the variables, includes and rules of each layout that
`openmv/firmware.py` edits or depends on, with compilers replaced by `touch` and the link by a
line written to bin/link.txt. MicroPython's sub-make is real where it matters: the mini port's
Makefile includes MicroPython's own py/py.mk (from $MPY_DIR, our pinned core), which includes
every <USER_C_MODULES>/*/micropython.mk, and so our forwarder and mp_glue/micropython.mk.

Layouts (by what changed in OpenMV's tree):
  "src"     before the 2025-04 restructure: src/Makefile, src/omv/{boards,ports}, FIRM_OBJ lists,
            USER_C_MODULES=src/omv, omv_boardconfig.mk / omv_portconfig.mk
  "objects" 2025-04 to 2026-04: root Makefile, common/micropy.mk collecting MPY_FIRM_OBJ from
            wildcards, omv_boardconfig.mk / omv_portconfig.mk, feature flags in the Makefile
  "lib"     2026-04 on: board_config.mk / port_config.mk, flags in common/micropy.mk, MicroPython's
            objects archived into libmicropython.a and linked --whole-archive
"""

import os
import textwrap
from pathlib import Path

MANIFEST = """\
freeze ("$(OMV_LIB_DIR)/", "_boot.py")
# Networking
freeze ("$(OMV_LIB_DIR)/", "rpc.py")
freeze ("$(OMV_LIB_DIR)/", "rtsp.py")
# Utils
freeze ("$(OMV_LIB_DIR)/", "mutex.py")
"""
MANIFEST_N6 = """\
freeze ("$(OMV_LIB_DIR)/", "_boot.py")
freeze ("$(OMV_LIB_DIR)/", "rpc.py")
"""

# MicroPython's port Makefile, cut down: py.mk decides the user modules and their objects.
MPY_PORT_MAKEFILE = """\
TOP := $(MPY_REAL)
BUILD ?= build
include $(TOP)/py/mkenv.mk
include $(TOP)/py/py.mk
USERMOD_OBJ := $(addprefix $(BUILD)/, $(SRC_USERMOD_PATHFIX_C:.c=.o))
all:
\t@mkdir -p $(BUILD)/py
\t@touch $(BUILD)/py/obj.o
\t@for o in $(USERMOD_OBJ); do mkdir -p $$(dirname $$o); touch $$o; done
\t@printf '%s\\n' 'usermod_obj=$(USERMOD_OBJ)' 'cflags_usermod=$(CFLAGS_USERMOD)' \\
\t    'omv_rpc=$(MICROPY_PY_OMV_RPC)' 'cargo=$(OMV_RPC_CARGO)' \\
\t    'glue_obj=$(OMV_RPC_GLUE_OBJ)' > $(BUILD)/submake.txt
"""

PRINT_RULE = "print-%:\n\t@echo '$($*)'\n"

LINK = ('\t@mkdir -p $(FW_DIR)\n'
        '\t@echo "$(CC) $(LDFLAGS) {objs} -o $(FW_DIR)/$(FIRMWARE).elf $(LIBS) -lm" > $(FW_DIR)/link.txt\n')


def write(root, rel, text):
    path = Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text) if text.startswith("\n") else text)
    return path


def board_config(port="stm32", cpu="cortex-m7"):
    return f"MCU=STM32H743xx\nCPU={cpu}\nFPU=fpv5-sp-d16\nPORT={port}\nMICROPY_PY_CSI = 1\nMICROPY_PY_ML_TFLM = 1\n"


def libraries(root):
    for name in ("_boot.py", "rpc.py", "rtsp.py", "mutex.py"):
        write(root, f"scripts/libraries/{name}", f"# OpenMV's {name}\n")


def micropython(root, base):
    mp = f"{base}/lib/micropython" if base else "lib/micropython"
    write(root, f"{mp}/py/py.mk", "include $(MPY_REAL)/py/py.mk\n")
    for port in ("stm32", "mimxrt", "alif"):
        write(root, f"{mp}/ports/{port}/Makefile", MPY_PORT_MAKEFILE)
    write(root, f"{mp}/mpy-cross/build/mpy-cross", "")


def top_makefile(board_dir, board_cfg, ports_dir, port_cfg, user_c_modules, flags_here):
    flags = ("ifeq ($(MICROPY_PY_CSI), 1)\nMPY_CFLAGS += -DMICROPY_PY_CSI=1\n"
             "MPY_MKARGS += MICROPY_PY_CSI=1\nendif\n") if flags_here else ""
    return (
        "export CC = arm-none-eabi-gcc\n"
        "export TOP_DIR:=$(shell pwd)\n"
        "export BUILD:=$(TOP_DIR)/build/$(TARGET)\n"
        "export FW_DIR:=$(BUILD)/bin\n"
        "export MICROPY_DIR:=lib/micropython\n"
        "export FIRMWARE ?= firmware\n"
        f"export OMV_BOARD_CONFIG_DIR:=$(TOP_DIR)/{board_dir}/$(TARGET)\n"
        f"include $(OMV_BOARD_CONFIG_DIR)/{board_cfg}\n"
        f"export OMV_PORT_DIR:=$(TOP_DIR)/{ports_dir}/$(PORT)\n"
        f"MPY_MKARGS = PORT=$(PORT) BOARD=$(TARGET) USER_C_MODULES={user_c_modules}\n"
        + flags
        + f"include $(OMV_PORT_DIR)/{port_cfg}\n"
        "MPY_MKARGS := $(MPY_MKARGS)\n"
        "export MPY_MKARGS\n"
        + PRINT_RULE
    )


def make_lib_tree(root):
    """OpenMV 2026-04 on (libmicropython.a)."""
    micropython(root, "")
    write(root, "Makefile", top_makefile("boards", "board_config.mk", "ports", "port_config.mk",
                                         "$(TOP_DIR)", flags_here=False))
    write(root, "common/micropy.mk", """
        ifeq ($(MICROPY_PY_CSI), 1)
        MPY_CFLAGS += -DMICROPY_PY_CSI=1
        MPY_MKARGS += MICROPY_PY_CSI=1
        endif
        .DEFAULT_GOAL := all
        MPY_LIB = $(BUILD)/lib/libmicropython.a
        .PHONY: FORCE
        $(MPY_LIB): FORCE
        \t@$(MAKE) -s -C $(MICROPY_DIR)/ports/$(PORT) BUILD=$(BUILD)/$(MICROPY_DIR) $(MPY_MKARGS)
        \t@mkdir -p $(dir $@) && rm -f $@
        \t@find $(BUILD)/$(MICROPY_DIR) -name '*.o' ! -path '$(BUILD)/$(MICROPY_DIR)$(TOP_DIR)/*' | sort > $@
        LIBS += -Wl,--whole-archive $(MPY_LIB) -Wl,--no-whole-archive
        $(OMV_FIRM_OBJ): | $(MPY_LIB)
        """)
    for port in ("stm32", "mimxrt"):
        write(root, f"ports/{port}/port_config.mk",
              "OMV_FIRM_OBJ = $(BUILD)/main.o\n"
              "include common/micropy.mk\n"
              "ifeq ($(MICROPY_PY_ML_TFLM), 1)\nLIBS += $(TOP_DIR)/lib/tflm/libtflm.a\nendif\n"
              "all: $(FIRMWARE)\n"
              "$(BUILD)/main.o:\n\t@mkdir -p $(BUILD) && touch $@\n"
              "$(FIRMWARE): $(OMV_FIRM_OBJ)\n" + LINK.format(objs="$(OMV_FIRM_OBJ)"))
    # The Alif port: port_config.mk runs one make per core, alif.mk builds and links each.
    write(root, "ports/alif/port_config.mk",
          "all: $(FIRMWARE)\n$(FIRMWARE):\n\t@$(MAKE) -f $(OMV_PORT_DIR)/alif.mk MCU_CORE=M55_HP\n")
    write(root, "ports/alif/alif.mk",
          "include $(OMV_BOARD_CONFIG_DIR)/board_config.mk\n"
          "OMV_FIRM_OBJ = $(BUILD)/main.o\ninclude common/micropy.mk\n"
          "all: $(FIRMWARE)\n$(BUILD)/main.o:\n\t@mkdir -p $(BUILD) && touch $@\n"
          "$(FIRMWARE): $(OMV_FIRM_OBJ)\n" + LINK.format(objs="$(OMV_FIRM_OBJ)") + PRINT_RULE)
    write(root, "ports/rp2/port_config.mk", "# builds through MicroPython's cmake\n")
    write(root, "boards/RPI_PICO/board_config.mk", "CPU=cortex-m0plus\nPORT=rp2\n")
    write(root, "boards/RPI_PICO/manifest.py", MANIFEST_N6)
    for board, port, cpu, manifest in (("OPENMV4", "stm32", "cortex-m7", MANIFEST),
                                       ("OPENMV_AE3", "alif", "cortex-m55", MANIFEST),
                                       ("OPENMV_RT1060", "mimxrt", "cortex-m7", MANIFEST),
                                       ("OPENMV_N6", "stm32", "cortex-m55", MANIFEST_N6)):
        write(root, f"boards/{board}/board_config.mk", board_config(port, cpu))
        write(root, f"boards/{board}/manifest.py", manifest)
    write(root, "modules/micropython.mk", "# OpenMV's own modules\n")
    libraries(root)
    return Path(root)


def objects_board(root, omv, list_var):
    """The OPENMV4 board and the stm32 port of a tree that lists MicroPython's objects;
    omv is where boards/, ports/ and modules/ are."""
    write(root, f"{omv}ports/stm32/omv_portconfig.mk", objects_port_config(list_var))
    write(root, f"{omv}boards/OPENMV4/omv_boardconfig.mk", board_config())
    write(root, f"{omv}boards/OPENMV4/manifest.py", MANIFEST)
    write(root, f"{omv}modules/micropython.mk", "# OpenMV's own modules\n")
    libraries(root)
    return Path(root)


def objects_port_config(list_var):
    return (f"OMV_FIRM_OBJ = $(BUILD)/main.o\n"
            + ("include common/micropy.mk\n" if list_var == "MPY_FIRM_OBJ" else
               "FIRM_OBJ += $(BUILD)/main.o\n"
               "FIRM_OBJ += $(wildcard $(BUILD)/$(MICROPY_DIR)/py/*.o)\n"
               "FIRM_OBJ += $(wildcard $(BUILD)/$(MICROPY_DIR)/modules/*.o)\n")
            + f"{list_var} += $(addprefix $(BUILD)/$(MICROPY_DIR)/,\\\n\tstm32_it.o)\n"
            "ifeq ($(MICROPY_PY_ML_TFLM), 1)\nLIBS += $(TOP_DIR)/lib/tflm/libtflm.a\nendif\n"
            "all: $(FIRMWARE)\n"
            "MICROPYTHON:\n\t@$(MAKE) -s -C $(MICROPY_DIR)/ports/$(PORT) BUILD=$(BUILD)/$(MICROPY_DIR) $(MPY_MKARGS)\n"
            "\t@touch $(BUILD)/$(MICROPY_DIR)/stm32_it.o\n"
            "$(BUILD)/main.o: | MICROPYTHON\n\t@mkdir -p $(BUILD) && touch $@\n"
            "$(FIRMWARE): $(BUILD)/main.o\n"
            + LINK.format(objs="$(OMV_FIRM_OBJ) $(MPY_FIRM_OBJ)" if list_var == "MPY_FIRM_OBJ"
                          else "$(FIRM_OBJ)"))


def make_objects_tree(root):
    """OpenMV 2025-04 to 2026-04 (root layout, MicroPython objects from wildcard lists)."""
    micropython(root, "")
    write(root, "Makefile", top_makefile("boards", "omv_boardconfig.mk", "ports", "omv_portconfig.mk",
                                         "$(TOP_DIR)", flags_here=True))
    write(root, "common/micropy.mk",
          "MPY_FIRM_OBJ += $(wildcard $(BUILD)/$(MICROPY_DIR)/py/*.o)\n"
          "MPY_FIRM_OBJ += $(wildcard $(BUILD)/$(MICROPY_DIR)/modules/*.o)\n")
    return objects_board(root, "", "MPY_FIRM_OBJ")


def make_src_tree(root):
    """OpenMV before the 2025-04 restructure (src/)."""
    micropython(root, "src")
    write(root, "src/Makefile", top_makefile("omv/boards", "omv_boardconfig.mk", "omv/ports",
                                             "omv_portconfig.mk", "$(TOP_DIR)/omv", flags_here=True))
    return objects_board(root, "src/omv/", "FIRM_OBJ")


LAYOUTS = {"src": make_src_tree, "objects": make_objects_tree, "lib": make_lib_tree}


def snapshot(root):
    """Every path under root with its type, mode, content and time (symlinks as their target),
    build outputs left out."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            parts = Path(rel).parts
            if "build" in parts and "mpy-cross" not in parts:
                continue  # what the mini build wrote
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode)
            else:
                out[rel] = ("file", st.st_mode, p.read_bytes(), st.st_mtime_ns)
    return out
