/* skeleton_table.h - code point -> ASCII skeleton, for the `skeleton` view.
 *
 * The tables are generated at build time by tools/gen_skeleton.c from ICU data (NFKC_Casefold,
 * accents and zalgo marks stripped, UTS #39 confusables, plus a few letter-like symbols such
 * as regional indicators), so "é", "а" (Cyrillic), "𝐟", "Ｆ", "ⓕ", "🇫" all come out as
 * lowercase ASCII letters, and digits of any script as ASCII digits. ASCII itself is never in
 * the table: the caller handles it (leetspeak and the like are not this table's job). A code
 * point with no entry (CJK, Arabic and Hebrew letters, ...) stays as it is.
 *
 * Layout: a two-level trie. wh_skel_page_index[cp >> 8] picks a page of 256 entries; pages
 * with the same contents are stored once, and page 0 is all zeros (no mapping), which most
 * of the code space shares. An entry is (offset << 8) | length into wh_skel_pool, 0 meaning
 * no mapping; length is at most 8. The pool holds printable ASCII only (0x20..0x7E). */
#ifndef WH_SKELETON_TABLE_H
#define WH_SKELETON_TABLE_H

#include <stdint.h>

extern const uint16_t wh_skel_page_index[0x1100]; /* cp >> 8 -> page; page 0 is all-empty */
extern const uint32_t wh_skel_pages[][256];       /* entry = (offset << 8) | length, 0 = none */
extern const char wh_skel_pool[];                 /* the ASCII strings, concatenated */

/* Returns the skeleton's length (0 = no mapping, including any cp > 0x10FFFF) and points *out
 * at its bytes in wh_skel_pool (not NUL-terminated). *out is always set to a valid pointer,
 * so a caller may copy 0 bytes from it without a branch. */
static inline unsigned wh_skel_lookup(uint32_t cp, const char **out)
{
    uint32_t e = 0;
    if (cp <= 0x10FFFF) e = wh_skel_pages[wh_skel_page_index[cp >> 8]][cp & 0xFF];
    *out = wh_skel_pool + (e >> 8);
    return e & 0xFF;
}

#endif
