/* cmd_ml.c - `whiply train` and `whiply eval`: the built-in classifier from labelled NDJSON
 * ({"text": "...", "label": "spam"} or {"text": "...", "labels": ["toxic", "insult"]}). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "cli.h"
#include "engine/event.h"
#include "ml/ml.h"
#include "text/utf8.h"

#define MAX_NAMES 256
#define MAX_SHOWN_ERRORS 20

/* The labels that mean "none of them" by default (--negative replaces the list). */
static const char *const default_negatives = "ham,ok,clean,none,normal,neutral";

typedef struct {
    wh_ml_example *ex;
    uint32_t n, cap;
    uint64_t *names; /* per example: bit i = it carries names[i] (before mapping to heads) */
    char *names_v[MAX_NAMES];
    uint32_t nnames;
    uint32_t skipped;
    char *file; /* owns the text of the examples without escapes */
    wh_arena arena;
} dataset;

static void dataset_free(dataset *d)
{
    free(d->ex);
    free(d->names);
    for (uint32_t i = 0; i < d->nnames; i++)
        free(d->names_v[i]);
    free(d->file);
    wh_arena_free(&d->arena);
}

/* The index of a label name, adding it when new; -1 when there are 64 already. Names of a
 * line are added only once the whole line is accepted (names_commit), so a skipped line
 * leaves no label behind: until then new names are pending, after d->nnames. */
static int name_index(dataset *d, const char *p, size_t n, uint32_t *pending)
{
    for (uint32_t i = 0; i < d->nnames + *pending; i++)
        if (strlen(d->names_v[i]) == n && !memcmp(d->names_v[i], p, n)) return (int)i;
    uint32_t k = d->nnames + *pending;
    if (k == 64 || k == MAX_NAMES) return -1;
    d->names_v[k] = strndup(p, n);
    if (!d->names_v[k]) return -1;
    ++*pending;
    return (int)k;
}

static void names_drop(dataset *d, uint32_t pending)
{
    for (uint32_t i = 0; i < pending; i++) {
        free(d->names_v[d->nnames + i]);
        d->names_v[d->nnames + i] = NULL;
    }
}

static void skip(dataset *d, const char *path, uint64_t line, const char *why)
{
    if (d->skipped++ < MAX_SHOWN_ERRORS)
        fprintf(stderr, "%s:%llu: skipped: %s\n", path, (unsigned long long)line, why);
}

static bool str_tok(const char *js, const wh_jtok *t, wh_arena *a, wh_str *out)
{
    const char *p = js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (!t->escaped) {
        *out = (wh_str){p, (uint32_t)n};
        return true;
    }
    char *o = wh_arena_alloc(a, n + 1);
    size_t w = 0, bad = 0;
    if (!o || !wh_json_unescape(p, n, o, &w, &bad)) return false;
    o[w] = 0;
    *out = (wh_str){o, (uint32_t)w};
    return true;
}

