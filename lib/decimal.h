/* Decimal integers written without printf or a division per digit: the sinks write a record's
 * partition, offset and timestamp for every record (webhook elements, file lines, buf_add_i64). */
#ifndef SLUICE_DECIMAL_H
#define SLUICE_DECIMAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Digit count by comparison, four digits per division. */
static inline size_t decimal_udigits(uint64_t u)
{
    size_t n = 1;

    for (;;) {
        if (u < 10)
            return n;
        if (u < 100)
            return n + 1;
        if (u < 1000)
            return n + 2;
        if (u < 10000)
            return n + 3;
        u /= 10000;
        n += 4;
    }
}

static inline uint64_t decimal_magnitude(int64_t v)
{
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/** @brief Bytes decimal_put writes for @p v (with its sign). */
static inline size_t decimal_len(int64_t v)
{
    return (size_t)(v < 0) + decimal_udigits(decimal_magnitude(v));
}

/** @brief Write @p v in decimal at @p out (room for decimal_len(v) bytes, no NUL); returns the
 * end of what it wrote. Digits two at a time from a table. */
static inline char *decimal_put(char *out, int64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    uint64_t u = decimal_magnitude(v);
    char *end, *p;

    if (v < 0)
        *out++ = '-';
    end = p = out + decimal_udigits(u);
    while (u >= 100) {
        p -= 2;
        memcpy(p, pairs + (u % 100) * 2, 2);
        u /= 100;
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, pairs + u * 2, 2);
    } else {
        *--p = (char)('0' + u);
    }
    return end;
}

/* Fixed text: its length and a copy that moves @p out past it. */
#define LIT_LEN(lit) (sizeof lit - 1)
#define PUT_LIT(out, lit) (memcpy((out), lit, LIT_LEN(lit)), (out) += LIT_LEN(lit))

#endif
