/* identity_clock.c - see identity_clock.h */
#include "identity_clock.h"
#include "timeutil.h"

static int64_t offset;

void ident_clock_set(int64_t offset_ms)
{
    offset = offset_ms;
}

int64_t ident_now_ms(void)
{
    return time_now_ms() + offset;
}

int64_t ident_clock_offset_ms(void)
{
    return offset;
}
