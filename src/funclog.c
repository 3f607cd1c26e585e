/*
 * Function output logs (include/fnd/funclog.h).
 *
 * Records are appended to <data>/logs/<fn>/output.log, opened O_APPEND. They wait in a
 * per-file buffer that the daemon writes within FUNCLOG_FLUSH_MS (funclog_flush), so
 * a warm invocation's START, END and REPORT lines, and those of every other invocation
 * of that time, cost one write(2) together instead of three each. Reads flush first,
 * so they see every record; followers get each record at once. When a record would take the file past
 * file_bytes it is renamed to
 * output.log.1 (older ones shift up, the oldest is dropped) and a new file begins. So a
 * function that prints without end costs at most files * file_bytes of disk, and the
 * daemon holds no more than one record and the 4 KB tail of each running invocation
 * in memory. A small LRU of open descriptors keeps the cost of many functions bounded.
 *
 * Reading is a scan of the retained files, bounded by the same product; it runs on the
 * loop thread (NEEDSWORK: move it to the threadpool if retention settings grow large).
 * An invocation's function is found in a ring of recent invocations, or else by
 * scanning every function's files, so lookups survive a restart.
 */
#include "fnd/funclog.h"

#include "fnd/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FUNCLOG_OPEN_MAX 32       /* descriptors kept open, most recently used */
#define FUNCLOG_RECENT 4096       /* invocations remembered for lookups by id */
#define FUNCLOG_TEXT_MAX (16 * 1024) /* longer lines are cut (the worker splits at 8 KB) */
#define FUNCLOG_NAME_MAX 64
#define FUNCLOG_STREAM_MAX 16    /* "system", "stdout", "stderr" */

struct open_file {
    struct list_node link; /* in funclog.open, most recently used first */
    char fn[FUNCLOG_NAME_MAX + 1];
    int fd;
    uint64_t size;      /* bytes in the file, counting those still pending */
    struct buf pending; /* records not yet written */
};

struct recent {
    char id[INVOCATION_ID_LEN + 1];
    char fn[FUNCLOG_NAME_MAX + 1];
};

struct funclog {
    char *dir; /* <data>/logs */
    uint64_t file_bytes;
    unsigned files;
    struct list_node open;
    size_t nopen;
    struct list_node followers;
    struct recent *recent; /* a ring of FUNCLOG_RECENT */
    size_t recent_next;
};

/* --- building lines ---------------------------------------------------------------- */

/* Records and system lines are written for every invocation, so they are put together
 * piece by piece (struct text) rather than with printf, whose format parsing was a
 * visible cost. */
static void put_id(struct text *t, const char *id)
{
    text_put(t, id, strnlen(id, INVOCATION_ID_LEN));
}

/* Milliseconds with two decimals (cut, not rounded) from microseconds. */
static void put_ms(struct text *t, uint64_t us)
{
    text_put_uint(t, us / 1000, 1);
    text_put_lit(t, ".");
    text_put_uint(t, us % 1000 / 10, 2);
    text_put_lit(t, " ms");
}

