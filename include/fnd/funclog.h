/*
 * Function output logs: each invocation's stdout and stderr, framed by Lambda's
 * START / END / REPORT lines, kept per function in bounded, rotated files under
 * <data>/logs/<function>/ and offered to followers as the lines are written.
 *
 * A record is one line of a file: `<ISO-8601 UTC ms>\t<request id>\t<stream>\t<text>`,
 * stream being stdout, stderr or system (START/END/REPORT). Text never holds a
 * newline (output is split into lines before it gets here), so a function cannot forge
 * a record of another invocation. Disk use per function is bounded by file_bytes *
 * files; memory per worker by FUNCLOG_TAIL_MAX.
 */
#ifndef FND_FUNCLOG_H
#define FND_FUNCLOG_H

#include "fnd/buf.h"
#include "fnd/invocation.h"
#include "fnd/list.h"

#include <stdint.h>

#define FUNCLOG_TAIL_MAX 4096 /* bytes of an invocation's log kept for its result (Lambda's Tail) */

struct funclog;

/* What one invocation has logged so far; embedded in the worker that runs it. */
struct funclog_capture {
    struct buf tail;      /* the invocation's log text; trimmed to the last FUNCLOG_TAIL_MAX */
    bool active;          /* between funclog_start and funclog_end */
};

/* The figures of a REPORT line. */
struct funclog_report {
    uint64_t duration_us;
    unsigned memory_mb;        /* the function's memory size */
    uint64_t max_memory_bytes; /* peak use of the worker; 0 when unknown */
    bool cold_start;
    uint64_t init_us;          /* cold starts: spawn to ready */
};

/* A live reader of one function's records (GET .../logs?follow=1). */
struct funclog_follower {
    struct list_node link;
    char fn[65];
    /* One record, newline included; valid during the call. */
    void (*on_record)(struct funclog_follower *f, struct slice record);
    /* The function's logs were removed (it was deleted): f is unfollowed already. */
    void (*on_end)(struct funclog_follower *f);
};

/* Opens the log store in <data_dir>/logs: at most files files of file_bytes each per
 * function. 0 or a negative errno. */
int funclog_open(struct funclog **out, const char *data_dir, uint64_t file_bytes, unsigned files);
/* Closes every file (writing what is pending) and frees fl; followers must have
 * unfollowed. NULL is a no-op. */
void funclog_close(struct funclog *fl);
/* How long the daemon lets records wait in memory before it writes them. */
#define FUNCLOG_FLUSH_MS 50
/* Writes the records that wait in memory; the daemon calls it FUNCLOG_FLUSH_MS after
 * funclog_pending turns true, and the readers below call it before they read. */
void funclog_flush(struct funclog *fl);
bool funclog_pending(const struct funclog *fl);

void funclog_capture_init(struct funclog_capture *c);
void funclog_capture_release(struct funclog_capture *c);

/* Writes the START line of invocation id of function fn and begins capturing into c. */
void funclog_start(struct funclog *fl, struct funclog_capture *c, const char *fn, const char *id);
/* Writes one output line attributed to id (c: the running invocation's capture, or NULL
 * for output between invocations). */
void funclog_line(struct funclog *fl, struct funclog_capture *c, const char *fn, const char *id,
                  const char *stream, const char *text, size_t len);
/* Writes END and REPORT and stops capturing. Returns the last FUNCLOG_TAIL_MAX bytes
 * of the invocation's log, valid until c is started again or released. */
struct slice funclog_end(struct funclog *fl, struct funclog_capture *c, const char *fn,
                         const char *id, const struct funclog_report *r);

/* Appends the text of invocation id's lines (START to REPORT) to out, at most max bytes
 * (the last ones). 0, or -ENOENT when no line of id is retained. */
int funclog_read_invocation(struct funclog *fl, const char *id, struct buf *out, size_t max);
/* Appends function fn's records stamped at or after since_ms (wall clock) to out, oldest
 * first, at most max bytes (the newest ones, whole records). 0, or -ENOENT when fn has
 * no logs. */
int funclog_read_function(struct funclog *fl, const char *fn, int64_t since_ms, struct buf *out,
                          size_t max);
/* Removes fn's files (the function was deleted) and ends its followers (on_end). */
void funclog_remove(struct funclog *fl, const char *fn);

/* Starts calling f->on_record for every record of fn written from now on. */
void funclog_follow(struct funclog *fl, struct funclog_follower *f, const char *fn);
void funclog_unfollow(struct funclog_follower *f);

/* Parses a record's time stamp (its first field); -1 when malformed. */
int64_t funclog_record_time(struct slice record);
/* Parses a `since` value: RFC 3339 UTC ("2026-01-02T03:04:05Z", fraction optional),
 * epoch milliseconds, or an age ("90s", "5m", "2h", "1d") before now_ms. 0 or -EINVAL. */
int funclog_parse_since(const char *text, int64_t now_ms, int64_t *out);

#endif
