/* json_load.c - json_loadb with integers beyond int64 read as doubles.
 *
 * jansson has one switch for this, JSON_DECODE_INT_AS_REAL, and it turns every integer
 * into a double, timestamps and 64-bit ids included. So the plain load runs first (the
 * only cost on the usual path), and only when jansson reports a numeric overflow is a
 * copy made in which each such integer gets a ".0" suffix: the same number, as a real. */
#include <stdlib.h>
#include <string.h>

#include "json_load.h"

/* Does the integer literal s[0..n) (optional '-', digits) fit an int64? */
static int fits_int64(const char *s, size_t n)
{
    const char *lim = "9223372036854775807";
    int neg = s[0] == '-';
    s += neg;
    n -= (size_t)neg;
    if (n != 19)
        return n < 19;
    int c = memcmp(s, lim, 19);
    return c < 0 || c == 0 || (neg && memcmp(s, "9223372036854775808", 19) == 0);
}

/* A copy of buf with ".0" after every integer literal that does not fit int64, or NULL
 * when there is none (or no memory). Strings are skipped; the rest need not be valid,
 * since jansson parses the result and reports what is wrong with it. */
static char *widen_big_integers(const char *buf, size_t len, size_t *out_len)
{
    char *out = NULL;
    size_t n = 0, cap = 0, changed = 0;
    for (size_t i = 0; i < len;) {
        size_t start = i;
        char c = buf[i];
        if (c == '"') {
            for (i++; i < len && buf[i] != '"'; i++)
                if (buf[i] == '\\')
                    i++;
            i = i < len ? i + 1 : len;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            for (i++; i < len && ((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '.' ||
                                  buf[i] == 'e' || buf[i] == 'E' || buf[i] == '+' ||
                                  buf[i] == '-');
                 i++)
                ;
        } else {
            i++;
        }
        size_t tok = i - start;
        int widen = (c == '-' || (c >= '0' && c <= '9')) &&
                    strcspn(buf + start, ".eE") >= tok && tok > 1 + (c == '-') &&
                    !fits_int64(buf + start, tok);
        if (n + tok + 2 > cap) {
            size_t ncap = cap ? cap * 2 : len + 64;
            while (ncap < n + tok + 2)
                ncap *= 2;
            char *p = realloc(out, ncap);
            if (!p)
                goto fail;
            out = p;
            cap = ncap;
        }
        memcpy(out + n, buf + start, tok);
        n += tok;
        if (widen) {
            memcpy(out + n, ".0", 2);
            n += 2;
            changed++;
        }
    }
    if (!changed)
        goto fail;
    *out_len = n;
    return out;
fail:
    free(out);
    return NULL;
}

json_t *rt_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
    json_t *v = json_loadb(buf, len, flags, err);
    if (v || json_error_code(err) != json_error_numeric_overflow)
        return v;
    size_t wlen;
    char *wide = widen_big_integers(buf, len, &wlen);
    if (!wide)
        return NULL;        /* err still says what jansson found */
    json_error_t werr;
    v = json_loadb(wide, wlen, flags, &werr);
    if (!v && json_error_code(&werr) != json_error_numeric_overflow)
        *err = werr;        /* a later error, past the big integers */
    free(wide);
    return v;
}
