/*
 * Control-plane authentication (include/fnd/auth.h).
 *
 * The token file is created with O_EXCL and mode 0600 and refused when it is readable
 * by anyone else, so a token that leaked through permissions is not silently used.
 * Comparison hashes both sides with SHA-256 and compares the digests with nettle's
 * memeql_sec: the time taken tells nothing about how much of a guess was right.
 */
#include "fnd/auth.h"

#include "fnd/codec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nettle/memops.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_TOKEN_MIN 16
#define AUTH_FILE "auth-token"

static const char *const invoke_words[] = {
#define AUTH_INVOKE_WORD(id, word) word,
    AUTH_INVOKE_MODES(AUTH_INVOKE_WORD)
#undef AUTH_INVOKE_WORD
};

bool auth_token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char da[32], db[32];
    sha256(a, alen, da);
    sha256(b, blen, db);
    return memeql_sec(da, db, sizeof(da)) != 0;
}

/* A token is printable ASCII without spaces: it travels in a header. */
static bool token_valid(const char *t, size_t len)
{
    if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (t[i] <= ' ' || t[i] >= 0x7f)
            return false;
    return true;
}

static int read_token_file(struct auth *a, const char *path, char *err, size_t errsize)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errsize, "%s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
        rc = -EPERM;
        snprintf(err, errsize, "%s: must be a file of this user with mode 0600 (chmod 600 it)",
                 path);
    } else {
        ssize_t n = read(fd, a->token, AUTH_TOKEN_MAX);
        size_t len = n > 0 ? (size_t)n : 0;
        while (len && (a->token[len - 1] == '\n' || a->token[len - 1] == '\r'))
            len--;
        a->token[len] = '\0';
        if (!token_valid(a->token, len)) {
            rc = -EINVAL;
            snprintf(err, errsize, "%s: not a token (16 to 256 printable characters)", path);
        }
    }
    close(fd);
    return rc;
}

static int create_token_file(struct auth *a, const char *path, char *err, size_t errsize)
{
    unsigned char bytes[32];
    /* Straight from the kernel, not random_bytes()'s pool: a secret should not sit
     * in a buffer that later ids are carved from. */
    if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes)) {
        snprintf(err, errsize, "getrandom: %s", strerror(errno));
        return -EIO;
    }
    hex_encode(a->token, bytes, sizeof(bytes));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, errsize, "%s: %s", path, strerror(-rc));
        return rc;
    }
    char line[AUTH_TOKEN_MAX + 2];
    int n = snprintf(line, sizeof(line), "%s\n", a->token);
    int rc = 0;
    if (write(fd, line, (size_t)n) != n || fsync(fd) < 0) {
        rc = errno != 0 ? -errno : -EIO; /* a short write sets no errno */
        snprintf(err, errsize, "%s: %s", path, strerror(-rc));
        unlink(path);
    }
    close(fd);
    return rc;
}

int auth_setup(struct auth *a, const char *configured, const char *data_dir,
               const char *invoke_mode, char *err, size_t errsize)
{
    memset(a, 0, sizeof(*a));
    bool mode_ok = false;
    for (size_t i = 0; i < sizeof(invoke_words) / sizeof(invoke_words[0]); i++) {
        if (strcmp(invoke_mode, invoke_words[i]) == 0) {
            a->invoke = (enum auth_invoke)i;
            mode_ok = true;
        }
    }
    if (!mode_ok) {
        snprintf(err, errsize, "--invoke-auth: use loopback, all or none");
        return -EINVAL;
    }
    if (configured && *configured) {
        if (!token_valid(configured, strlen(configured))) {
            snprintf(err, errsize, "--auth-token: 16 to 256 printable characters, no spaces");
            return -EINVAL;
        }
        snprintf(a->token, sizeof(a->token), "%s", configured);
        a->given = true;
        return 0;
    }
    char *path = xasprintf("%s/" AUTH_FILE, data_dir);
    int rc = read_token_file(a, path, err, errsize);
    if (rc == -ENOENT)
        rc = create_token_file(a, path, err, errsize);
    else if (rc < 0 && err[0] == '\0')
        snprintf(err, errsize, "%s: %s", path, strerror(-rc));
    free(path);
    return rc;
}

bool auth_host_is_loopback(const char *host)
{
    if (strcmp(host, "localhost") == 0)
        return true;
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6) ||
               (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    return false;
}

static bool peer_is_loopback(const struct http_request *req)
{
    struct sockaddr_storage ss;
    if (http_request_peer(req, &ss) < 0)
        return false;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *v6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(v6) || (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
    }
    return false;
}

static bool has_token(const struct auth *a, const struct http_request *req)
{
    struct slice h = http_request_header(req, "Authorization");
    if (h.len < 7 || strncasecmp(h.ptr, "Bearer ", 7) != 0)
        return false;
    struct slice t = {h.ptr + 7, h.len - 7};
    while (t.len && t.ptr[0] == ' ') {
        t.ptr++;
        t.len--;
    }
    return auth_token_equal(t.ptr, t.len, a->token, strlen(a->token));
}

bool auth_allows(const struct auth *a, const struct http_request *req, enum auth_class cls)
{
    switch (cls) {
    case AUTH_OPEN:
        return true;
    case AUTH_INVOKE:
        if (a->invoke == AUTH_INVOKE_ALL)
            return true;
        if (a->invoke == AUTH_INVOKE_LOOPBACK && peer_is_loopback(req))
            return true;
        return has_token(a, req);
    case AUTH_CONTROL:
    default:
        return has_token(a, req);
    }
}

void auth_respond_unauthorized(struct http_request *req)
{
    static const struct http_header challenge = {SLICE_LIT("WWW-Authenticate"),
                                                 SLICE_LIT("Bearer realm=\"fnd\"")};
    http_respond_error_headers(req, FND_E_UNAUTHORIZED, &challenge, 1,
                               "this endpoint needs the daemon's token: send Authorization: "
                               "Bearer <token> (the token is in the daemon's data folder, file "
                               AUTH_FILE ", or was given with --auth-token)");
}

bool auth_peer_is_loopback(const struct http_request *req)
{
    return peer_is_loopback(req);
}
