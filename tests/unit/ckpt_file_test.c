/* ckpt_file_test.c - the checkpoint format (runtime/state/ckpt_file.c): fields read
 * back as written, reads past the end flagged, files replaced whole, and a damaged,
 * truncated or foreign file refused with a reason instead of restored. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_file.h"
#include "unit.h"

static int file_edit(const char *path, long at, int byte, long truncate_to)
{
    FILE *f = fopen(path, "r+b");
    if (!f)
        return -1;
    int rc = 0;
    if (byte >= 0 && (fseek(f, at, SEEK_SET) != 0 || fputc(byte, f) == EOF))
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (truncate_to >= 0 && truncate(path, truncate_to) < 0)
        rc = -1;
    return rc;
}

int main(void)
{
    rt_buf b = { 0 };
    static const char blob[] = "key\0with nul";
    int put = rt_ckpt_put_u64(&b, UINT64_MAX) | rt_ckpt_put_i64(&b, INT64_MIN) |
              rt_ckpt_put_f64(&b, -0.125) | rt_ckpt_put_bytes(&b, blob, sizeof blob) |
              rt_ckpt_put_bytes(&b, "", 0) | rt_ckpt_put_i64(&b, 42);
    rt_ckpt_reader r = { (const unsigned char *)b.data, b.len, 0, 0 };
    size_t n1, n2;
    uint64_t u = rt_ckpt_get_u64(&r);
    int64_t i = rt_ckpt_get_i64(&r);
    double f = rt_ckpt_get_f64(&r);
    const char *p1 = rt_ckpt_get_bytes(&r, &n1), *p2 = rt_ckpt_get_bytes(&r, &n2);
    int64_t last = rt_ckpt_get_i64(&r);
    unit_check(put == 0 && !r.bad && r.pos == r.n && u == UINT64_MAX && i == INT64_MIN &&
               f == -0.125 && n1 == sizeof blob && p1 && memcmp(p1, blob, n1) == 0 &&
               n2 == 0 && p2 && last == 42,
               "checkpoint: every field reads back as written, to the last byte");
    rt_ckpt_get_u64(&r);
    unit_check(r.bad, "checkpoint: reading past the end is flagged");
    for (size_t cut = 0; cut < b.len; cut++) {
        rt_ckpt_reader t = { (const unsigned char *)b.data, cut, 0, 0 };
        rt_ckpt_get_u64(&t), rt_ckpt_get_i64(&t), rt_ckpt_get_f64(&t);
        rt_ckpt_get_bytes(&t, &n1), rt_ckpt_get_bytes(&t, &n2), rt_ckpt_get_i64(&t);
        if (!t.bad) {
            unit_check(0, "checkpoint: a body cut at byte %zu is flagged", cut);
            break;
        }
        if (cut == b.len - 1)
            unit_check(1, "checkpoint: a body cut at any of its %zu bytes is flagged", b.len);
    }

    char dir[] = "/tmp/ckpt_test.XXXXXX", path[4096], err[512];
    if (!mkdtemp(dir))
        return 1;
    rt_buf got = { 0 };
    unit_check(rt_ckpt_read(dir, 3, &got, err, sizeof err) == 0,
               "checkpoint: no file is 0 (start empty), not an error");
    int w1 = rt_ckpt_write(dir, 3, &b, err, sizeof err);
    rt_buf other = { 0 };
    int w2 = rt_ckpt_put_i64(&other, 7) | rt_ckpt_write(dir, 3, &other, err, sizeof err);
    got.len = 0;
    int rd = rt_ckpt_read(dir, 3, &got, err, sizeof err);
    unit_check(w1 == 0 && w2 == 0 && rd == 1 && got.len == other.len &&
               memcmp(got.data, other.data, got.len) == 0,
               "checkpoint: a write replaces the partition's file whole");
    unit_check(rt_ckpt_path(path, sizeof path, dir, 3) == 0, "checkpoint: the path fits");
    struct stat st;
    long size = stat(path, &st) == 0 ? (long)st.st_size : -1;
    /* Every byte flipped in turn, then every shorter length: each read is refused. */
    int accepted = 0;
    for (long at = 0; at < size; at++) {
        if (rt_ckpt_write(dir, 3, &other, err, sizeof err) < 0 || stat(path, &st) < 0)
            return 1;
        FILE *fr = fopen(path, "rb");
        int byte = fr ? (fseek(fr, at, SEEK_SET), fgetc(fr)) : -1;
        if (fr)
            fclose(fr);
        if (byte < 0 || file_edit(path, at, byte ^ 0x5a, -1) < 0)
            return 1;
        got.len = 0;
        err[0] = '\0';
        accepted += rt_ckpt_read(dir, 3, &got, err, sizeof err) != -1 || !err[0];
    }
    unit_check(size > 0 && accepted == 0, "checkpoint: a file with any of its %ld bytes "
               "damaged is refused with a reason (%d accepted)", size, accepted);
    accepted = 0;
    for (long len = 0; len < size; len++) {
        if (rt_ckpt_write(dir, 3, &other, err, sizeof err) < 0 ||
            file_edit(path, 0, -1, len) < 0)
            return 1;
        got.len = 0;
        accepted += rt_ckpt_read(dir, 3, &got, err, sizeof err) != -1;
    }
    unit_check(accepted == 0, "checkpoint: a file cut short anywhere is refused (%d "
               "accepted)", accepted);
    /* exactly_once keeps the replaced checkpoint until its transaction commits. */
    rt_buf third = { 0 };
    int k1 = rt_ckpt_write(dir, 3, &b, err, sizeof err);
    int k2 = rt_ckpt_put_i64(&third, 9) | rt_ckpt_write_keep(dir, 3, &third, err, sizeof err);
    got.len = 0;
    int cur = rt_ckpt_read(dir, 3, &got, err, sizeof err);
    int cur_ok = cur == 1 && got.len == third.len && memcmp(got.data, third.data, got.len) == 0;
    got.len = 0;
    int prev = rt_ckpt_read_prev(dir, 3, &got, err, sizeof err);
    unit_check(k1 == 0 && k2 == 0 && cur_ok && prev == 1 && got.len == b.len &&
               memcmp(got.data, b.data, got.len) == 0,
               "checkpoint: write_keep makes the new one current and keeps the old one");
    int pr = rt_ckpt_promote(dir, 3, err, sizeof err);
    got.len = 0;
    cur = rt_ckpt_read(dir, 3, &got, err, sizeof err);
    cur_ok = cur == 1 && got.len == b.len && memcmp(got.data, b.data, got.len) == 0;
    unit_check(pr == 0 && cur_ok && rt_ckpt_read_prev(dir, 3, &got, err, sizeof err) == 0,
               "checkpoint: promote makes the kept one current again");
    unit_check(rt_ckpt_promote(dir, 3, err, sizeof err) == -1 && strstr(err, ".prev.ckpt"),
               "checkpoint: promote without a kept one is -1 naming the file (%s)", err);
    rt_buf_free(&third);
    unlink(path);
    rmdir(dir);
    char tiny[8];
    unit_check(rt_ckpt_path(tiny, sizeof tiny, "/var/lib/eddy", 1) == -1,
               "checkpoint: a path that does not fit is -1, not cut");
    rt_buf_free(&b);
    rt_buf_free(&other);
    rt_buf_free(&got);
    return unit_exit();
}
