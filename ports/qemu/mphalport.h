// MicroPython's hardware abstraction for the virtual cam.
#include "py/obj.h"
#include "shared/runtime/interrupt_char.h"
#include "irq.h"

mp_uint_t mp_hal_ticks_ms(void);
mp_uint_t mp_hal_ticks_us(void);
mp_uint_t mp_hal_ticks_cpu(void);
void mp_hal_delay_ms(mp_uint_t ms);
void mp_hal_delay_us(mp_uint_t us);
uint64_t mp_hal_time_ns(void);

// The REPL's UART: UART0.
#define MP_HAL_REPL_UART (0)

// The board has no GPIO pins to offer; this keeps py/mphal.h from wanting extmod's
// virtual pins (the pinned core has no extmod/).
typedef uint32_t mp_hal_pin_obj_t;
#define mp_hal_pin_obj_t mp_hal_pin_obj_t
