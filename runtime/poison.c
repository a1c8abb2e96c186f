/* poison.c - records the supervisor marked after killing a worker stuck on them. */
#include <string.h>

#include "beat.h"

const rt_poison *rt_poison_find(const rt_shared *s, const rt_origin *o)
{
    uint32_t n = __atomic_load_n(&s->npoison, __ATOMIC_ACQUIRE);
    if (!n || !o->topic)
        return NULL;
    uint32_t first = n > RT_POISON_SLOTS ? n - RT_POISON_SLOTS : 0;
    for (uint32_t i = first; i < n; i++) {
        const rt_poison *p = &s->poison[i % RT_POISON_SLOTS];
        if (p->partition == o->partition && p->offset == o->offset &&
            strcmp(p->topic, o->topic) == 0)
            return p;
    }
    return NULL;
}