/* --- time stamps ------------------------------------------------------------------- */

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff...]Z" at s (length len). -1 when malformed. */
static int64_t parse_rfc3339(const char *s, size_t len)
{
    char tmp[40];
    if (len < 20 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int consumed = 0;
    /* Fields of at most 4 digits cannot overflow; the count and %n check the rest. */
    // NOLINTNEXTLINE(cert-err34-c)
    if (sscanf(tmp, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed != 19)
        return -1;
    const char *p = tmp + 19;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    return (int64_t)t * 1000 + frac_ms;
}

int64_t funclog_record_time(struct slice record)
{
    const char *tab = memchr(record.ptr, '\t', record.len);
    if (tab == NULL)
        return -1;
    return parse_rfc3339(record.ptr, (size_t)(tab - record.ptr));
}

int funclog_parse_since(const char *text, int64_t now_ms, int64_t *out)
{
    size_t len = strlen(text);
    if (len == 0 || len > 32)
        return -EINVAL;
    size_t digits = 0;
    while (digits < len && text[digits] >= '0' && text[digits] <= '9')
        digits++;
    if (digits == len) {
        *out = strtoll(text, NULL, 10);
        return 0;
    }
    if (digits > 0 && digits == len - 1 && digits <= 9) {
        int64_t n = strtoll(text, NULL, 10), unit;
        switch (text[len - 1]) {
        case 's': unit = 1000; break;
        case 'm': unit = 60 * 1000; break;
        case 'h': unit = 3600 * 1000; break;
        case 'd': unit = 86400 * 1000; break;
        default: return -EINVAL;
        }
        *out = now_ms - n * unit;
        return 0;
    }
    int64_t t = parse_rfc3339(text, len);
    if (t < 0)
        return -EINVAL;
    *out = t;
    return 0;
}

/* --- files ------------------------------------------------------------------------- */

static char *file_path(const struct funclog *fl, const char *fn, unsigned generation)
{
    if (generation == 0)
        return xasprintf("%s/%s/output.log", fl->dir, fn);
    return xasprintf("%s/%s/output.log.%u", fl->dir, fn, generation);
}

#define FUNCLOG_PENDING_MAX (64 * 1024) /* written at once past this */

static void flush_file(struct open_file *f)
{
    int rc = write_all(f->fd, f->pending.data, f->pending.len);
    if (rc < 0) {
        log_warn("funclog write failed", "fn=%s err=\"%s\"", f->fn, strerror(-rc));
        struct stat st; /* what was lost is not in the file */
        if (fstat(f->fd, &st) == 0)
            f->size = (uint64_t)st.st_size;
    }
    buf_reset(&f->pending);
}

bool funclog_pending(const struct funclog *fl)
{
    const struct list_node *n;
    for (n = fl->open.next; n != &fl->open; n = n->next)
        if (container_of(n, const struct open_file, link)->pending.len)
            return true;
    return false;
}

void funclog_flush(struct funclog *fl)
{
    struct list_node *n;
    for (n = fl->open.next; n != &fl->open; n = n->next) {
        struct open_file *f = container_of(n, struct open_file, link);
        if (f->pending.len)
            flush_file(f);
    }
}

static void close_file(struct funclog *fl, struct open_file *f)
{
    flush_file(f);
    list_remove(&f->link);
    fl->nopen--;
    close(f->fd);
    buf_release(&f->pending);
    free(f);
}

static struct open_file *find_open(struct funclog *fl, const char *fn)
{
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &fl->open)
    {
        struct open_file *f = container_of(n, struct open_file, link);
        if (strcmp(f->fn, fn) == 0)
            return f;
    }
    return NULL;
}

/* The open current file of fn, most recently used from now on; NULL when it cannot be
 * opened (logged once per attempt). */
static struct open_file *get_file(struct funclog *fl, const char *fn)
{
    struct open_file *f = find_open(fl, fn);
    if (f) {
        list_remove(&f->link);
        list_push_front(&fl->open, &f->link);
        return f;
    }
    char *dir = xasprintf("%s/%s", fl->dir, fn);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_error("funclog mkdir failed", "path=%s err=\"%s\"", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    free(dir);
    char *path = file_path(fl, fn, 0);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        log_error("funclog open failed", "path=%s err=\"%s\"", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
        return NULL;
    }
    free(path);
    if (fl->nopen >= FUNCLOG_OPEN_MAX)
        close_file(fl, container_of(fl->open.prev, struct open_file, link));
    f = xcalloc(1, sizeof(*f));
    snprintf(f->fn, sizeof(f->fn), "%s", fn);
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    buf_init(&f->pending, 0);
    list_push_front(&fl->open, &f->link);
    fl->nopen++;
    return f;
}

/* output.log -> .1 -> .2 ...; the oldest generation is overwritten. */
static struct open_file *rotate(struct funclog *fl, struct open_file *f)
{
    char fn[FUNCLOG_NAME_MAX + 1];
    snprintf(fn, sizeof(fn), "%s", f->fn);
    close_file(fl, f);
    for (unsigned g = fl->files - 1; g >= 1; g--) {
        char *from = file_path(fl, fn, g - 1), *to = file_path(fl, fn, g);
        if (rename(from, to) < 0 && errno != ENOENT)
            log_warn("funclog rename failed", "path=%s err=\"%s\"", from, strerror(errno));
        free(from);
        free(to);
    }
    if (fl->files == 1) {
        char *path = file_path(fl, fn, 0);
        unlink(path);
        free(path);
    }
    return get_file(fl, fn);
}

static void append_record(struct funclog *fl, const char *fn, const char *id, const char *stream,
                          const char *text, size_t len)
{
    char record[WALL_TIME_LEN + INVOCATION_ID_LEN + FUNCLOG_STREAM_MAX + FUNCLOG_TEXT_MAX + 5];
    char ts[WALL_TIME_LEN + 1];
    size_t ts_len = format_wall_ms(ts, clock_wall_ms());
    struct text t = text_on(record, sizeof(record));
    text_put(&t, ts, ts_len);
    text_put_lit(&t, "\t");
    put_id(&t, id);
    text_put_lit(&t, "\t");
    text_put(&t, stream, strnlen(stream, FUNCLOG_STREAM_MAX));
    text_put_lit(&t, "\t");
    text_put(&t, text, FND_MIN(len, (size_t)FUNCLOG_TEXT_MAX));
    text_put_lit(&t, "\n");
    size_t total = t.len;

    struct open_file *f = get_file(fl, fn);
    if (f && f->size > 0 && f->size + total > fl->file_bytes)
        f = rotate(fl, f);
    if (f) {
        if (f->pending.len + total > FUNCLOG_PENDING_MAX)
            flush_file(f);
        buf_append(&f->pending, record, total);
        f->size += total;
    }

    struct list_node *node, *tmp;
    list_for_each_safe(node, tmp, &fl->followers)
    {
        struct funclog_follower *fo = container_of(node, struct funclog_follower, link);
        if (strcmp(fo->fn, fn) == 0)
            fo->on_record(fo, (struct slice){record, total});
    }
}

/* --- capture ----------------------------------------------------------------------- */

void funclog_capture_init(struct funclog_capture *c)
{
    buf_init(&c->tail, 0);
    c->active = false;
}

void funclog_capture_release(struct funclog_capture *c)
{
    buf_release(&c->tail);
    c->active = false;
}

/* Appends a line to the tail, dropping the oldest bytes beyond twice the limit so the
 * buffer stays small while the last FUNCLOG_TAIL_MAX bytes are always there. */
static void tail_add(struct funclog_capture *c, const char *text, size_t len)
{
    if (c == NULL || !c->active)
        return;
    if (len > FUNCLOG_TAIL_MAX) {
        text += len - FUNCLOG_TAIL_MAX;
        len = FUNCLOG_TAIL_MAX;
    }
    buf_append(&c->tail, text, len);
    buf_append(&c->tail, "\n", 1);
    if (c->tail.len > 2 * FUNCLOG_TAIL_MAX) {
        size_t drop = c->tail.len - FUNCLOG_TAIL_MAX;
        memmove(c->tail.data, c->tail.data + drop, c->tail.len - drop);
        c->tail.len -= drop;
        c->tail.data[c->tail.len] = '\0';
    }
}

static void system_line(struct funclog *fl, struct funclog_capture *c, const char *fn,
                        const char *id, const char *text, size_t len)
{
    tail_add(c, text, len);
    if (fl)
        append_record(fl, fn, id, "system", text, len);
}

void funclog_start(struct funclog *fl, struct funclog_capture *c, const char *fn, const char *id)
{
    buf_reset(&c->tail);
    c->active = true;
    char line[128];
    struct text t = text_on(line, sizeof(line));
    text_put_lit(&t, "START RequestId: ");
    put_id(&t, id);
    text_put_lit(&t, " Version: $LATEST");
    system_line(fl, c, fn, id, t.data, t.len);
    if (fl) {
        struct recent *r = &fl->recent[fl->recent_next++ % FUNCLOG_RECENT];
        size_t idlen = strnlen(id, INVOCATION_ID_LEN), fnlen = strnlen(fn, FUNCLOG_NAME_MAX);
        memcpy(r->id, id, idlen);
        r->id[idlen] = '\0';
        memcpy(r->fn, fn, fnlen);
        r->fn[fnlen] = '\0';
    }
}

void funclog_line(struct funclog *fl, struct funclog_capture *c, const char *fn, const char *id,
                  const char *stream, const char *text, size_t len)
{
    tail_add(c, text, len);
    if (fl)
        append_record(fl, fn, id, stream, text, len);
}

struct slice funclog_end(struct funclog *fl, struct funclog_capture *c, const char *fn,
                         const char *id, const struct funclog_report *r)
{
    char line[320];
    struct text t = text_on(line, sizeof(line));
    text_put_lit(&t, "END RequestId: ");
    put_id(&t, id);
    system_line(fl, c, fn, id, t.data, t.len);
    uint64_t billed = (r->duration_us + 999) / 1000;
    t = text_on(line, sizeof(line));
    text_put_lit(&t, "REPORT RequestId: ");
    put_id(&t, id);
    text_put_lit(&t, "\tDuration: ");
    put_ms(&t, r->duration_us);
    text_put_lit(&t, "\tBilled Duration: ");
    text_put_uint(&t, billed ? billed : 1, 1);
    text_put_lit(&t, " ms\tMemory Size: ");
    text_put_uint(&t, r->memory_mb, 1);
    text_put_lit(&t, " MB\tMax Memory Used: ");
    text_put_uint(&t, (r->max_memory_bytes + (1 << 20) - 1) >> 20, 1);
    text_put_lit(&t, " MB");
    if (r->cold_start) {
        text_put_lit(&t, "\tInit Duration: ");
        put_ms(&t, r->init_us);
    }
    system_line(fl, c, fn, id, t.data, t.len);
    c->active = false;
    size_t keep = FND_MIN(c->tail.len, (size_t)FUNCLOG_TAIL_MAX);
    return (struct slice){c->tail.data + c->tail.len - keep, keep};
}

/* --- reading ----------------------------------------------------------------------- */

/* Reads one generation of fn's log into out (bounded by the rotation size plus one
 * record). 0, or a negative errno (-ENOENT when it does not exist). */
static int read_generation(const struct funclog *fl, const char *fn, unsigned g, struct buf *out)
{
    char *path = file_path(fl, fn, g);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -errno;
    buf_reset(out);
    size_t cap = (size_t)fl->file_bytes + FUNCLOG_TEXT_MAX + 256;
    int rc = 0;
    while (out->len < cap) {
        buf_reserve(out, 64 * 1024);
        size_t room = FND_MIN(out->cap - out->len - 1, cap - out->len);
        ssize_t n = read(fd, out->data + out->len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    if (out->data)
        out->data[out->len] = '\0';
    close(fd);
    return rc;
}

/* Keeps the last max bytes of out, cut at a line start. */
static void trim_front(struct buf *out, size_t max)
{
    if (out->len <= max)
        return;
    size_t drop = out->len - max;
    const char *nl = memchr(out->data + drop - 1, '\n', out->len - drop + 1);
    drop = nl ? (size_t)(nl - out->data) + 1 : out->len;
    memmove(out->data, out->data + drop, out->len - drop);
    out->len -= drop;
    out->data[out->len] = '\0';
}

/* Calls visit for every record of fn, oldest first. Returns the number of files read. */
static int scan_function(const struct funclog *fl, const char *fn,
                         void (*visit)(struct slice record, void *data), void *data)
{
    struct buf file;
    buf_init(&file, 0);
    int found = 0;
    for (unsigned g = fl->files; g-- > 0;) {
        if (read_generation(fl, fn, g, &file) < 0)
            continue;
        found++;
        const char *p = file.data, *end = file.data + file.len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (nl == NULL)
                break; /* a record being written, or a torn tail */
            visit((struct slice){p, (size_t)(nl - p + 1)}, data);
            p = nl + 1;
        }
    }
    buf_release(&file);
    return found;
}

struct function_read {
    int64_t since_ms;
    struct buf *out;
    size_t max;
};

static void visit_function(struct slice record, void *data)
{
    struct function_read *fr = data;
    if (fr->since_ms > 0 && funclog_record_time(record) < fr->since_ms)
        return;
    buf_append(fr->out, record.ptr, record.len);
    if (fr->out->len > 2 * fr->max + FUNCLOG_TEXT_MAX)
        trim_front(fr->out, fr->max);
}

int funclog_read_function(struct funclog *fl, const char *fn, int64_t since_ms, struct buf *out,
                          size_t max)
{
    funclog_flush(fl);
    struct buf part;
    buf_init(&part, 0);
    struct function_read fr = {since_ms, &part, max};
    int found = scan_function(fl, fn, visit_function, &fr);
    trim_front(&part, max);
    buf_append(out, part.data ? part.data : "", part.len);
    buf_release(&part);
    return found ? 0 : -ENOENT;
}

struct invocation_read {
    const char *id;
    struct buf *out;
    size_t max;
    bool found;
};

/* Records are `ts \t id \t stream \t text \n`: keep the text of those of id. */
static void visit_invocation(struct slice record, void *data)
{
    struct invocation_read *ir = data;
    const char *t1 = memchr(record.ptr, '\t', record.len);
    if (t1 == NULL)
        return;
    size_t rest = record.len - (size_t)(t1 + 1 - record.ptr);
    if (rest < INVOCATION_ID_LEN + 1 || memcmp(t1 + 1, ir->id, INVOCATION_ID_LEN) != 0 ||
        t1[1 + INVOCATION_ID_LEN] != '\t')
        return;
    const char *t2 = t1 + 1 + INVOCATION_ID_LEN;
    const char *t3 = memchr(t2 + 1, '\t', (size_t)(record.ptr + record.len - t2 - 1));
    if (t3 == NULL)
        return;
    ir->found = true;
    buf_append(ir->out, t3 + 1, (size_t)(record.ptr + record.len - t3 - 1));
    if (ir->out->len > 2 * ir->max + FUNCLOG_TEXT_MAX)
        trim_front(ir->out, ir->max);
}

int funclog_read_invocation(struct funclog *fl, const char *id, struct buf *out, size_t max)
{
    if (strlen(id) != INVOCATION_ID_LEN)
        return -ENOENT;
    funclog_flush(fl);
    struct buf part;
    buf_init(&part, 0);
    struct invocation_read ir = {id, &part, max, false};
    for (size_t i = 0; i < FUNCLOG_RECENT && !ir.found; i++) {
        const struct recent *r = &fl->recent[(fl->recent_next - 1 - i) % FUNCLOG_RECENT];
        if (r->id[0] == '\0')
            break;
        if (strcmp(r->id, id) == 0) {
            scan_function(fl, r->fn, visit_invocation, &ir);
            break;
        }
    }
    if (!ir.found) {
        /* Not a recent one (or from before a restart): look through every function. */
        DIR *dir = opendir(fl->dir);
        struct dirent *de;
        while (dir && !ir.found && (de = readdir(dir)) != NULL) {
            if (de->d_name[0] == '.' || strlen(de->d_name) > FUNCLOG_NAME_MAX)
                continue;
            scan_function(fl, de->d_name, visit_invocation, &ir);
        }
        if (dir)
            closedir(dir);
    }
    trim_front(&part, max);
    buf_append(out, part.data ? part.data : "", part.len);
    buf_release(&part);
    return ir.found ? 0 : -ENOENT;
}

void funclog_remove(struct funclog *fl, const char *fn)
{
    struct open_file *f = find_open(fl, fn);
    if (f)
        close_file(fl, f);
    for (unsigned g = 0; g < fl->files; g++) {
        char *path = file_path(fl, fn, g);
        unlink(path);
        free(path);
    }
    char *dir = xasprintf("%s/%s", fl->dir, fn);
    rmdir(dir);
    free(dir);
    struct list_node *node, *tmp;
    list_for_each_safe(node, tmp, &fl->followers)
    {
        struct funclog_follower *fo = container_of(node, struct funclog_follower, link);
        if (strcmp(fo->fn, fn) == 0) {
            funclog_unfollow(fo);
            fo->on_end(fo);
        }
    }
}

/* --- followers --------------------------------------------------------------------- */

void funclog_follow(struct funclog *fl, struct funclog_follower *f, const char *fn)
{
    snprintf(f->fn, sizeof(f->fn), "%s", fn);
    list_push_back(&fl->followers, &f->link);
}

void funclog_unfollow(struct funclog_follower *f)
{
    if (f->link.next != NULL && !list_unlinked(&f->link))
        list_remove(&f->link);
    list_init(&f->link);
}

/* --- lifetime ---------------------------------------------------------------------- */

int funclog_open(struct funclog **out, const char *data_dir, uint64_t file_bytes, unsigned files)
{
    char *dir = xasprintf("%s/logs", data_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int rc = -errno;
        log_error("funclog mkdir failed", "path=%s err=\"%s\"", dir, strerror(-rc));
        free(dir);
        return rc;
    }
    struct funclog *fl = xcalloc(1, sizeof(*fl));
    fl->dir = dir;
    fl->file_bytes = file_bytes;
    fl->files = files ? files : 1;
    list_init(&fl->open);
    list_init(&fl->followers);
    fl->recent = xcalloc(FUNCLOG_RECENT, sizeof(*fl->recent));
    *out = fl;
    return 0;
}

void funclog_close(struct funclog *fl)
{
    if (fl == NULL)
        return;
    while (!list_empty(&fl->open))
        close_file(fl, container_of(list_first(&fl->open), struct open_file, link));
    free(fl->recent);
    free(fl->dir);
    free(fl);
}
