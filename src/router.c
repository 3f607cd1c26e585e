/*
 * Path routing (include/fnd/router.h). The table is small and static, so matching is
 * a linear walk comparing segment by segment; captures are slices of the request path,
 * so routing allocates nothing.
 */
#include "fnd/router.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Matches path against pattern, filling m. */
static bool match_pattern(const char *pattern, struct slice path, struct route_match *m)
{
    const char *p = pattern;
    size_t i = 0;
    m->nparams = 0;
    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close == NULL || m->nparams >= ROUTE_MAX_PARAMS)
                return false;
            bool rest = close - p > 4 && memcmp(close - 3, "...", 3) == 0;
            size_t start = i;
            if (rest) {
                i = path.len;
            } else {
                while (i < path.len && path.ptr[i] != '/')
                    i++;
                if (i == start)
                    return false; /* a capture matches one non-empty segment */
            }
            m->params[m->nparams++] = (struct slice){path.ptr + start, i - start};
            p = close + 1;
            continue;
        }
        if (i >= path.len || path.ptr[i] != *p)
            return false;
        i++;
        p++;
    }
    return i == path.len;
}

int router_match(const struct route *table, size_t n, const char *method, struct slice path,
                 const struct route **out, struct route_match *m, char *allow, size_t allow_size)
{
    bool path_known = false;
    size_t used = 0;
    if (allow_size)
        allow[0] = '\0';
    for (size_t r = 0; r < n; r++) {
        struct route_match tmp;
        if (!match_pattern(table[r].pattern, path, &tmp))
            continue;
        if (strcmp(table[r].method, "*") == 0 || strcmp(table[r].method, method) == 0) {
            *out = &table[r];
            *m = tmp;
            return 0;
        }
        path_known = true;
        /* Allow lists each method once, in table order. */
        char needle[16];
        snprintf(needle, sizeof(needle), "%s", table[r].method);
        bool seen = false;
        for (const char *a = allow; used && (a = strstr(a, needle)) != NULL; a++) {
            size_t l = strlen(needle);
            if ((a == allow || a[-1] == ' ') && (a[l] == ',' || a[l] == '\0')) {
                seen = true;
                break;
            }
        }
        if (!seen && allow_size) {
            int w = snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "",
                             table[r].method);
            if (w > 0 && used + (size_t)w < allow_size)
                used += (size_t)w;
            else
                allow[used] = '\0';
        }
    }
    return path_known ? -EPERM : -ENOENT;
}
