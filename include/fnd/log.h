/*
 * The daemon's own log: one line per event on stderr, logfmt by default
 * (`ts=... level=info msg=... key=value ...`) or JSON lines.
 *
 * Callers pass the event name and a printf format of further `key=value` pairs;
 * values that may hold spaces or quotes go through log_quote(). Log once, where the
 * failure happens, naming the call and its subject: `msg="seccomp_load failed"
 * err="operation not permitted"`.
 */
#ifndef FND_LOG_H
#define FND_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

void log_setup(enum log_level min, enum log_format format);
/* Parses "debug|info|warn|error" / "logfmt|json"; 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
int log_enabled(enum log_level level);

void log_write(enum log_level level, const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with the pairs already put together (for lines written on every request). */
void log_write_kv(enum log_level level, const char *msg, const char *kv);
/* With batching on, debug and info lines wait in a buffer for log_flush (the daemon
 * flushes within 50 ms, with its function log records); warnings and errors flush it
 * and go out at once. Turning it off flushes. */
void log_set_batching(bool on);
void log_flush(void);
/* Whether lines wait in the buffer. */
bool log_pending(void);

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

/* Renders s as a logfmt value (quoted and escaped when needed) into out, which has
 * room for size bytes; truncates long values. Returns out for use in argument lists. */
const char *log_quote(char *out, size_t size, const char *s, size_t len);

#endif
