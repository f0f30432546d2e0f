/* assets.h - the dashboard's files (web/), bundled and embedded at build time by
 * tools/embed_assets.py (meson.build: the `dashboard` custom targets). No file is read
 * from disk at run time and nothing is fetched from elsewhere: the daemon serves these. */
#ifndef WH_ASSETS_H
#define WH_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name; /* "index.html" (served at /), else served at /assets/NAME */
    const char *mime;
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* the same, gzip-compressed */
    size_t gzlen;
} wh_asset;

extern const wh_asset wh_assets[];
extern const unsigned wh_nassets;
extern const char wh_assets_tag[];            /* a hash of every file: the ETag */
extern const unsigned long wh_assets_js_gzip; /* bytes of JavaScript, compressed */

/* The asset called name, or NULL. */
const wh_asset *wh_asset_find(const char *name);

#endif
