/* poison.c - records the supervisor marked after killing a worker stuck on them. */
#include <stdio.h>
#include <string.h>

#include "beat.h"

const char *rt_beat_record(const char *topic, int32_t partition, int64_t offset, char *buf,
                           size_t len)
{
    if (partition == RT_BEAT_FILE)
        snprintf(buf, len, "%s:%lld", topic, (long long)offset);
    else
        snprintf(buf, len, "%s/%d@%lld", topic, (int)partition, (long long)offset);
    return buf;
}

const rt_poison *rt_poison_find(const rt_shared *s, const rt_origin *o)
{
    uint32_t n = __atomic_load_n(&s->npoison, __ATOMIC_ACQUIRE);
    if (!n || (!o->topic && !o->file))
        return NULL;
    int32_t partition = o->topic ? o->partition : RT_BEAT_FILE;
    int64_t offset = o->topic ? o->offset : o->line;
    const char *name = o->topic ? o->topic : o->file;
    uint32_t first = n > RT_POISON_SLOTS ? n - RT_POISON_SLOTS : 0;
    for (uint32_t i = first; i < n; i++) {
        const rt_poison *p = &s->poison[i % RT_POISON_SLOTS];
        if (p->partition == partition && p->offset == offset && strcmp(p->topic, name) == 0)
            return p;
    }
    return NULL;
}