/* One line: its text and its label names; false (with why) when it is not an example. */
static bool parse_line(dataset *d, char *line, size_t len, wh_jtok **tok, int *cap,
                       wh_ml_example *ex, uint64_t *names, uint32_t *pending, const char **why)
{
    size_t epos;
    const char *ewhat;
    int nt;
    while ((nt = wh_json_tokenize(line, len, *tok, *cap, 64, &epos, &ewhat)) == WH_J_ENOMEM &&
           *cap < (1 << 22)) {
        wh_jtok *t2 = realloc(*tok, (size_t)*cap * 2 * sizeof(wh_jtok));
        if (!t2) break;
        *tok = t2;
        *cap *= 2;
    }
    static char buf[160];
    if (nt < 0) {
        wh_json_describe(nt, ewhat, epos, 64, buf, sizeof(buf));
        *why = buf;
        return false;
    }
    wh_jtok *t = *tok;
    if (t[0].type != WH_J_OBJECT) return *why = "not a JSON object", false;
    bool has_text = false, has_label = false;
    *names = 0;
    for (int i = 1; i < nt; i = t[i + 1].next) {
        const char *k = line + t[i].start;
        size_t kl = (size_t)(t[i].end - t[i].start);
        const wh_jtok *v = &t[i + 1];
        if (kl == 4 && !memcmp(k, "text", 4)) {
            wh_str s;
            if (v->type != WH_J_STRING) return *why = "\"text\" is not a string", false;
            if (!str_tok(line, v, &d->arena, &s)) return *why = "bad escape in \"text\"", false;
            size_t bad = wh_utf8_invalid_at(s.p, s.n);
            if (bad != (size_t)-1) {
                snprintf(buf, sizeof(buf), "invalid UTF-8 at byte %zu of \"text\"", bad);
                return *why = buf, false;
            }
            ex->text = s.p;
            ex->len = s.n;
            has_text = true;
        } else if ((kl == 5 && !memcmp(k, "label", 5)) || (kl == 6 && !memcmp(k, "labels", 6))) {
            int j = i + 1, end = v->next, step = 1;
            if (v->type == WH_J_ARRAY)
                j++;
            else if (v->type != WH_J_STRING)
                return *why = "a label is a string, labels an array of strings", false;
            for (; j < end; j += step) {
                wh_str s;
                if (t[j].type != WH_J_STRING || !str_tok(line, &t[j], &d->arena, &s) || !s.n ||
                    memchr(s.p, 0, s.n) || wh_utf8_invalid_at(s.p, s.n) != (size_t)-1)
                    return *why = "a label is a non-empty string of UTF-8 without NUL", false;
                int ni = name_index(d, s.p, s.n, pending);
                if (ni < 0)
                    return *why = "more than 64 different label names (negative ones included)",
                           false;
                *names |= 1ull << ni;
            }
            has_label = true;
        }
    }
    if (!has_text) return *why = "no \"text\"", false;
    if (!has_label) return *why = "no \"label\" or \"labels\"", false;
    return true;
}

static bool dataset_load(const char *path, dataset *d)
{
    memset(d, 0, sizeof(*d));
    wh_arena_init(&d->arena, 1 << 20);
    size_t len;
    if (wh_read_file(path, &d->file, &len) != WH_OK) {
        fprintf(stderr, "whiply: cannot read %s\n", path);
        return false;
    }
    int cap = 256;
    wh_jtok *tok = malloc((size_t)cap * sizeof(wh_jtok));
    uint64_t line_no = 0;
    bool ok = tok != NULL;
    for (char *p = d->file, *end = d->file + len; ok && p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line_no++;
        char *line = p;
        p += n + 1;
        bool blank = true;
        for (size_t i = 0; i < n && blank; i++)
            blank = line[i] == ' ' || line[i] == '\t' || line[i] == '\r';
        if (blank) continue;
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 1024;
            wh_ml_example *e2 = realloc(d->ex, d->cap * sizeof(*e2));
            uint64_t *n2 = realloc(d->names, d->cap * sizeof(*n2));
            if (e2) d->ex = e2;
            if (n2) d->names = n2;
            if (!e2 || !n2) {
                ok = false;
                break;
            }
        }
        const char *why = NULL;
        wh_ml_example ex = {0};
        uint64_t names = 0;
        uint32_t pending = 0;
        if (n > WH_MAX_LINE) {
            /* as for events: the engine never scores a longer text */
            char buf[96];
            snprintf(buf, sizeof(buf), "line is %zu bytes; the limit is %d", n, WH_MAX_LINE);
            skip(d, path, line_no, buf);
            continue;
        }
        if (!parse_line(d, line, n, &tok, &cap, &ex, &names, &pending, &why)) {
            names_drop(d, pending);
            skip(d, path, line_no, why);
            continue;
        }
        d->nnames += pending;
        d->ex[d->n] = ex;
        d->names[d->n++] = names;
    }
    free(tok);
    if (!ok) fprintf(stderr, "whiply: out of memory reading %s\n", path);
    if (d->skipped)
        fprintf(stderr, "%s: %u line%s skipped%s\n", path, d->skipped, d->skipped == 1 ? "" : "s",
                d->skipped > MAX_SHOWN_ERRORS ? " (the first 20 shown)" : "");
    if (ok && !d->n) {
        fprintf(stderr, "whiply: %s has no labelled examples\n", path);
        ok = false;
    }
    return ok;
}

static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && !memcmp(p, name, n)) return true;
        p += l + (c != NULL);
    }
    return false;
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The model's labels: every name in the data but the negative ones, sorted; and each
 * example's label bits over them. */
