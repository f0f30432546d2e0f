/* table.c - see table.h. */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

typedef struct {
    uint64_t key;
    int64_t last_ms;
    uint32_t prev, next; /* recency list: prev is older, next is newer */
    uint32_t slot;       /* where the index points at this entry */
    uint32_t pad;
} entry;

struct wh_table {
    uint32_t cap, count, payload_size, entry_size;
    int64_t ttl_ms;
    uint32_t nslots, mask; /* index size: a power of two >= 2 * cap */
    uint32_t *slots;       /* entry index + 1; 0 = empty */
    unsigned char *entries;
    uint32_t oldest, newest, free_head;
    uint32_t fresh; /* entries [fresh, cap) were never used: not touched, so not resident */
    uint64_t evictions, expirations;
    void (*drop)(void *payload);
};

void wh_table_set_drop(wh_table *t, void (*drop)(void *payload))
{
    t->drop = drop;
}

static inline entry *ent(const wh_table *t, uint32_t i)
{
    return (entry *)(t->entries + (size_t)i * t->entry_size);
}

static inline uint32_t home(const wh_table *t, uint64_t key)
{
    /* the key is already a hash; fold the high bits in for small tables */
    return (uint32_t)(key ^ (key >> 32)) & t->mask;
}

wh_table *wh_table_new(uint32_t cap, uint32_t payload_size, int64_t ttl_ms)
{
    if (cap == 0 || cap > (1u << 30)) return NULL;
    wh_table *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->cap = cap;
    t->payload_size = payload_size;
    t->entry_size = (uint32_t)((sizeof(entry) + payload_size + 7) & ~(size_t)7);
    t->ttl_ms = ttl_ms;
    t->nslots = 2;
    while (t->nslots < 2 * cap)
        t->nslots *= 2;
    t->mask = t->nslots - 1;
    t->slots = calloc(t->nslots, sizeof(uint32_t));
    t->entries = malloc((size_t)cap * t->entry_size);
    if (!t->slots || !t->entries) {
        wh_table_free(t);
        return NULL;
    }
    t->oldest = t->newest = NIL;
    /* The free list (threaded through `next`) holds removed entries; never-used ones are
     * taken from `fresh` upwards, so memory becomes resident only as the table fills. */
    t->free_head = NIL;
    t->fresh = 0;
    return t;
}

void wh_table_free(wh_table *t)
{
    if (!t) return;
    if (t->drop)
        for (uint32_t i = t->oldest; i != NIL; i = ent(t, i)->next)
            t->drop((unsigned char *)ent(t, i) + sizeof(entry));
    free(t->slots);
    free(t->entries);
    free(t);
}

static void unlink_recent(wh_table *t, uint32_t i)
{
    entry *e = ent(t, i);
    if (e->prev != NIL)
        ent(t, e->prev)->next = e->next;
    else
        t->oldest = e->next;
    if (e->next != NIL)
        ent(t, e->next)->prev = e->prev;
    else
        t->newest = e->prev;
}

static void push_newest(wh_table *t, uint32_t i)
{
    entry *e = ent(t, i);
    e->prev = t->newest;
    e->next = NIL;
    if (t->newest != NIL)
        ent(t, t->newest)->next = i;
    else
        t->oldest = i;
    t->newest = i;
}

/* Removes entry i: index slot (backward-shift, so probe runs stay unbroken), recency list,
 * and returns it to the free list. */
