#ifndef QEMU_MODMACHINE_H
#define QEMU_MODMACHINE_H

#include "py/obj.h"

extern const mp_obj_type_t machine_uart_type;

#endif