static uint32_t map_labels(dataset *d, const char *negatives, const char **labels)
{
    uint32_t nl = 0;
    for (uint32_t i = 0; i < d->nnames; i++)
        if (!in_list(negatives, d->names_v[i])) labels[nl++] = d->names_v[i];
    qsort(labels, nl, sizeof(char *), str_ptr_cmp);
    for (uint32_t e = 0; e < d->n; e++) {
        uint64_t bits = 0;
        for (uint32_t l = 0; l < nl; l++)
            for (uint32_t i = 0; i < d->nnames; i++)
                if ((d->names[e] >> i & 1) && d->names_v[i] == labels[l]) bits |= 1ull << l;
        d->ex[e].labels = bits;
    }
    return nl;
}

/* The same for a model's labels: names the model does not have count as negatives. */
static void map_to_model(dataset *d, const wh_model *m, const char *negatives)
{
    for (uint32_t i = 0; i < d->nnames; i++)
        if (wh_model_find_label(m, d->names_v[i]) < 0 && !in_list(negatives, d->names_v[i]))
            fprintf(stderr, "whiply: label '%s' is not one of the model's: counted as negative\n",
                    d->names_v[i]);
    for (uint32_t e = 0; e < d->n; e++) {
        uint64_t bits = 0;
        for (uint32_t i = 0; i < d->nnames; i++) {
            int32_t l = (d->names[e] >> i & 1) ? wh_model_find_label(m, d->names_v[i]) : -1;
            if (l >= 0) bits |= 1ull << l;
        }
        d->ex[e].labels = bits;
    }
}

/* ---- options shared by train and eval --folds ---- */

typedef struct {
    wh_ml_train_opts t;
    const char *negatives;
} train_cfg;

enum {
    O_SEED = 256,
    O_EPOCHS,
    O_LR,
    O_L2,
    O_BITS,
    O_WORDS,
    O_CHARS,
    O_NEG,
    O_NEGW,
    O_BAG,
    O_QUIET,
    O_FOLDS,
    O_THRESH,
    O_JSON
};

#define TRAIN_LONGOPTS                                                                             \
    {"seed", required_argument, NULL, O_SEED}, {"epochs", required_argument, NULL, O_EPOCHS},      \
        {"lr", required_argument, NULL, O_LR}, {"l2", required_argument, NULL, O_L2},              \
        {"bits", required_argument, NULL, O_BITS},                                                 \
        {"word-ngrams", required_argument, NULL, O_WORDS},                                         \
        {"char-ngrams", required_argument, NULL, O_CHARS},                                         \
        {"negative", required_argument, NULL, O_NEG},                                              \
        {"negative-weight", required_argument, NULL, O_NEGW},                                      \
        {"bag", required_argument, NULL, O_BAG},                                                   \
    {                                                                                              \
        "quiet", no_argument, NULL, O_QUIET                                                        \
    }

#define TRAIN_USAGE                                                                                \
    "  --seed N           example order (default 1): the same seed, data and options give\n"       \
    "                     the same model bytes\n"                                                  \
    "  --epochs N         passes over the data (default 10)\n"                                     \
    "  --lr X             AdaGrad learning rate (default 0.5)\n"                                   \
    "  --l2 X             L2 penalty (default 1e-6)\n"                                             \
    "  --bits N           2^N hashed feature buckets, 10..24 (default 20: 4 MiB a label)\n"        \
    "  --word-ngrams N    words up to N-grams, 1..3 (default 2)\n"                                 \
    "  --char-ngrams A-B  character n-grams of A to B bytes, 2..8, or 0 (default 3-5)\n"           \
    "  --negative LIST    labels that mean none (default ham,ok,clean,none,normal,neutral)\n"      \
    "  --negative-weight X  a negative example counts X times (default 2: a false positive\n"      \
    "                     costs more than a miss)\n"                                               \
    "  --bag N            average N runs, each in its own example order, 1..32 (default 3:\n"      \
    "                     N times the training time, nothing more when scoring)\n"                 \
    "  --quiet            no progress lines on stderr\n"

