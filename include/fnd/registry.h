/*
 * The registry: the set of deployed functions, their versions and code, persisted in
 * the data folder so that a restart finds every function again.
 *
 * On disk (see docs/architecture.md):
 *   <data>/functions/<name>/function.json     the current version's record (commit point)
 *   <data>/functions/<name>/code/<sha256>/    an unpacked bundle, read-only once written
 *   <data>/functions/<name>/tmp.*             a deploy in progress (removed at start-up)
 * A deploy unpacks beside the old code, fsyncs, renames into code/<sha256>, then
 * replaces function.json through a rename; a crash at any point leaves either the old
 * or the new version, never a mix. Identical code is unpacked once.
 *
 * Published versions (Lambda's PublishVersion) are immutable snapshots of a current
 * version, numbered 1, 2, ... per function and kept beside it:
 *   <data>/functions/<name>/versions/<n>.json  the same record as function.json
 * They keep their code folder alive and are loaded again at start-up.
 *
 * In memory, a version is immutable and reference-counted: the registry holds one
 * reference to each function's current version, and every worker and invocation that
 * uses a version holds one more, so a redeploy lets in-flight work finish on the old
 * code. The code folder is removed when no version uses it any more.
 */
#ifndef FND_REGISTRY_H
#define FND_REGISTRY_H

#include "fnd/buf.h"
#include "fnd/fnconfig.h"
#include "fnd/unpacker.h"

#include <uv.h>

struct registry;
struct code_dir; /* registry-private: a refcounted unpacked bundle */

struct fn_version {
    unsigned refs;
    char *name;              /* the function's name, owned (outlives the function) */
    uint64_t number;         /* 1, 2, ... per function; never reused */
    struct fn_config config; /* owned, immutable */
    const char *code_dir;    /* absolute path of the unpacked code (owned by code) */
    char code_sha256[65];    /* lowercase hex SHA-256 of the zip */
    uint64_t code_size;      /* bytes of the zip */
    int64_t modified_ms;     /* wall clock when this version was published */
    uint64_t published;      /* 0: a deploy ($LATEST); else its Lambda version number */
    void *ctl;               /* published versions: the controller's pool, or NULL */
    struct code_dir *code;   /* registry-private */
};

struct function {
    char name[FN_NAME_MAX + 1];
    struct fn_version *current; /* the registry's reference */
    int64_t created_ms;
    bool deploying;             /* a deploy of this name is on the threadpool */
    void *ctl;                  /* the controller's per-function state */
    struct fn_version **published; /* immutable snapshots, ascending; references */
    size_t npublished;
};

struct registry_hooks {
    /* A new version became current; old is the previous one (NULL when the function
     * was created) and stays valid until the hook returns. */
    void (*on_publish)(struct function *fn, struct fn_version *old, void *data);
    /* The function is being deleted; fn is freed when the hook returns. */
    void (*on_remove)(struct function *fn, void *data);
    void *data;
};

/* Opens the registry in data_dir (creating <data>/functions), loads every function and
 * removes leftovers of interrupted deploys and deletes. Hooks are not called for the
 * loaded functions: iterate with registry_foreach. Deploys unpack and zip bundles
 * through unpacker, which must outlive the registry. 0, or a negative errno with err
 * saying what failed (e.g. an unreadable function.json names the file). */
int registry_open(struct registry **out, uv_loop_t *loop, const char *data_dir,
                  const struct unpacker *unpacker, const struct registry_hooks *hooks,
                  char *err, size_t errsize);
/* Drops every function (no hooks called, nothing removed from disk) and frees the
 * registry. Versions still referenced elsewhere stay valid until unreferenced. */
void registry_close(struct registry *reg);

struct function *registry_lookup(struct registry *reg, struct slice name);
size_t registry_count(const struct registry *reg);
/* Calls fn for every function in name order. fn must not deploy or delete. */
void registry_foreach(struct registry *reg, void (*fn)(struct function *, void *), void *data);

enum deploy_code {
    DEPLOY_CODE_KEEP, /* reuse the current version's code (function must exist) */
    DEPLOY_CODE_ZIP,  /* zip bytes in spec->zip */
    DEPLOY_CODE_DIR,  /* a folder on this machine, packed and unpacked as a zip */
};

struct deploy_spec {
    char name[FN_NAME_MAX + 1]; /* validated by the caller */
    struct fn_config config;    /* taken by registry_deploy */
    enum deploy_code code;
    struct buf zip;             /* DEPLOY_CODE_ZIP: taken */
    char *dir;                  /* DEPLOY_CODE_DIR: absolute path, taken */
};

/* Reads a deploy body's "code" member, {"zip": "<base64>"} (decoded into spec->zip, at
 * most max_zip bytes) or {"dir": "/absolute/path"}, into spec. 0, or -EINVAL with err
 * saying why and nothing in spec to release. */
int deploy_spec_parse_code(struct deploy_spec *spec, const cJSON *code, size_t max_zip,
                           char *err, size_t errsize);

/* status: 0; -EINVAL bundle refused, -EFBIG bundle too large (err says why); -ENOENT
 * when the function disappeared meanwhile or KEEP found no code; other negative errno
 * for I/O. On success fn is the function and created tells whether it is new. */
typedef void registry_deploy_cb(int status, struct function *fn, bool created, const char *err,
                                void *data);

/* Publishes a new version of spec->name (creating the function if needed): the bundle
 * is unpacked and made durable on the threadpool, then on the loop the version
 * becomes current, on_publish runs, and cb is called. Takes what spec owns in every
 * case. Returns 0, or without calling cb: -EBUSY while another deploy of that name is
 * in progress, -ENOENT for KEEP on a missing function. */
int registry_deploy(struct registry *reg, struct deploy_spec *spec, registry_deploy_cb *cb,
                    void *data);

/* Deletes the function durably (its function.json goes first), calls on_remove, frees
 * fn. Its code is removed once no version uses it. 0 or a negative errno (-EBUSY
 * while a deploy of it is in progress). */
int registry_delete(struct registry *reg, struct function *fn);

/* Publishes fn's current version as the next numbered version, durably (blocks for
 * one small fsync'ed file). When the newest published version already has the same
 * code and configuration, that one is returned and *created is false, as on Lambda.
 * 0 with *out set (a borrowed reference), or a negative errno. */
int registry_publish(struct registry *reg, struct function *fn, struct fn_version **out,
                     bool *created);
/* fn's published version number n, or NULL. */
struct fn_version *registry_published(const struct function *fn, uint64_t n);

void fn_version_ref(struct fn_version *v);
/* Drops a reference; the last one frees the version (and its code folder when no
 * other version uses it). */
void fn_version_unref(struct fn_version *v);

/* The version as the API shows it: {"name", "version", "code_sha256", "code_size",
 * "modified", ...config}. The caller owns the result. */
cJSON *fn_version_to_json(const struct fn_version *v);

#endif
