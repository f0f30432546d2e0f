/* shard.h - the behaviour state of the channels one shard owns.
 *
 * A shard holds two bounded tables (state/table.h): one entry per (platform, channel,
 * user) and one per (platform, channel). A channel and all its users live on one shard,
 * chosen from the channel's hash, so one thread decides everything about a channel in
 * input order and nothing on the hot path takes a lock.
 *
 * All times are event times (ms). Nothing here reads the clock. */
#ifndef WH_SHARD_H
#define WH_SHARD_H

#include <stdio.h>

#include "base/base.h"
#include "rules/rules.h"
#include "state/gcra.h"

#define WH_RECENT 8         /* a user's log entries kept inline; sketches kept (similar) */
#define WH_WAVE_GROUPS 4096 /* groups of similar messages per channel, at most */
#define WH_WAVE_MEMBERS 256 /* distinct users kept per group */
#define WH_WAVE_LIVE                                                                               \
    8 /* live waves a channel compares a message with when its index                               \
         finds no similar group */
#define WH_WAVE_COMPARE                                                                            \
    8 /* a message joins a group if it is like its first or one of                                 \
         its last 8 messages */

/* One user in one channel: 256 bytes (plus 32 of table entry and 8-16 of index), and a heap
 * log for a user with more than 8 messages within the longest window a rule looks back at.
 *
 * The message log is a ring of (time, text hash), newest at head - 1: sliding-window rates
 * read the time `count` messages back, `duplicate` counts equal hashes within its window.
 * It lives in ts/hash (8 entries) until it must hold more: then in `more` (cap entries: cap
 * times, then cap hashes; at most wh_state_cfg.log_cap, WH_LOG_MAX), and back inline once
 * the messages beyond the last 8 are older than every window. Sketches (similar) are kept
 * for the last 8 messages only, in their own ring. */
typedef struct {
    int64_t first_ms;           /* first message seen (0: none yet) */
    int64_t strikes_ms;         /* when `strikes` was last changed */
    double strikes;             /* active strikes at strikes_ms (they decay after) */
    double rep;                 /* reputation */
    int64_t rep_ms;             /* last message that earned reputation */
    int64_t tat[WH_USER_SLOTS]; /* GCRA cells (rate with mode: gcra) */
    int64_t ts[WH_RECENT];      /* the log, inline */
    uint32_t hash[WH_RECENT];
    uint64_t sim[WH_RECENT]; /* sketches of the last 8 messages, newest at sim_head - 1 */
    int64_t *more;           /* the log on the heap, or NULL; owned by the record */
    uint16_t head, n, cap;   /* the log: next write, entries, capacity of `more` */
    uint8_t sim_head;
    uint32_t messages; /* messages seen (saturating) */
} wh_user;

/* A ring of event times for one sliding window of a channel (grown up to the limit's count
 * while the channel is busy). */
typedef struct {
    int64_t *t;
    uint32_t cap, head, n;
} wh_tring;

/* A join remembered for a raid's targets. */
typedef struct {
    int64_t ts;
    uint64_t mask; /* the join rules (wh_rule.join_bit) whose filters this joiner matched */
    char *big;     /* the user's id when 24 bytes or longer, else NULL */
    char id[24];
} wh_joiner;

/* What a channel keeps beyond its fixed record, allocated at the first event that needs it:
 * sliding windows, the recent joins, and which raids already named their joiners. */
typedef struct {
    wh_tring win[WH_CHAN_SLOTS];
    uint64_t named; /* join rules (bits) whose current raid already named its targets */
    wh_joiner *j;   /* ring of recent joins, newest at jhead - 1 */
    uint32_t jcap, jhead, jn;
} wh_chan_ext;

typedef struct {
    uint64_t user;
    int64_t ts;
    uint64_t sim;
    char *big;       /* the user's id as sent (for "targets") when 23 bytes or longer, else NULL */
    char id[23];     /* ... else here, NUL-terminated (no allocation for usual ids) */
    uint8_t counted; /* a message that counts toward a wave by default (a suspect's: a fresh,
                        unknown or low-reputation account, or one with links or mentions) */
} wh_wave_member;

static inline const char *wh_wave_member_id(const wh_wave_member *m)
{
    return m->big ? m->big : m->id;
}