static bool num_arg(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "whiply: --%s wants a number from %g to %g, got '%s'\n", opt, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

/* One train option; 1 handled, 0 not a train option, -1 bad value. */
static int train_opt(int c, const char *arg, train_cfg *tc)
{
    double v;
    switch (c) {
    case O_SEED:
        if (!num_arg("seed", arg, 0, 9007199254740991.0, &v)) return -1;
        tc->t.seed = (uint64_t)v;
        return 1;
    case O_EPOCHS:
        if (!num_arg("epochs", arg, 1, 1000, &v)) return -1;
        tc->t.epochs = (uint32_t)v;
        return 1;
    case O_LR:
        if (!num_arg("lr", arg, 1e-6, 100, &v)) return -1;
        tc->t.lr = v;
        return 1;
    case O_L2:
        if (!num_arg("l2", arg, 0, 1, &v)) return -1;
        tc->t.l2 = v;
        return 1;
    case O_BITS:
        if (!num_arg("bits", arg, 10, 24, &v)) return -1;
        tc->t.f.bits = (uint8_t)v;
        return 1;
    case O_WORDS:
        if (!num_arg("word-ngrams", arg, 1, 3, &v)) return -1;
        tc->t.f.word_ngrams = (uint8_t)v;
        return 1;
    case O_CHARS: {
        unsigned a = 0, b = 0;
        int k = 0;
        if (!strcmp(arg, "0"))
            a = b = 0;
        else if (sscanf(arg, "%u-%u%n", &a, &b, &k) == 2 && !arg[k])
            ; /* A-B */
        else if (sscanf(arg, "%u%n", &a, &k) == 1 && !arg[k])
            b = a; /* A alone: A-A */
        else
            a = b = 1; /* not a range: refused below */
        if ((a || b) && (a < 2 || b < a || b > 8)) {
            fprintf(stderr,
                    "whiply: --char-ngrams wants A-B with 2 <= A <= B <= 8, or 0; got '%s'\n", arg);
            return -1;
        }
        tc->t.f.char_lo = (uint8_t)a;
        tc->t.f.char_hi = (uint8_t)b;
        return 1;
    }
    case O_NEG:
        tc->negatives = arg;
        return 1;
    case O_NEGW:
        if (!num_arg("negative-weight", arg, 0.01, 100, &v)) return -1;
        tc->t.neg_weight = v;
        return 1;
    case O_BAG:
        if (!num_arg("bag", arg, 1, WH_ML_MAX_BAG, &v)) return -1;
        tc->t.bag = (uint32_t)v;
        return 1;
    case O_QUIET:
        tc->t.progress = false;
        return 1;
    }
    return 0;
}

static void train_cfg_init(train_cfg *tc)
{
    wh_ml_train_defaults(&tc->t);
    tc->t.progress = true;
    tc->negatives = default_negatives;
}

/* The labels a model of d learns (map_labels), or 0 after saying there are none. */
static uint32_t model_labels(const train_cfg *tc, dataset *d, const char **labels)
{
    uint32_t nl = map_labels(d, tc->negatives, labels);
    if (!nl)
        fprintf(stderr,
                "whiply: every label in the data is a negative one (%s): nothing to learn\n",
                tc->negatives);
    return nl;
}

/* Trains on ex[0..n), whose label bits are over labels[0..nl) (model_labels). */
static wh_status train_model(const train_cfg *tc, const char *const *labels, uint32_t nl,
                             const wh_ml_example *ex, uint32_t n, wh_buf *out)
{
    /* the examples of each label, for the metadata */
    wh_buf extra;
    wh_buf_init(&extra);
    wh_buf_puts(&extra, "\"positives\":{");
    for (uint32_t l = 0; l < nl; l++) {
        uint32_t c = 0;
        for (uint32_t e = 0; e < n; e++)
            c += (ex[e].labels >> l) & 1;
        if (l) wh_buf_putc(&extra, ',');
        wh_buf_json_str(&extra, labels[l], strlen(labels[l]));
        wh_buf_printf(&extra, ":%u", c);
    }
    wh_buf_putc(&extra, '}');
    wh_error err;
    wh_status st = wh_ml_train(&tc->t, labels, nl, ex, n, wh_buf_cstr(&extra), out, &err);
    if (st != WH_OK) fprintf(stderr, "whiply: training failed: %s\n", err.message);
    wh_buf_free(&extra);
    return st;
}

int wh_cmd_train(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             TRAIN_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *data = NULL, *outp = NULL;
    train_cfg tc;
    train_cfg_init(&tc);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:o:h", longopts, NULL)) != -1) {
        int r = train_opt(c, optarg, &tc);
        if (r < 0) return WH_EXIT_USAGE;
        if (r) continue;
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'o':
            outp = optarg;
            break;
        case 'h':
            printf(
                "usage: whiply train --data FILE.ndjson --out MODEL.whm [options]\n\n"
                "Trains a classifier from labelled NDJSON: {\"text\": ..., \"label\": \"spam\"}\n"
                "or {\"text\": ..., \"labels\": [\"toxic\", \"insult\"]}. Every label but the\n"
                "negative ones becomes a score of the model (docs/ml.md).\n\n" TRAIN_USAGE);
            return 0;
        default:
            return WH_EXIT_USAGE;
        }
    }
    if (!data || !outp) {
        fprintf(stderr, "usage: whiply train --data FILE.ndjson --out MODEL.whm [options]\n");
        return WH_EXIT_USAGE;
    }
    dataset d;
    if (!dataset_load(data, &d)) {
        dataset_free(&d);
        return WH_EXIT_IO;
    }
    wh_buf out;
    wh_buf_init(&out);
    uint64_t t0 = wh_mono_ns();
    const char *labels[WH_ML_MAX_LABELS];
    uint32_t nl = model_labels(&tc, &d, labels);
    wh_status st = nl ? train_model(&tc, labels, nl, d.ex, d.n, &out) : WH_EINVAL;
    int rc = WH_EXIT_OK;
    if (st == WH_OK) {
        /* write beside, then rename: a reader never maps a half-written model */
        size_t pl = strlen(outp);
        char *tmp = malloc(pl + 8);
        FILE *f = NULL;
        if (tmp) {
            memcpy(tmp, outp, pl);
            memcpy(tmp + pl, ".tmp", 5);
            f = fopen(tmp, "wb");
        }
        bool ok = f && fwrite(out.p, 1, out.len, f) == out.len;
        if (f) ok = !fclose(f) && ok;
        if (ok) ok = !rename(tmp, outp);
        if (!ok) {
            fprintf(stderr, "whiply: cannot write %s\n", outp);
            if (tmp) remove(tmp);
            rc = WH_EXIT_IO;
        } else if (tc.t.progress) {
            fprintf(stderr, "train: %u examples, %u label%s, %.2f s -> %s (%zu bytes)\n", d.n, nl,
                    nl == 1 ? "" : "s", (double)(wh_mono_ns() - t0) / 1e9, outp, out.len);
        }
        free(tmp);
    } else {
        rc = st == WH_ENOMEM ? WH_EXIT_IO : WH_EXIT_USAGE;
    }
    wh_buf_free(&out);
    dataset_free(&d);
    return rc;
}

