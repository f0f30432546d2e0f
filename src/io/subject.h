/* subject.h - where an event goes on the bus (docs/bus.md): its partition and the NATS
 * subjects of the event, its decision and its action.
 *
 *   whiply.in.<platform>.<channel>                  what anyone may publish to (a subject
 *                                                   mapping in the server places it below)
 *   whiply.events.<partition>.<platform>.<channel>  the events stream, one consumer a partition
 *   whiply.decisions.<partition>.<platform>.<channel>
 *   whiply.actions.<platform>.<channel>             what adapters carry out
 *
 * The partition of (platform, channel) is the hash that places a channel on a state shard
 * (wh_chan_key, wh_shard_of), so a channel's events all land in one partition, in order.
 * Platform and channel names become subject tokens byte for byte where they are letters,
 * digits, '_' or '-'; every other byte (a '.', '*', '>', '#', a space, any non-ASCII byte)
 * is written '~' and two upper-case hex digits, and an empty name is a lone "~". The
 * encoding is reversible: wh_subject_token_decode gives the name back. */
#ifndef WH_IO_SUBJECT_H
#define WH_IO_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define WH_BUS_MAX_PARTITIONS 1024
#define WH_BUS_MAX_PARTITIONS_BYTES (WH_BUS_MAX_PARTITIONS / 8)

/* The partition (0..npart-1) of a channel. */
uint32_t wh_bus_partition(wh_str platform, wh_str channel, uint32_t npart);

/* Appends name as one subject token. */
void wh_subject_token(wh_buf *out, wh_str name);
/* Decodes one token (no '.') into out; false when it is not an encoding of any name (a
 * byte outside the set, a '~' not followed by two upper-case hex digits, or a byte that
 * should have stayed literal written as '~XX'). */
bool wh_subject_token_decode(const char *s, size_t n, wh_buf *out);

/* The subjects of an event: whiply.events.P.PLATFORM.CHANNEL, whiply.decisions.P.…,
 * whiply.actions.PLATFORM.CHANNEL. Each resets out, and ends it with a NUL (not counted in
 * out->len). */
void wh_subject_events(wh_buf *out, uint32_t part, wh_str platform, wh_str channel);
void wh_subject_decisions(wh_buf *out, uint32_t part, wh_str platform, wh_str channel);
void wh_subject_actions(wh_buf *out, wh_str platform, wh_str channel);

/* An event's Nats-Msg-Id: its id as JSON escapes it, without the quotes (the form the id has
 * in a decision line, so the daemon's "d:<id>" and "a:<id>" match it; and never a control
 * character, which a header value cannot hold). Resets out and NUL-terminates it. */
void wh_bus_msg_id(wh_buf *out, wh_str id);

#endif