typedef struct {
    uint64_t sim; /* the first message's sketch */
    int64_t last_ms;
    int64_t live_ms;    /* the last message a wave predicate held for (0: not a known wave) */
    uint32_t anchor[2]; /* what it was last filed under */
    uint32_t n, cap;
    uint16_t live_users; /* the largest `users` of a predicate that held at live_ms */
    bool reported;       /* a decision already named its members */
    wh_wave_member *m;
} wh_wave_cluster;

/* A channel's groups of similar recent messages: a pool of groups, and an index from a
 * message's anchors (state/sketch.h) to the group last filed under them, so a message
 * finds its group in O(1) however busy the channel. The pool grows to WH_WAVE_GROUPS;
 * a new group takes a stale one (idle longer than the longest wave window) found by a
 * cursor sweeping the pool, else the least recently active of the next 8. */
typedef struct {
    wh_wave_cluster *g;
    uint32_t ng;                 /* groups in the pool (slots in use or reusable) */
    uint32_t capg;               /* allocated */
    uint32_t cursor;             /* where the next search for a reusable group starts */
    uint32_t *bucket;            /* anchor -> group index + 1 (0: none) */
    uint32_t nbuckets;           /* a power of two, 16 per allocated group up to 16,384 (small
                                    channels stay small) */
    uint32_t live[WH_WAVE_LIVE]; /* known waves (group index + 1, 0: none): a message the index
                                    misses is still compared with these */
} wh_waves;

/* A panic switch lasts at most this long (a longer duration_s is cut to it). */
#define WH_PANIC_MAX_S (7 * 86400)

/* One channel. */
typedef struct {
    int64_t tat[WH_CHAN_SLOTS];         /* GCRA cells (mode: gcra) */
    wh_chan_ext *x;                     /* windows and recent joins, or NULL */
    int64_t mode_until[WH_MODE__COUNT]; /* channel_action modes on until then */
    wh_waves *waves;                    /* allocated at the first message that may form one */
    int64_t panic_until; /* a moderator's panic switch is on until then (event time; 0: off) */
} wh_channel;

typedef struct wh_shard wh_shard;

/* caps are this shard's share of the ruleset's (the caller divides). */
wh_shard *wh_shard_new(uint32_t max_users, uint32_t max_channels, int64_t idle_ms);
void wh_shard_free(wh_shard *s);

/* Keys: a channel's key is a hash of (platform, channel); a user's key keeps the channel
 * key's top 16 bits, which pick the shard, so a snapshot can place every entry again. */
uint64_t wh_chan_key(wh_str platform, wh_str channel);
uint64_t wh_user_key(uint64_t chan_key, wh_str user);
static inline uint32_t wh_shard_of(uint64_t key, uint32_t nshards)
{
    return (uint32_t)((key >> 48) % nshards);
}

/* Entries, created (zeroed) when missing and create is set; NULL otherwise. Valid until
 * the next call on the same table. */
wh_user *wh_shard_user(wh_shard *s, uint64_t key, int64_t now_ms, bool create);
wh_channel *wh_shard_channel(wh_shard *s, uint64_t key, int64_t now_ms, bool create);

/* Prefetches the entries of a user and a channel (stages as wh_table_prefetch). */
void wh_shard_prefetch(const wh_shard *s, uint64_t user_key, uint64_t chan_key,
                       const uint32_t anchor[2], int stage);

/* ---- users ---- */
/* Active strikes: the decayed sum rounded to the nearest whole number, so a strike counts
 * in full until it has decayed below one half (one half-life after the last strike). */
static inline double wh_strikes_whole(double s)
{
    return s > 0 ? (double)(int64_t)(s + 0.5) : 0;
}
double wh_user_strikes(const wh_user *u, const wh_state_cfg *c, int64_t now_ms);
/* Adds w strikes (negative removes, never below 0) and moves reputation by rep_strike * w
 * when w > 0. */
void wh_user_add_strikes(wh_user *u, const wh_state_cfg *c, int64_t now_ms, double w);
void wh_user_add_rep(wh_user *u, const wh_state_cfg *c, double d);
/* Messages of the last `within` ms with this text hash (dup: the whole log) or sketch
 * similarity >= threshold (similar: the last 8), not counting the current one. */