/* ---- eval ---- */

static const double table_thresholds[] = {0.05, 0.1, 0.2, 0.3, 0.4,  0.5,
                                          0.6,  0.7, 0.8, 0.9, 0.95, 0.99};

/* Scores examples [from the index list] with m into score[e * nl + l]; returns seconds spent. */
static double score_all(const wh_model *m, const wh_ml_example *ex, const uint32_t *which,
                        uint32_t n, float *score)
{
    wh_arena a;
    wh_arena_init(&a, 1 << 20);
    wh_ml_fv fv = {0};
    uint32_t nl = wh_model_nlabels(m);
    uint64_t t0 = wh_mono_ns();
    for (uint32_t k = 0; k < n; k++) {
        uint32_t e = which ? which[k] : k;
        wh_arena_reset(&a);
        wh_text t;
        float *s = score + (size_t)e * nl;
        if (wh_text_build(ex[e].text, ex[e].len, &a, &t) != WH_OK || !wh_model_score(m, &t, &fv, s))
            for (uint32_t l = 0; l < nl; l++)
                s[l] = NAN;
    }
    double secs = (double)(wh_mono_ns() - t0) / 1e9;
    wh_ml_fv_free(&fv);
    wh_arena_free(&a);
    return secs;
}

static void pct(double v, char *out)
{
    snprintf(out, 16, "%.2f%%", v * 100);
}

