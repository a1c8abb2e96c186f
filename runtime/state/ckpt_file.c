/* ckpt_file.c - checkpoint bytes and files. A file is the magic, the body, and an
 * FNV-1a checksum of the body: rename makes the replacement atomic, the checksum
 * catches a file damaged afterwards (a disk, a hand edit), which must not be taken
 * for state. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_file.h"
#include "hash.h"

#define MAGIC "EDDYCKP1"
#define MAGIC_LEN 8

int rt_ckpt_put_u64(rt_buf *b, uint64_t v)
{
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(v >> (8 * i));
    return rt_buf_append(b, le, 8);
}

int rt_ckpt_put_i64(rt_buf *b, int64_t v)
{
    return rt_ckpt_put_u64(b, (uint64_t)v);
}

int rt_ckpt_put_f64(rt_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return rt_ckpt_put_u64(b, u);
}

int rt_ckpt_put_bytes(rt_buf *b, const void *p, size_t n)
{
    return rt_ckpt_put_u64(b, n) < 0 || rt_buf_append(b, p, n) < 0 ? -1 : 0;
}

uint64_t rt_ckpt_get_u64(rt_ckpt_reader *r)
{
    if (r->bad || r->n - r->pos < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += 8;
    return v;
}

int64_t rt_ckpt_get_i64(rt_ckpt_reader *r)
{
    return (int64_t)rt_ckpt_get_u64(r);
}

double rt_ckpt_get_f64(rt_ckpt_reader *r)
{
    uint64_t u = rt_ckpt_get_u64(r);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

const char *rt_ckpt_get_bytes(rt_ckpt_reader *r, size_t *n)
{
    uint64_t len = rt_ckpt_get_u64(r);
    if (r->bad || len > r->n - r->pos) {
        r->bad = 1;
        *n = 0;
        return "";
    }
    const char *p = (const char *)r->p + r->pos;
    r->pos += (size_t)len;
    *n = (size_t)len;
    return p;
}

/* The current checkpoint, or (prev) the one before it that exactly_once keeps. */
static int path_of(char *path, size_t len, const char *dir, int32_t partition, int prev)
{
    int n = snprintf(path, len, "%s/partition-%d%s.ckpt", dir, (int)partition,
                     prev ? ".prev" : "");
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int rt_ckpt_path(char *path, size_t len, const char *dir, int32_t partition)
{
    return path_of(path, len, dir, partition, 0);
}

static int sync_dir(const char *dir, char *err, size_t errlen)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    if (dfd < 0 || fsync(dfd) < 0)
        rc = -1;
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    if (dfd >= 0)
        close(dfd);     /* read-only: nothing its close could lose */
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_gen(const char *dir, int32_t partition, const rt_buf *body, int keep,
                     char *err, size_t errlen)
{
    char path[4096], tmp[4200], prev[4096];
    unsigned char sum[8];
    uint64_t h = rt_fnv1a(RT_FNV1A_INIT, body->data, body->len);
    int fd = -1, rc = -1;
    for (int i = 0; i < 8; i++)
        sum[i] = (unsigned char)(h >> (8 * i));
    if (path_of(path, sizeof path, dir, partition, 0) < 0 ||
        path_of(prev, sizeof prev, dir, partition, 1) < 0) {
        snprintf(err, errlen, "state.dir is too long");
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, MAGIC, MAGIC_LEN) < 0 ||
        write_all(fd, body->data, body->len) < 0 || write_all(fd, sum, sizeof sum) < 0 ||
        fsync(fd) < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    int closed = close(fd);
    fd = -1;
    if (closed < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    /* A crash between the two renames leaves only the previous one, which is what the
     * committed offsets still stand for. */
    if (keep && rename(path, prev) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", prev, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* The rename itself is durable only once the directory is. */
    rc = sync_dir(dir, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int rt_ckpt_write(const char *dir, int32_t partition, const rt_buf *body, char *err,
                  size_t errlen)
{
    return write_gen(dir, partition, body, 0, err, errlen);
}

int rt_ckpt_write_keep(const char *dir, int32_t partition, const rt_buf *body, char *err,
                       size_t errlen)
{
    return write_gen(dir, partition, body, 1, err, errlen);
}

int rt_ckpt_promote(const char *dir, int32_t partition, char *err, size_t errlen)
{
    char path[4096], prev[4096];
    if (path_of(path, sizeof path, dir, partition, 0) < 0 ||
        path_of(prev, sizeof prev, dir, partition, 1) < 0) {
        snprintf(err, errlen, "state.dir is too long");
        return -1;
    }
    if (rename(prev, path) < 0) {
        snprintf(err, errlen, "%s: %s", prev, strerror(errno));
        return -1;
    }
    return sync_dir(dir, err, errlen);
}

static int read_gen(const char *dir, int32_t partition, int prev, rt_buf *body, char *err,
                    size_t errlen)
{
    char path[4096];
    struct stat st;
    int fd = -1, rc = -1;
    body->len = 0;
    if (path_of(path, sizeof path, dir, partition, prev) < 0) {
        snprintf(err, errlen, "state.dir is too long");
        return -1;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || rt_buf_reserve(body, (size_t)st.st_size) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : ENOMEM));
        goto out;
    }
    while (body->len < (size_t)st.st_size) {
        ssize_t r = read(fd, body->data + body->len, (size_t)st.st_size - body->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "%s: %s", path, r < 0 ? strerror(errno) : "shorter than it was");
            goto out;
        }
        body->len += (size_t)r;
    }
    if (body->len < MAGIC_LEN + 8 || memcmp(body->data, MAGIC, MAGIC_LEN) != 0) {
        snprintf(err, errlen, "%s: not an eddy checkpoint", path);
        goto out;
    }
    size_t n = body->len - MAGIC_LEN - 8;
    rt_ckpt_reader tail = { (const unsigned char *)body->data + MAGIC_LEN + n, 8, 0, 0 };
    if (rt_ckpt_get_u64(&tail) != rt_fnv1a(RT_FNV1A_INIT, body->data + MAGIC_LEN, n)) {
        snprintf(err, errlen, "%s: damaged (checksum mismatch)", path);
        goto out;
    }
    memmove(body->data, body->data + MAGIC_LEN, n);
    body->len = n;
    rc = 1;
out:
    close(fd);
    return rc;
}

int rt_ckpt_read(const char *dir, int32_t partition, rt_buf *body, char *err,
                 size_t errlen)
{
    return read_gen(dir, partition, 0, body, err, errlen);
}

int rt_ckpt_read_prev(const char *dir, int32_t partition, rt_buf *body, char *err,
                      size_t errlen)
{
    return read_gen(dir, partition, 1, body, err, errlen);
}

/* ---- window panes ---- */

int rt_ckpt_put_pane(rt_buf *b, const rt_pane *p)
{
    return rt_ckpt_put_i64(b, p->start) || rt_ckpt_put_i64(b, p->end) ||
           rt_ckpt_put_i64(b, p->due) || rt_ckpt_put_u64(b, (uint64_t)p->fired) ||
           rt_ckpt_put_u64(b, p->count) || rt_ckpt_put_u64(b, p->n) ||
           rt_ckpt_put_f64(b, p->sum) || rt_ckpt_put_f64(b, p->min) ||
           rt_ckpt_put_f64(b, p->max) || rt_ckpt_put_bytes(b, p->acc, p->acc_len) ? -1 : 0;
}

int rt_ckpt_put_panes(rt_buf *b, const rt_wkey *k)
{
    if (rt_ckpt_put_u64(b, k->n + k->nslices) < 0)
        return -1;
    for (size_t i = 0; i < k->n; i++)
        if (rt_ckpt_put_pane(b, &k->panes[i]) < 0)
            return -1;
    for (size_t i = 0; i < k->nslices; i++) {
        rt_pane s = k->slices[i];
        s.due = k->fired_to;    /* where its windows go on firing after a restore */
        if (rt_ckpt_put_pane(b, &s) < 0)
            return -1;
    }
    return 0;
}

int rt_ckpt_get_pane(rt_ckpt_reader *r, rt_pane *p)
{
    memset(p, 0, sizeof *p);
    p->start = rt_ckpt_get_i64(r);
    p->end = rt_ckpt_get_i64(r);
    p->due = rt_ckpt_get_i64(r);
    p->fired = (int)rt_ckpt_get_u64(r);
    p->count = rt_ckpt_get_u64(r);
    p->n = rt_ckpt_get_u64(r);
    p->sum = rt_ckpt_get_f64(r);
    p->min = rt_ckpt_get_f64(r);
    p->max = rt_ckpt_get_f64(r);
    const char *acc = rt_ckpt_get_bytes(r, &p->acc_len);
    if (r->bad || !p->acc_len)
        return 0;
    if (!(p->acc = malloc(p->acc_len)))
        return -1;
    memcpy(p->acc, acc, p->acc_len);
    return 0;
}