uint32_t wh_user_count_dup(const wh_user *u, uint64_t hash, int64_t now_ms, int64_t within_ms);
uint32_t wh_user_count_similar(const wh_user *u, uint64_t sim, double threshold, int64_t now_ms,
                               int64_t within_ms);
/* A sliding window over the log (the current message not yet in it): true when `count`
 * earlier messages are less than per_ms old, so this one makes count + 1 in one window. */
bool wh_user_window_over(const wh_user *u, int64_t count, int64_t per_ms, int64_t now_ms);
/* Appends a message to the log (growing or shrinking it as c says). */
void wh_user_remember(wh_user *u, const wh_state_cfg *c, uint64_t hash, uint64_t sim,
                      int64_t now_ms);
/* Frees what a record owns (its heap log); the record stays usable. */
void wh_user_release(wh_user *u);

/* ---- channel windows and joins ---- */
/* Counts an event in a channel's sliding window: true when `count` earlier events of the
 * slot are less than per_ms old (this one is over). NULL ext (out of memory) counts nothing. */
wh_chan_ext *wh_chan_ext_get(wh_channel *ch);
bool wh_chan_window_take(wh_chan_ext *x, uint32_t slot, const wh_rate_slot *sl, int64_t now_ms);
/* Remembers a join (for targets), keeping at most c->join_log_cap within c->join_keep_ms. */
void wh_chan_remember_join(wh_chan_ext *x, const wh_state_cfg *c, wh_str user_id, uint64_t mask,
                           int64_t now_ms);

/* ---- waves ---- */
/* Adds a message to the group of similar recent messages in the channel (or a new group);
 * returns the group and the message's similarity to it (1 for a new group). counted: the
 * message counts toward a wave by default (the member keeps it once set). NULL when out of
 * memory. */
wh_wave_cluster *wh_wave_observe(wh_channel *ch, const wh_state_cfg *c, uint64_t user,
                                 wh_str user_id, uint64_t sim, const uint32_t anchor[2],
                                 bool counted, int64_t now_ms, double *similarity);
/* A wave predicate held for a message of g (users: its `users`): g is a known wave, live
 * while messages matching it keep coming (see the engine's WH_C_WAVE), and one the channel
 * compares every message with that its index does not place. */
void wh_wave_mark_live(wh_channel *ch, wh_wave_cluster *g, uint32_t users, int64_t now_ms);
/* Distinct users of the group with a message in the last `within` ms (only_counted: only
 * those whose message counts toward a wave by default). */
uint32_t wh_wave_count(const wh_wave_cluster *g, int64_t now_ms, int64_t within_ms,
                       bool only_counted);

/* ---- metrics ---- */
typedef struct {
    uint64_t users, channels; /* entries now */
    uint64_t user_evictions, channel_evictions;
    uint64_t bytes; /* table memory in use */
} wh_shard_stats;
void wh_shard_stats_add(const wh_shard *s, wh_shard_stats *into);

/* ---- snapshots ----
 * One versioned, checksummed binary file for all shards. Loading places every entry on
 * the shard its key hashes to among n (n may differ from the run that saved it); rate
 * cells follow their limit (count, period, burst) and are dropped when the ruleset no
 * longer has it. Errors name the file and the byte offset. */
wh_status wh_state_save(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                        const char *path, wh_error *e);
wh_status wh_state_load(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                        const char *path, wh_error *e);
wh_status wh_state_load_mem(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                            const char *label, const unsigned char *buf, size_t len, wh_error *e);

/* One partition's part of the state (a bus partition, see io/subject.h): the entries whose
 * key's channel bits place them on partition part of nparts, as wh_shard_of places them.
 * Save writes the same format as a file into *out (malloc'd, *len bytes); drop removes
 * those entries (before a new owner loads the partition's snapshot over stale ones). */
wh_status wh_state_save_part(wh_shard *const *shards, uint32_t n, const wh_state_cfg *c,
                             uint32_t part, uint32_t nparts, char **out, size_t *len, wh_error *e);
void wh_state_drop_part(wh_shard *const *shards, uint32_t n, uint32_t part, uint32_t nparts);

#endif
