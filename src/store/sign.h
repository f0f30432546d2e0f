/* sign.h - signed audit checkpoints (like Certificate Transparency's signed tree heads,
 * RFC 9162): an Ed25519 signature over (key id, sequence, head hash, time), so that whoever
 * holds the database cannot rewrite, reorder or cut rows that a signature covers without the
 * key. docs/api.md, "The threat model", says what each copy of them proves.
 *
 * The signed message is the text
 *   "whiply-audit-checkpoint/v1\n" KEY_ID "\n" SEQ "\n" HEAD "\n" TIME_MS "\n"
 * (KEY_ID: 16 hex digits, the first 8 bytes of SHA-256 of the raw public key; HEAD: 64 hex
 * digits; SEQ and TIME_MS in decimal), and a checkpoint travels as one JSON line:
 *   {"v":1,"key_id":"..","seq":N,"head":"..","time_ms":T,"sig":"<128 hex digits>"}
 *
 * A signer belongs to one thread (the audit writer); a publisher is a thread of its own
 * that appends checkpoints to a file (fsync'd) and POSTs them to a URL with retries, so
 * neither a slow disk nor a dead witness ever waits in a commit. */
#ifndef WH_SIGN_H
#define WH_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct {
    uint64_t seq;     /* the newest row covered */
    uint8_t head[32]; /* that row's hash */
    int64_t time_ms;  /* when it was signed (wall clock) */
    uint8_t key_id[8];
    uint8_t sig[64];
} wh_checkpoint;

typedef struct wh_signer wh_signer;

/* Loads the PEM private key at path, or makes one there (mode 0600, O_EXCL) when the file
 * does not exist; also (re)writes PATH.pub, its public half as PEM. NULL with err set. */
wh_signer *wh_signer_open(const char *path, bool *created, wh_error *e);
void wh_signer_free(wh_signer *sg);
const uint8_t *wh_signer_pubkey(const wh_signer *sg); /* 32 raw bytes */
/* Fills cp->key_id and cp->sig for cp's seq, head and time_ms. */
bool wh_signer_sign(wh_signer *sg, wh_checkpoint *cp);

/* A public key from a file: PEM (SubjectPublicKeyInfo, as PATH.pub is written), or a line
 * of 64 hex digits, optionally after "ed25519:" (as the daemon prints it). */
bool wh_pubkey_load(const char *path, uint8_t pub[32], wh_error *e);
void wh_key_id(const uint8_t pub[32], uint8_t id[8]);
/* True when cp's key id is pub's and its signature verifies. */
bool wh_checkpoint_verify(const uint8_t pub[32], const wh_checkpoint *cp);

/* The JSON line (without a newline) of cp, appended to out. */
void wh_checkpoint_json(const wh_checkpoint *cp, wh_buf *out);
/* Parses a line wh_checkpoint_json wrote (field order as written); false otherwise. */
bool wh_checkpoint_parse(const char *line, size_t n, wh_checkpoint *cp);
/* The last complete line of a checkpoints file: 1 found (parsed into cp), 0 the file is
 * missing or empty, -1 it cannot be read or its last line is not a checkpoint (err set). */
int wh_checkpoint_last_in_file(const char *path, wh_checkpoint *cp, wh_error *e);

typedef struct wh_publisher wh_publisher;
/* file and url may be NULL (nowhere). sync_path (may be NULL) is fdatasync'd before a
 * checkpoint is appended, so that a file entry never claims rows a power loss could still
 * take back (the WAL, under store.sync: normal). */
wh_publisher *wh_publisher_start(const char *file, const char *url, const char *sync_path,
                                 wh_error *e);
/* Queues cp (copied); never blocks on I/O. */
void wh_publisher_put(wh_publisher *p, const wh_checkpoint *cp);
/* Appends what is queued to the file, tries the URL once more (briefly), stops the thread. */
void wh_publisher_stop(wh_publisher *p);

#endif