static void report(const char *model, const char *const *labels, uint32_t nl, const dataset *d,
                   const float *score, double threshold, double mps, const double *fold_acc,
                   uint32_t folds, bool json)
{
    bool *y = malloc(d->n ? d->n : 1);
    float *s = malloc((d->n ? d->n : 1) * sizeof(float));
    if (!y || !s) {
        free(y);
        free(s);
        fprintf(stderr, "whiply: out of memory\n");
        return;
    }
    wh_buf o;
    wh_buf_init(&o);
    if (json) {
        wh_buf_puts(&o, "{\"model\":");
        wh_buf_json_str(&o, model, strlen(model));
        wh_buf_printf(&o, ",\"n\":%u,\"messages_per_s\":%.1f,\"threshold\":%g", d->n, mps,
                      threshold);
        if (folds) {
            wh_buf_printf(&o, ",\"folds\":%u,\"fold_accuracy\":[", folds);
            for (uint32_t k = 0; k < folds; k++)
                wh_buf_printf(&o, "%s%.6f", k ? "," : "", fold_acc[k]);
            wh_buf_putc(&o, ']');
        }
        wh_buf_puts(&o, ",\"labels\":{");
    } else {
        wh_buf_printf(&o, "model %s: %u label%s; %u messages, %.0f messages/s (one thread)\n",
                      model, nl, nl == 1 ? "" : "s", d->n, mps);
        if (folds) {
            double mean = 0, var = 0;
            for (uint32_t k = 0; k < folds; k++)
                mean += fold_acc[k] / folds;
            for (uint32_t k = 0; k < folds; k++)
                var += (fold_acc[k] - mean) * (fold_acc[k] - mean) / (folds > 1 ? folds - 1 : 1);
            wh_buf_printf(&o, "%u-fold cross-validation: accuracy per fold", folds);
            for (uint32_t k = 0; k < folds; k++)
                wh_buf_printf(&o, " %.2f%%", fold_acc[k] * 100);
            wh_buf_printf(&o, "; mean %.2f%% (sd %.2f); figures below pool the folds\n", mean * 100,
                          sqrt(var) * 100);
        }
    }
    for (uint32_t l = 0; l < nl; l++) {
        uint64_t n = 0;
        for (uint32_t e = 0; e < d->n; e++) {
            float v = score[(size_t)e * nl + l];
            if (isnan(v)) continue;
            y[n] = (d->ex[e].labels >> l) & 1;
            s[n++] = v;
        }
        wh_ml_metrics m;
        wh_ml_metrics_compute(s, y, n, threshold, &m);
        const wh_ml_confusion *c = &m.at;
        if (json) {
            if (l) wh_buf_putc(&o, ',');
            wh_buf_json_str(&o, labels[l], strlen(labels[l]));
            wh_buf_printf(&o,
                          ":{\"n_pos\":%llu,\"n_neg\":%llu,\"accuracy\":%.6f,\"precision\":%.6f,"
                          "\"recall\":%.6f,\"f1\":%.6f,\"fpr\":%.6f,\"auc\":",
                          (unsigned long long)m.pos, (unsigned long long)m.neg, m.accuracy,
                          m.precision, m.recall, m.f1, m.fpr);
            if (isnan(m.auc))
                wh_buf_puts(&o, "null");
            else
                wh_buf_printf(&o, "%.6f", m.auc);
            wh_buf_printf(&o,
                          ",\"confusion\":{\"tp\":%llu,\"fp\":%llu,\"tn\":%llu,\"fn\":%llu},"
                          "\"thresholds\":[",
                          (unsigned long long)c->tp, (unsigned long long)c->fp,
                          (unsigned long long)c->tn, (unsigned long long)c->fn);
        } else {
            char a[16], p[16], r[16], f[16], fp[16];
            pct(m.accuracy, a), pct(m.precision, p), pct(m.recall, r), pct(m.f1, f), pct(m.fpr, fp);
            wh_buf_printf(&o, "\nlabel %s: %llu positive, %llu negative; threshold %g\n", labels[l],
                          (unsigned long long)m.pos, (unsigned long long)m.neg, threshold);
            char auc[16];
            if (isnan(m.auc))
                snprintf(auc, sizeof(auc), "n/a");
            else
                snprintf(auc, sizeof(auc), "%.4f", m.auc);
            wh_buf_printf(&o,
                          "  accuracy %s  precision %s  recall %s  F1 %s  false positives %s  "
                          "ROC-AUC %s\n",
                          a, p, r, f, fp, auc);
            wh_buf_printf(&o, "  %-14s %12s %12s\n", "confusion", "predicted +", "predicted -");
            wh_buf_printf(&o, "  %-14s %12llu %12llu\n", "actual +", (unsigned long long)c->tp,
                          (unsigned long long)c->fn);
            wh_buf_printf(&o, "  %-14s %12llu %12llu\n", "actual -", (unsigned long long)c->fp,
                          (unsigned long long)c->tn);
            wh_buf_printf(&o, "  %-9s %9s %9s %9s %9s\n", "threshold", "accuracy", "precision",
                          "recall", "FPR");
        }
        for (size_t k = 0; k < WH_ARRAY_LEN(table_thresholds); k++) {
            wh_ml_confusion t;
            double th = table_thresholds[k];
            wh_ml_confusion_at(s, y, n, th, &t);
            double acc = n ? (double)(t.tp + t.tn) / (double)n : 0;
            double pr = t.tp + t.fp ? (double)t.tp / (double)(t.tp + t.fp) : 0;
            double rc = t.tp + t.fn ? (double)t.tp / (double)(t.tp + t.fn) : 0;
            double fr = t.fp + t.tn ? (double)t.fp / (double)(t.fp + t.tn) : 0;
            if (json) {
                wh_buf_printf(&o,
                              "%s{\"threshold\":%g,\"accuracy\":%.6f,\"precision\":%.6f,"
                              "\"recall\":%.6f,\"fpr\":%.6f}",
                              k ? "," : "", th, acc, pr, rc, fr);
            } else {
                char a[16], p[16], r[16], f[16];
                pct(acc, a), pct(pr, p), pct(rc, r), pct(fr, f);
                wh_buf_printf(&o, "  %9g %9s %9s %9s %9s\n", th, a, p, r, f);
            }
        }
        if (json) wh_buf_puts(&o, "]}");
    }
    if (json) wh_buf_puts(&o, "}}\n");
    fwrite(o.p, 1, o.len, stdout);
    wh_buf_free(&o);
    free(y);
    free(s);
}

