/* table.h - a bounded state table: 64-bit keys (a hash of platform, channel and user) to
 * fixed-size zeroed payloads, with least-recently-active eviction at a cap and TTL expiry
 * by event time.
 *
 * One table belongs to one shard thread (no locks). Entries live in one array; the index
 * is open addressing with linear probing and backward-shift deletion (no tombstones, so a
 * long run never degrades); recency is an intrusive list of array indexes. Memory: the
 * payload plus 32 bytes per entry, plus 8 bytes of index per entry (two 4-byte slots).
 * Keys are 64-bit hashes, not the strings: two identities colliding has a probability of
 * about n^2 / 2^65 (3e-8 for a million users), accepted for the memory it saves. (Users'
 * keys share 16 bits with their channel's, see state/shard.h: within one channel of m
 * users the odds are m^2 / 2^49, 0.2% for a million users in a single channel.) */
#ifndef WH_TABLE_H
#define WH_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wh_table wh_table;

/* cap: most entries (>= 1); ttl_ms: entries idle longer than this (event time) expire;
 * 0 = never. Returns NULL when out of memory. */
wh_table *wh_table_new(uint32_t cap, uint32_t payload_size, int64_t ttl_ms);
void wh_table_free(wh_table *t);

/* Called with a payload about to be dropped (evicted, expired, freed, or forgotten on
 * access after the TTL), to release what it points to. */
void wh_table_set_drop(wh_table *t, void (*drop)(void *payload));

/* The payload of key, made recently active at now_ms. With create, a missing key gets a
 * zeroed payload (evicting the least recently active entry when full) and *created is
 * set; without, a missing key returns NULL. The pointer is valid until the next call. */
void *wh_table_get(wh_table *t, uint64_t key, int64_t now_ms, bool create, bool *created);

/* Prefetches what a get of key will touch, in two stages a few hundred ns apart: 0 the
 * index slot, 1 (the slot now cached) the entry; other stages do nothing. */
void wh_table_prefetch(const wh_table *t, uint64_t key, int stage);

/* The payload of key if present, changing nothing (no recency, no expiry); NULL if not. */
void *wh_table_peek(const wh_table *t, uint64_t key);

/* Drops entries idle for longer than the TTL at now_ms; returns how many. */
uint32_t wh_table_expire(wh_table *t, int64_t now_ms);

uint32_t wh_table_count(const wh_table *t);
uint64_t wh_table_evictions(const wh_table *t); /* dropped at the cap (not by TTL) */
uint64_t wh_table_expirations(const wh_table *t);
size_t wh_table_bytes(const wh_table *t); /* memory touched (entries never used are not) */

/* Visits entries from least to most recently active (for snapshots). */
void wh_table_foreach(const wh_table *t,
                      void (*fn)(void *ud, uint64_t key, int64_t last_ms, const void *payload),
                      void *ud);

/* Drops the entries whose key pred holds for (their drop is called); returns how many. */
uint32_t wh_table_remove_if(wh_table *t, bool (*pred)(void *ud, uint64_t key), void *ud);

#endif
