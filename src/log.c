/*
 * The daemon's log (include/fnd/log.h). Every line is formatted into one stack
 * buffer and written with a single write(2), so lines from the daemon never
 * interleave mid-line even when stderr is shared with other processes.
 *
 * With batching on (the daemon's loop), debug and info lines -- one per request at
 * the default level -- collect in a buffer that the daemon writes at most 50 ms
 * later (log_flush from a timer, as nginx buffers its access log), which takes a
 * system call, and a wake-up of whoever reads the log, off each request. Warnings and
 * errors flush what is buffered and are written at once, so a crash right after one
 * still leaves it in the log; whole lines only ever reach write(2). A mutex guards the
 * buffer: workers are spawned on libuv's threadpool (worker.c), and their failures are
 * logged from there.
 *
 * The JSON format is produced from the same key=value pairs: callers write logfmt
 * and the converter below re-emits the pairs as JSON members, so there is one way
 * to log and two ways to read it.
 */
#include "fnd/log.h"

#include "fnd/common.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static enum log_level min_level = LOG_INFO;
static enum log_format out_format = LOG_FORMAT_LOGFMT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

static bool batching;
static char batch[64 * 1024];
static size_t batch_len;
static pthread_mutex_t batch_lock = PTHREAD_MUTEX_INITIALIZER;

/* With batch_lock held. */
static void flush_locked(void)
{
    if (batch_len == 0)
        return;
    (void)write_all(STDERR_FILENO, batch, batch_len); /* nowhere to report a failing log */
    batch_len = 0;
}

void log_flush(void)
{
    pthread_mutex_lock(&batch_lock);
    flush_locked();
    pthread_mutex_unlock(&batch_lock);
}

bool log_pending(void)
{
    pthread_mutex_lock(&batch_lock);
    bool pending = batch_len > 0;
    pthread_mutex_unlock(&batch_lock);
    return pending;
}

void log_set_batching(bool on)
{
    pthread_mutex_lock(&batch_lock);
    if (!on)
        flush_locked();
    batching = on;
    pthread_mutex_unlock(&batch_lock);
}

void log_setup(enum log_level min, enum log_format format)
{
    min_level = min;
    out_format = format;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (strcmp(s, "logfmt") == 0)
        *out = LOG_FORMAT_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -EINVAL;
    return 0;
}

int log_enabled(enum log_level level)
{
    return level >= min_level;
}

const char *log_quote(char *out, size_t size, const char *s, size_t len)
{
    bool plain = len > 0;
    for (size_t i = 0; i < len && plain; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            plain = false;
    }
    size_t o = 0;
    if (plain) {
        o = FND_MIN(len, size - 1);
        memcpy(out, s, o);
        out[o] = '\0';
        return out;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len && o + 6 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c < ' ' || c == 0x7f) {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* Appends a JSON string literal for s[0..len) to line at *o. */
static void json_string(char *line, size_t *o, const char *s, size_t len)
{
    size_t n = *o;
    if (n < LOG_LINE_MAX - 2)
        line[n++] = '"';
    for (size_t i = 0; i < len && n < LOG_LINE_MAX - 8; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < ' ') {
            n += (size_t)snprintf(line + n, LOG_LINE_MAX - n, "\\u%04x", c);
        } else {
            line[n++] = (char)c;
        }
    }
    line[n++] = '"';
    *o = n;
}

/* Re-emits logfmt pairs as JSON members: key="quoted \" value" or key=bare. */
static void kv_to_json(char *line, size_t *o, const char *kv)
{
    const char *p = kv;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *key = p;
        while (*p && *p != '=' && *p != ' ')
            p++;
        size_t keylen = (size_t)(p - key);
        if (keylen == 0)
            break;
        char val[LOG_LINE_MAX];
        size_t vlen = 0;
        if (*p == '=') {
            p++;
            if (*p == '"') {
                p++;
                while (*p && *p != '"' && vlen < sizeof(val) - 1) {
                    if (*p == '\\' && p[1]) {
                        p++;
                        val[vlen++] = *p == 'n' ? '\n' : *p;
                    } else {
                        val[vlen++] = *p;
                    }
                    p++;
                }
                if (*p == '"')
                    p++;
            } else {
                while (*p && *p != ' ' && vlen < sizeof(val) - 1)
                    val[vlen++] = *p++;
            }
        }
        if (*o < LOG_LINE_MAX - 16) {
            line[(*o)++] = ',';
            json_string(line, o, key, keylen);
            line[(*o)++] = ':';
            json_string(line, o, val, vlen);
        }
    }
}

void log_write(enum log_level level, const char *msg, const char *kv_fmt, ...)
{
    if (level < min_level)
        return;
    char kv[LOG_LINE_MAX];
    kv[0] = '\0';
    if (kv_fmt && *kv_fmt) {
        va_list ap;
        va_start(ap, kv_fmt);
        vsnprintf(kv, sizeof(kv), kv_fmt, ap);
        va_end(ap);
    }
    log_write_kv(level, msg, kv);
}

void log_write_kv(enum log_level level, const char *msg, const char *kv)
{
    if (level < min_level)
        return;
    char ts[WALL_TIME_LEN + 1];
    format_wall_ms(ts, clock_wall_ms());

    /* Put together piece by piece: this runs for every request (account_request). */
    char line[LOG_LINE_MAX + 64];
    struct text t = text_on(line, LOG_LINE_MAX);
    size_t o;
    if (out_format == LOG_FORMAT_JSON) {
        text_put_lit(&t, "{\"ts\":\"");
        text_put_str(&t, ts);
        text_put_lit(&t, "\",\"level\":\"");
        text_put_str(&t, level_names[level]);
        text_put_lit(&t, "\",\"msg\":");
        o = t.len;
        json_string(line, &o, msg, strlen(msg));
        kv_to_json(line, &o, kv);
        line[o++] = '}';
    } else {
        char qmsg[512];
        text_put_lit(&t, "ts=");
        text_put_str(&t, ts);
        text_put_lit(&t, " level=");
        text_put_str(&t, level_names[level]);
        text_put_lit(&t, " msg=");
        text_put_str(&t, log_quote(qmsg, sizeof(qmsg), msg, strlen(msg)));
        if (kv[0]) {
            text_put_lit(&t, " ");
            text_put_str(&t, kv);
        }
        o = t.len;
    }
    line[o++] = '\n';
    pthread_mutex_lock(&batch_lock);
    if (batching && level <= LOG_INFO) {
        if (batch_len + o > sizeof(batch))
            flush_locked();
        memcpy(batch + batch_len, line, o);
        batch_len += o;
    } else {
        flush_locked();
        (void)write_all(STDERR_FILENO, line, o);
    }
    pthread_mutex_unlock(&batch_lock);
}