static int eval_folds(const train_cfg *tc, dataset *d, uint32_t folds, double threshold, bool json)
{
    /* fold of each example: a seeded shuffle dealt round-robin */
    uint32_t *perm = malloc(d->n * sizeof(uint32_t)), *fold = malloc(d->n * sizeof(uint32_t));
    uint32_t *which = malloc(d->n * sizeof(uint32_t));
    wh_ml_example *sub = malloc(d->n * sizeof(wh_ml_example));
    const char *labels[WH_ML_MAX_LABELS];
    uint32_t nl = model_labels(tc, d, labels);
    float *score = malloc((size_t)d->n * (nl ? nl : 1) * sizeof(float));
    double acc[64] = {0}, secs = 0;
    int rc = WH_EXIT_OK;
    if (!perm || !fold || !which || !sub || !score) {
        fprintf(stderr, "whiply: out of memory\n");
        rc = WH_EXIT_IO;
        goto done;
    }
    if (!nl) {
        rc = WH_EXIT_USAGE;
        goto done;
    }
    uint64_t rng = tc->t.seed ^ 0x666f6c6473ULL; /* not training's sequence */
    for (uint32_t i = 0; i < d->n; i++)
        perm[i] = i;
    wh_ml_shuffle(perm, d->n, &rng);
    for (uint32_t i = 0; i < d->n; i++)
        fold[perm[i]] = i % folds;
    for (uint32_t k = 0; k < folds; k++) {
        uint32_t ns = 0, nw = 0;
        for (uint32_t e = 0; e < d->n; e++) {
            if (fold[e] == k)
                which[nw++] = e;
            else
                sub[ns++] = d->ex[e];
        }
        train_cfg t2 = *tc;
        t2.t.progress = false;
        wh_buf mb;
        wh_buf_init(&mb);
        if (tc->t.progress)
            fprintf(stderr, "eval: fold %u/%u: training on %u examples\n", k + 1, folds, ns);
        if (train_model(&t2, labels, nl, sub, ns, &mb) != WH_OK) {
            wh_buf_free(&mb);
            rc = WH_EXIT_IO;
            goto done;
        }
        wh_error err;
        wh_model *m = wh_model_from_mem(mb.p, mb.len, &err);
        wh_buf_free(&mb);
        if (!m) {
            fprintf(stderr, "whiply: %s\n", err.message);
            rc = WH_EXIT_IO;
            goto done;
        }
        secs += score_all(m, d->ex, which, nw, score);
        uint32_t right = 0, tot = 0;
        for (uint32_t i = 0; i < nw; i++)
            for (uint32_t l = 0; l < nl; l++, tot++)
                right += (score[(size_t)which[i] * nl + l] >= threshold) ==
                         (bool)((d->ex[which[i]].labels >> l) & 1);
        acc[k] = tot ? (double)right / tot : 0;
        wh_model_release(m);
    }
    char name[64];
    snprintf(name, sizeof(name), "(%u-fold cross-validation)", folds);
    report(name, labels, nl, d, score, threshold, secs > 0 ? d->n / secs : 0, acc, folds, json);
done:
    free(perm);
    free(fold);
    free(which);
    free(sub);
    free(score);
    return rc;
}

