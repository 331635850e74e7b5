/* SPDX-License-Identifier: MIT */
/* Name, help and label-value validation (Prometheus data model rules). */
#include "metrics_int.h"

#include <string.h>

static bool alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]*, not starting with the reserved "__". */
bool goc__metric_name_ok(const char *s)
{
    if (!s || !*s || (s[0] == '_' && s[1] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!alpha(*p) && *p != ':' && !(p > s && digit(*p)))
            return false;
    return true;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, not starting with the reserved "__". */
bool goc__label_name_ok(const char *s)
{
    if (!s || !*s || (s[0] == '_' && s[1] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!alpha(*p) && !(p > s && digit(*p)))
            return false;
    return true;
}

/* Well-formed UTF-8: no overlong forms, no surrogates, <= U+10FFFF. */
bool goc__utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

bool goc__help_ok(const char *s)
{
    return s && *s && goc__utf8_ok(s);
}

/* Is a + sa the same string as b + sb? Compared in place: names have no
 * length limit, so no buffer could hold every concatenation. */
static bool cat_eq(const char *a, const char *sa, const char *b, const char *sb)
{
    for (;;) {
        if (!*a && sa) {
            a = sa;
            sa = NULL;
            continue;
        }
        if (!*b && sb) {
            b = sb;
            sb = NULL;
            continue;
        }
        if (*a != *b)
            return false;
        if (!*a)
            return true;
        a++;
        b++;
    }
}

/* How many of the suffixes below a family of type t writes. */
static int nsuffixes(int t)
{
    return t == GOC_METRIC_HISTOGRAM ? 4 : t == GOC_METRIC_SUMMARY ? 3 : 1;
}

/* Every sample name a family writes, checked against the other family's. */
int goc__names_clash(const char *a, int ta, const char *b, int tb)
{
    static const char *const sufs[] = { "", "_sum", "_count", "_bucket" };
    for (int i = 0; i < nsuffixes(ta); i++)
        for (int j = 0; j < nsuffixes(tb); j++)
            if (cat_eq(a, sufs[i], b, sufs[j]))
                return -EEXIST;
    return 0;
}
