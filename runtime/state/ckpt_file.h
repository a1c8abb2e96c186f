/* ckpt_file.h - the bytes of a checkpoint: little-endian fields appended to a buffer,
 * read back with bounds checks, and one file per input partition written atomically
 * (write, fsync, rename, fsync of the directory) and checked by a checksum on read. */
#ifndef RT_CKPT_FILE_H
#define RT_CKPT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "window.h"

/* Append fields; 0 or -1 when out of memory. Bytes go as a u32 length, then bytes. */
int rt_ckpt_put_u64(rt_buf *b, uint64_t v);
int rt_ckpt_put_i64(rt_buf *b, int64_t v);
int rt_ckpt_put_f64(rt_buf *b, double v);
int rt_ckpt_put_bytes(rt_buf *b, const void *p, size_t n);

/* A cursor over a checkpoint's body. Reading past the end sets `bad` and yields 0. */
typedef struct rt_ckpt_reader {
    const unsigned char *p;
    size_t n, pos;
    int bad;
} rt_ckpt_reader;

uint64_t    rt_ckpt_get_u64(rt_ckpt_reader *r);
int64_t     rt_ckpt_get_i64(rt_ckpt_reader *r);
double      rt_ckpt_get_f64(rt_ckpt_reader *r);
/* Bytes in place (not NUL-terminated); *n gets their length. */
const char *rt_ckpt_get_bytes(rt_ckpt_reader *r, size_t *n);

/* One window pane's fields. put: 0 or -1 when out of memory. get: -1 when out of
 * memory; the accumulator is malloc'd into p->acc (NULL when empty). */
int rt_ckpt_put_pane(rt_buf *b, const rt_pane *p);
int rt_ckpt_get_pane(rt_ckpt_reader *r, rt_pane *p);
/* A key's count of panes, then its windows and its slices (rt_windows_restore tells
 * them apart by length). 0 or -1 when out of memory. */
int rt_ckpt_put_panes(rt_buf *b, const rt_wkey *k);

/* "<dir>/partition-<n>.ckpt" into path; -1 when it does not fit. */
int rt_ckpt_path(char *path, size_t len, const char *dir, int32_t partition);
/* Replace the partition's checkpoint with `body` atomically. -1 with err set. */
int rt_ckpt_write(const char *dir, int32_t partition, const rt_buf *body, char *err,
                  size_t errlen);
/* The same, keeping the checkpoint it replaces as "partition-<n>.prev.ckpt"
 * (exactly_once: until the transaction commits, the committed offsets stand for it). */
int rt_ckpt_write_keep(const char *dir, int32_t partition, const rt_buf *body, char *err,
                       size_t errlen);
/* Make the kept previous checkpoint the current one again. -1 with err set. */
int rt_ckpt_promote(const char *dir, int32_t partition, char *err, size_t errlen);
/* The body of the partition's checkpoint into `body`: 1 when read, 0 when there is
 * none, -1 with err set when it is unreadable or damaged. */
int rt_ckpt_read(const char *dir, int32_t partition, rt_buf *body, char *err,
                 size_t errlen);
/* The same for the kept previous checkpoint. */
int rt_ckpt_read_prev(const char *dir, int32_t partition, rt_buf *body, char *err,
                      size_t errlen);

#endif