int wh_cmd_eval(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"model", required_argument, NULL, 'm'},
                                             {"folds", required_argument, NULL, O_FOLDS},
                                             {"threshold", required_argument, NULL, O_THRESH},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"help", no_argument, NULL, 'h'},
                                             TRAIN_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *data = NULL, *model = NULL;
    double threshold = 0.5, v;
    uint32_t folds = 0;
    bool json = false;
    train_cfg tc;
    train_cfg_init(&tc);
    int c;
    optind = 1;
    const char *train_only = NULL; /* a training option, which only --folds uses */
    while ((c = getopt_long(argc, argv, "d:m:h", longopts, NULL)) != -1) {
        int r = train_opt(c, optarg, &tc);
        if (r < 0) return WH_EXIT_USAGE;
        if (r) {
            for (const struct option *lo = longopts; lo->name && c != O_NEG && c != O_QUIET; lo++)
                if (lo->val == c) train_only = lo->name;
            continue;
        }
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case O_FOLDS:
            if (!num_arg("folds", optarg, 2, 64, &v)) return WH_EXIT_USAGE;
            folds = (uint32_t)v;
            break;
        case O_THRESH:
            if (!num_arg("threshold", optarg, 0, 1, &threshold)) return WH_EXIT_USAGE;
            break;
        case O_JSON:
            json = true;
            break;
        case 'h':
            printf(
                "usage: whiply eval --model MODEL.whm --data FILE.ndjson [--json] [--threshold X]\n"
                "       whiply eval --folds K --data FILE.ndjson [train options]\n\n"
                "Accuracy, precision, recall, F1, false-positive rate, ROC-AUC, the confusion\n"
                "matrix and a threshold table for each label of the model. --folds K trains K\n"
                "models, each on all folds but one, and scores every example with the model\n"
                "that did not see it.\n\n"
                "  --threshold X      a score >= X predicts the label (default 0.5)\n"
                "  --json             one JSON object instead of the table\n"
                "train options (with --folds):\n" TRAIN_USAGE);
            return 0;
        default:
            return WH_EXIT_USAGE;
        }
    }
    if (!data || (!model && !folds) || (model && folds)) {
        fprintf(stderr, "usage: whiply eval --model MODEL.whm --data FILE.ndjson [--json]\n"
                        "       whiply eval --folds K --data FILE.ndjson [train options]\n");
        return WH_EXIT_USAGE;
    }
    if (model && train_only) {
        fprintf(stderr, "whiply eval: --%s is a training option: it needs --folds, not --model\n",
                train_only);
        return WH_EXIT_USAGE;
    }
    dataset d;
    if (!dataset_load(data, &d)) {
        dataset_free(&d);
        return WH_EXIT_IO;
    }
    int rc = WH_EXIT_OK;
    if (folds) {
        if (folds > d.n) {
            fprintf(stderr, "whiply: %u folds need at least %u examples, %s has %u\n", folds, folds,
                    data, d.n);
            rc = WH_EXIT_USAGE;
        } else {
            rc = eval_folds(&tc, &d, folds, threshold, json);
        }
        dataset_free(&d);
        return rc;
    }
    wh_error err;
    wh_model *m = wh_model_open(model, &err);
    if (!m) {
        fprintf(stderr, "whiply: %s: %s\n", model, err.message);
        dataset_free(&d);
        return WH_EXIT_RULES;
    }
    map_to_model(&d, m, tc.negatives);
    uint32_t nl = wh_model_nlabels(m);
    float *score = malloc((size_t)d.n * nl * sizeof(float));
    if (!score) {
        fprintf(stderr, "whiply: out of memory\n");
        rc = WH_EXIT_IO;
    } else {
        double secs = score_all(m, d.ex, NULL, d.n, score);
        const char *labels[WH_ML_MAX_LABELS];
        for (uint32_t l = 0; l < nl; l++)
            labels[l] = wh_model_label(m, l);
        report(model, labels, nl, &d, score, threshold, secs > 0 ? d.n / secs : 0, NULL, 0, json);
    }
    free(score);
    wh_model_release(m);
    dataset_free(&d);
    return rc;
}