static void remove_entry(wh_table *t, uint32_t i)
{
    if (t->drop) t->drop((unsigned char *)ent(t, i) + sizeof(entry));
    uint32_t s = ent(t, i)->slot;
    t->slots[s] = 0;
    for (uint32_t j = (s + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
        uint32_t k = t->slots[j] - 1;
        uint32_t h = home(t, ent(t, k)->key);
        /* move k back into the hole if its home is not in (s, j] */
        bool between = s <= j ? (h > s && h <= j) : (h > s || h <= j);
        if (!between) {
            t->slots[s] = t->slots[j];
            ent(t, k)->slot = s;
            t->slots[j] = 0;
            s = j;
        }
    }
    unlink_recent(t, i);
    ent(t, i)->next = t->free_head;
    t->free_head = i;
    t->count--;
}

void *wh_table_get(wh_table *t, uint64_t key, int64_t now_ms, bool create, bool *created)
{
    if (created) *created = false;
    uint32_t s = home(t, key);
    for (; t->slots[s]; s = (s + 1) & t->mask) {
        uint32_t i = t->slots[s] - 1;
        entry *e = ent(t, i);
        if (e->key != key) continue;
        if (t->ttl_ms > 0 && now_ms - e->last_ms > t->ttl_ms) {
            /* idle past the TTL: forgotten, whether or not a sweep came by yet (so decisions
             * never depend on when expire() ran) */
            if (!create) return NULL;
            if (t->drop) t->drop((unsigned char *)e + sizeof(entry));
            memset((unsigned char *)e + sizeof(entry), 0, t->payload_size);
            if (created) *created = true;
        }
        if (now_ms > e->last_ms) e->last_ms = now_ms; /* event time never goes back */
        if (t->newest != i) {
            unlink_recent(t, i);
            push_newest(t, i);
        }
        return (unsigned char *)e + sizeof(entry);
    }
    if (!create) return NULL;
    if (t->count == t->cap) {
        remove_entry(t, t->oldest);
        t->evictions++;
        /* the removal may have shifted the run: find the empty slot again */
        for (s = home(t, key); t->slots[s]; s = (s + 1) & t->mask) {
        }
    }
    uint32_t i;
    entry *e;
    if (t->free_head != NIL) {
        i = t->free_head;
        e = ent(t, i);
        t->free_head = e->next;
    } else {
        i = t->fresh++;
        e = ent(t, i);
    }
    e->key = key;
    e->last_ms = now_ms;
    e->slot = s;
    memset((unsigned char *)e + sizeof(entry), 0, t->payload_size);
    t->slots[s] = i + 1;
    push_newest(t, i);
    t->count++;
    if (created) *created = true;
    return (unsigned char *)e + sizeof(entry);
}

void *wh_table_peek(const wh_table *t, uint64_t key)
{
    for (uint32_t s = home(t, key); t->slots[s]; s = (s + 1) & t->mask) {
        entry *e = ent(t, t->slots[s] - 1);
        if (e->key == key) return (unsigned char *)e + sizeof(entry);
    }
    return NULL;
}

void wh_table_prefetch(const wh_table *t, uint64_t key, int stage)
{
    uint32_t s = home(t, key);
    if (stage == 0) {
        __builtin_prefetch(&t->slots[s]);
        return;
    }
    if (stage != 1) return;
    uint32_t v = t->slots[s];
    if (!v) return;
    const unsigned char *e = (const unsigned char *)ent(t, v - 1);
    for (uint32_t off = 0; off < t->entry_size; off += 64)
        __builtin_prefetch(e + off, 1);
}

uint32_t wh_table_expire(wh_table *t, int64_t now_ms)
{
    if (t->ttl_ms <= 0) return 0;
    uint32_t n = 0;
    while (t->oldest != NIL && now_ms - ent(t, t->oldest)->last_ms > t->ttl_ms) {
        remove_entry(t, t->oldest);
        n++;
    }
    t->expirations += n;
    return n;
}

uint32_t wh_table_count(const wh_table *t)
{
    return t->count;
}

uint64_t wh_table_evictions(const wh_table *t)
{
    return t->evictions;
}

uint64_t wh_table_expirations(const wh_table *t)
{
    return t->expirations;
}

size_t wh_table_bytes(const wh_table *t)
{
    /* what has been touched: the index, and every entry ever used */
    return sizeof(*t) + (size_t)t->nslots * sizeof(uint32_t) + (size_t)t->fresh * t->entry_size;
}

void wh_table_foreach(const wh_table *t,
                      void (*fn)(void *ud, uint64_t key, int64_t last_ms, const void *payload),
                      void *ud)
{
    for (uint32_t i = t->oldest; i != NIL; i = ent(t, i)->next) {
        const entry *e = ent(t, i);
        fn(ud, e->key, e->last_ms, (const unsigned char *)e + sizeof(entry));
    }
}

uint32_t wh_table_remove_if(wh_table *t, bool (*pred)(void *ud, uint64_t key), void *ud)
{
    uint32_t n = 0;
    for (uint32_t i = t->oldest; i != NIL;) {
        uint32_t next = ent(t, i)->next; /* remove_entry reuses next for the free list */
        if (pred(ud, ent(t, i)->key)) {
            remove_entry(t, i);
            n++;
        }
        i = next;
    }
    return n;
}
