/* sketch.h - what state remembers of a message's text: an exact hash (duplicates) and a
 * 64-bit SimHash (near-duplicates and spam waves).
 *
 * Both are computed on the squashed view reduced to letters, digits and single spaces,
 * so "B U Y  f0llowers!!" and "buy followers" are the same text, and homoglyphs, fancy
 * fonts, leetspeak and zalgo (already undone by the skeleton) change nothing. Words of 15
 * or more digits (platform ids in emote and mention markup) are left out.
 *
 * SimHash (Charikar 2002) over character 3-grams: similar texts get signatures that
 * differ in few bits; similarity is 1 - hamming/64. For two texts whose 3-gram sets have
 * cosine similarity c, the expected similarity is 1 - acos(c)/pi. */
#ifndef WH_SKETCH_H
#define WH_SKETCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t hash;      /* of the reduced text (0 for an empty text) */
    uint64_t sim;       /* SimHash of its 3-grams */
    uint32_t length;    /* bytes of the reduced text, not counting a word that repeats one of
                           the 4 before it, nor a letter's third and later copies in a row
                           ("gooooo" counts 3) */
    uint32_t anchor[2]; /* the two words of smallest key (length tier, then hash): near-
                           duplicates nearly always share one, so a channel files its groups
                           of similar messages under them and finds a group in O(1) */
} wh_sketch;

/* s[0..n) is the squashed view. Allocation-free. */
void wh_sketch_text(const char *s, uint32_t n, wh_sketch *out);
/* As wh_sketch_text, but the SimHash (the costly part) only when the distinct length is
 * sim_from or more; otherwise sim is 0. UINT32_MAX: never. */
void wh_sketch_text_opt(const char *s, uint32_t n, uint32_t sim_from, wh_sketch *out);

/* The SimHash of an already reduced text, one counter per bit: the slow reference the
 * tests hold wh_sketch_text's bit-sliced counting to. */
uint64_t wh_sketch_sim_reference(const char *r, uint32_t k);

/* 1 - hamming(a, b) / 64. */
static inline double wh_sim_similarity(uint64_t a, uint64_t b)
{
    return 1.0 - (double)__builtin_popcountll(a ^ b) / 64.0;
}

#endif
