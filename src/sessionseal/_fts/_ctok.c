/* The index build's optional accelerator: sessionseal._fts._ctok (docs/design.md, "Build speed").
 *
 * Two functions, the same terms as the pure-Python tokenizer (docs/spec/fts-v1.md, "Terms"):
 *
 * count_translated(raw, terms_of_run) -> (dict[bytes, int], int)
 *     exactly what _tokens.count_translated_pure gives for the same bytes: every term with its
 *     count (in the same dict order), and the text's length;
 * pack_fields(fields, terms_of_run) -> (terms, tfs, masks, lengths)
 *     what _analyze.pack's pure path sums for one session: fields is a list of at most 4
 *     (field bit, raw) pairs with distinct bits, raw a field's UTF-8 (rule 1's separators cut its
 *     runs: _tokens.TABLE need not be applied first); terms are the distinct terms' UTF-8 joined by
 *     newlines (in the order they first appear), tfs their counts as native uint32, masks the OR
 *     of the bits of the fields they appear in, lengths each field's number of words.
 *
 * and two steps of a segment's placement (Inverted._payloads), key-free given the HMACs, which
 * stay in Python on `cryptography`:
 *
 * bucket_order(macs, nb) -> (moved, counts): the terms in bucket order (a counting sort);
 * prefix_lists(terms, dfs, wordlike, heads, head_slots, npf) -> the prefix buckets' payloads.
 *
 * invert_rows and invert_joined group a segment's rows by term, and gather_terms moves its
 * columns into bucket order. Their loops, as the scans', run without the GIL (a reindex reads
 * and tokenizes the next segment on other threads meanwhile): what they read of Python objects
 * is noted first, with the GIL, and those objects held for the call; nothing Python is touched
 * until the GIL is taken back, and errors found without it are raised after.
 *
 * It reads users' sanitized session text, so it is written to fail closed:
 *
 * - it accepts only immutable `bytes` (never a buffer another thread could change while the GIL
 *   is released), and reads each only inside [0, len);
 * - every allocation is checked, every size computation is checked for overflow, every error
 *   path frees what it allocated and raises (MemoryError, TypeError, OverflowError), never a
 *   crash;
 * - no recursion, no fixed-size buffer that input can fill (the one stack buffer holds a term of
 *   at most MAX_TERM bytes, checked before the copy);
 * - it never puts text in an exception message.
 *
 * One pass, with the GIL released: cut the runs (bytes.split()'s ASCII whitespace), count each
 * distinct run in an open-addressing hash table (keys point into the caller's bytes, nothing
 * copied), and classify each distinct run:
 *
 *   PLAIN   no upper-case ASCII letter, "_" or non-ASCII byte, at most 64 bytes: its own term;
 *   LOWER   ASCII, no "_", and ALLCAPS, digits, Capitalized or lower case (the tests of
 *           _terms_of_run, as bytes.isupper/isdigit/islower): its term is its lower case;
 *   DROPPED the same beyond 64 bytes: no term;
 *   IDENT   the other ASCII runs ("_", camel case, punctuation in untranslated bytes): rule 4 in
 *           C (ident_parts: the pieces between underscores and their camel-case parts), the
 *           whole then its sorted distinct parts, as _terms_of_run gives them;
 *   PYTHON  the rest (a non-ASCII byte: NFKC and casefold): handed to terms_of_run (the pure
 *           path's cached rules 2 to 4), once per distinct run, with the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define MAX_TERM 64
#define MAX_FIELDS 4

enum run_class { PLAIN = 0, LOWER = 1, DROPPED = 2, PYTHON = 3, IDENT = 4 };

typedef struct {
    const unsigned char *p; /* into a caller's bytes, or the arena */
    Py_ssize_t len;
    uint64_t hash;
    uint64_t head;                /* the key's first 8 bytes (load8): most keys compare without p */
    Py_ssize_t count[MAX_FIELDS]; /* runs: per field; terms: count[0] is the tf */
    int cls;                      /* runs: the class; terms: the field mask */
} Entry;

/* A slot: the upper 32 bits of its key's hash, and the key's index in entries + 1 in the lower
 * 32 (0: empty). A probe compares the hash bits before it reads an entry: on a busy table most
 * slots it passes are other keys', and an entry read is a cache miss. */
#define SLOT_TAG 0xFFFFFFFF00000000ULL
#define SLOT_INDEX 0xFFFFFFFFULL

typedef struct {
    Entry *entries;  /* distinct keys, in the order they first appear */
    Py_ssize_t n;    /* entries used (less than SLOT_INDEX) */
    Py_ssize_t cap;  /* entries allocated */
    uint64_t *slots; /* see SLOT_TAG */
    size_t mask;     /* slots - 1 (a power of two) */
} Table;

/* Term bytes that are not in a caller's buffer (lowered runs, terms_of_run's terms): blocks that
 * are never moved, so an Entry can point into them. */
typedef struct Block {
    struct Block *next;
    size_t used, size;
    unsigned char data[];
} Block;

typedef struct {
    const unsigned char *p;
    Py_ssize_t len;
    Py_ssize_t id; /* the term's index in the hash table */
    uint64_t head; /* the first 8 bytes, big-endian, zero-padded: see key_cmp */
} Key;

static uint64_t
key_head(const unsigned char *p, Py_ssize_t len)
{
    uint64_t h = 0;
    for (Py_ssize_t i = 0; i < 8; i++) {
        h = (h << 8) | (i < len ? p[i] : 0);
    }
    return h;
}

/* bytes' order: memcmp of the common part, then the shorter first. Two different heads already
 * order them so (padding with 0, the least byte, puts a prefix first: the sort's compares read
 * no term's bytes but where 8 bytes are shared); equal heads are compared in full. */
static int
key_cmp(const void *a, const void *b)
{
    const Key *x = a, *y = b;
    if (x->head != y->head) {
        return x->head < y->head ? -1 : 1;
    }
    Py_ssize_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, (size_t)n);
    if (c != 0) {
        return c;
    }
    return (x->len > y->len) - (x->len < y->len);
}

static uint64_t hash_seed;

/* The first min(len, 8) bytes at p as a word, the rest zero; it reads only [p, p + len). Fixed-size
 * loads (no memcpy call of a variable size): the same value for the same bytes within a process,
 * which is all a hash and a comparison need. */
static uint64_t
load8(const unsigned char *p, Py_ssize_t len)
{
    uint64_t w = 0;
    if (len >= 8) {
        memcpy(&w, p, 8);
        return w;
    }
    int at = 0;
    if (len & 4) {
        uint32_t x;
        memcpy(&x, p, 4);
        w = x;
        at = 4;
    }
    if (len & 2) {
        uint16_t x;
        memcpy(&x, p + at, 2);
        w |= (uint64_t)x << (8 * at);
        at += 2;
    }
    if (len & 1) {
        w |= (uint64_t)p[at] << (8 * at);
    }
    return w;
}

/* A seeded multiplicative hash, 8 bytes at a time (the runs are short, and this is not a MAC),
 * of a key whose load8 is head. The seed is random per process, so which runs share a slot is
 * not fixed by the text alone. */
static uint64_t
hash_run(const unsigned char *p, Py_ssize_t len, uint64_t head)
{
    uint64_t h = hash_seed ^ ((uint64_t)len * 0x9E3779B97F4A7C15ULL);
    uint64_t w = head;
    Py_ssize_t i = 0;
    while (len - i > 8) {
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
        i += 8;
        w = load8(p + i, len - i);
    }
    h = (h ^ w) * 0x94D049BB133111EBULL;
    h ^= h >> 29;
    h = (h ^ (h >> 32)) * 0xD6E8FEB86659FD93ULL;
    return h ^ (h >> 32);
}

/* Python's bytes.split() with no argument cuts at these (Py_ISSPACE: ASCII only). */
static int
is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Rule 1 cuts at these: every ASCII byte but a letter, a digit or "_" (what _tokens.TABLE makes a
 * space, the spaces included), so pack_fields takes a field's UTF-8 with or without the table. */
static int
is_separator(unsigned char c)
{
    return c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
}

/* is_space and is_separator as tables (a load per byte in scan_at), filled by PyInit__ctok. */
static unsigned char space_table[256], separator_table[256];

static int
table_init(Table *t)
{
    t->n = 0;
    t->cap = 1024;
    t->mask = 2047;
    t->entries = PyMem_RawMalloc((size_t)t->cap * sizeof(Entry));
    t->slots = PyMem_RawCalloc(t->mask + 1, sizeof(uint64_t));
    if (t->entries == NULL || t->slots == NULL) {
        PyMem_RawFree(t->entries);
        PyMem_RawFree(t->slots);
        t->entries = NULL;
        t->slots = NULL;
        return -1;
    }
    return 0;
}

static void
table_free(Table *t)
{
    PyMem_RawFree(t->entries);
    PyMem_RawFree(t->slots);
    t->entries = NULL;
    t->slots = NULL;
}

/* Doubles the slots (kept at most half full) and re-places every entry. */
static int
table_grow_slots(Table *t)
{
    size_t nslots = (t->mask + 1);
    if (nslots > ((size_t)PY_SSIZE_T_MAX / sizeof(uint64_t)) / 2) {
        return -1;
    }
    nslots *= 2;
    uint64_t *slots = PyMem_RawCalloc(nslots, sizeof(uint64_t));
    if (slots == NULL) {
        return -1;
    }
    size_t mask = nslots - 1;
    for (Py_ssize_t k = 0; k < t->n; k++) {
        uint64_t h = t->entries[k].hash;
        size_t s = (size_t)h & mask;
        while (slots[s] != 0) {
            s = (s + 1) & mask;
        }
        slots[s] = (h & SLOT_TAG) | (uint64_t)(k + 1);
    }
    PyMem_RawFree(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

/* The index of key [p, p + len) in t, added (all counts 0, cls 0) if new; -1 when memory ran
 * out. The key's bytes must outlive the table. */
static Py_ssize_t
table_find(Table *t, const unsigned char *p, Py_ssize_t len)
{
    uint64_t head = load8(p, len);
    uint64_t h = hash_run(p, len, head);
    size_t s = (size_t)h & t->mask;
    uint64_t slot;
    while ((slot = t->slots[s]) != 0) {
        if ((slot & SLOT_TAG) == (h & SLOT_TAG)) {
            Py_ssize_t k = (Py_ssize_t)(slot & SLOT_INDEX) - 1;
            const Entry *e = &t->entries[k];
            if (e->len == len && e->head == head && (len <= 8 || memcmp(e->p + 8, p + 8, (size_t)(len - 8)) == 0)) {
                return k;
            }
        }
        s = (s + 1) & t->mask;
    }
    if ((uint64_t)t->n >= SLOT_INDEX - 1) {
        return -1; /* an index must fit in a slot's 32 bits */
    }
    if (t->n == t->cap) {
        if (t->cap > (PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Entry)) / 2) {
            return -1;
        }
        Entry *grown = PyMem_RawRealloc(t->entries, (size_t)t->cap * 2 * sizeof(Entry));
        if (grown == NULL) {
            return -1;
        }
        t->entries = grown;
        t->cap *= 2;
    }
    Entry *e = &t->entries[t->n];
    memset(e, 0, sizeof(*e));
    e->p = p;
    e->len = len;
    e->hash = h;
    e->head = head;
    t->n++;
    t->slots[s] = (h & SLOT_TAG) | (uint64_t)t->n;
    if ((size_t)t->n * 2 > t->mask + 1 && table_grow_slots(t) < 0) {
        return -1;
    }
    return t->n - 1;
}

static void
arena_free(Block *b)
{
    while (b != NULL) {
        Block *next = b->next;
        PyMem_RawFree(b);
        b = next;
    }
}

/* len bytes that stay where they are until arena_free; NULL when memory ran out. */
static unsigned char *
arena_alloc(Block **arena, Py_ssize_t len)
{
    size_t n = (size_t)len;
    Block *b = *arena;
    if (b == NULL || b->size - b->used < n) {
        size_t size = n > 65536 ? n : 65536;
        if (size > (size_t)PY_SSIZE_T_MAX - sizeof(Block)) {
            return NULL;
        }
        b = PyMem_RawMalloc(sizeof(Block) + size);
        if (b == NULL) {
            return NULL;
        }
        b->next = *arena;
        b->used = 0;
        b->size = size;
        *arena = b;
    }
    unsigned char *out = b->data + b->used;
    b->used += n;
    return out;
}

/* A copy of [p, p + len) that stays where it is until arena_free; NULL when memory ran out. */
static const unsigned char *
arena_copy(Block **arena, const unsigned char *p, Py_ssize_t len)
{
    unsigned char *out = arena_alloc(arena, len);
    if (out != NULL && len > 0) {
        memcpy(out, p, (size_t)len);
    }
    return out;
}

/* _terms_of_run's class of one distinct run, with the predicates of bytes.isupper, isdigit and
 * islower (ASCII cased letters only). */
static int
classify(const unsigned char *p, Py_ssize_t len)
{
    int upper = 0, lower = 0, underscore = 0, high = 0, all_digits = 1;
    int tail_upper = 0, tail_lower = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            high = 1;
            all_digits = 0;
        } else if (c >= 'A' && c <= 'Z') {
            upper = 1;
            tail_upper |= (i > 0);
            all_digits = 0;
        } else if (c >= 'a' && c <= 'z') {
            lower = 1;
            tail_lower |= (i > 0);
            all_digits = 0;
        } else if (c < '0' || c > '9') {
            underscore |= (c == '_');
            all_digits = 0;
        }
    }
    if (!upper && !underscore && !high && len <= MAX_TERM) {
        return PLAIN;
    }
    if (high) {
        return PYTHON;
    }
    if (underscore) {
        return IDENT;
    }
    /* ASCII, no "_": bytes.isupper(), isdigit(), run[1:].islower(), islower() */
    int is_upper = upper && !lower;
    int is_digit = all_digits && len > 0;
    int tail_is_lower = tail_lower && !tail_upper;
    int is_lower = lower && !upper;
    if (is_upper || is_digit || tail_is_lower || is_lower) {
        return len <= MAX_TERM ? LOWER : DROPPED;
    }
    return IDENT;
}

/* Counts the runs of raw (field f) into t and adds their number to *runs: runs cut at every
 * byte cut (space_table or separator_table) marks. Without the GIL: 0, or -1 when memory ran out. */
static int
scan_at(Table *t, const unsigned char *raw, Py_ssize_t size, int f, Py_ssize_t *runs, const unsigned char *cut)
{
    Py_ssize_t i = 0;
    while (i < size) {
        while (i < size && cut[raw[i]]) {
            i++;
        }
        if (i >= size) {
            break;
        }
        Py_ssize_t start = i;
        while (i < size && !cut[raw[i]]) {
            i++;
        }
        (*runs)++;
        Py_ssize_t k = table_find(t, raw + start, i - start);
        if (k < 0) {
            return -1;
        }
        t->entries[k].count[f]++;
    }
    return 0;
}

/* pack_fields' scan_at: rule 1's runs of a field's UTF-8 (translated by _tokens.TABLE or not). */
static int
scan(Table *t, const unsigned char *raw, Py_ssize_t size, int f, Py_ssize_t *runs)
{
    return scan_at(t, raw, size, f, runs, separator_table);
}

static void
classify_all(Table *t)
{
    for (Py_ssize_t k = 0; k < t->n; k++) {
        t->entries[k].cls = classify(t->entries[k].p, t->entries[k].len);
    }
}

/* The ASCII lower case of [p, p + len) into out (len bytes: the caller's bound). */
static void
lower_into(unsigned char *out, const unsigned char *p, Py_ssize_t len)
{
    for (Py_ssize_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        out[i] = (unsigned char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
}

/* ---- rule 4 of ASCII runs (IDENT) --------------------------------------------------------- */

/* The parts of one run, reused from run to run (grown, never shrunk, freed by the caller). */
typedef struct {
    Key *parts;
    Py_ssize_t cap;
} Parts;

static int
is_az(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}

static int
is_AZ(unsigned char c)
{
    return c >= 'A' && c <= 'Z';
}

/* Appends part [low + at, low + at + len) unless it is too long (rule 3) or the whole run (run_len:
 * a part is a piece of the run, so one of the run's length is the whole); -1 when memory ran out. */
static int
push_part(Parts *s, Py_ssize_t *n, const unsigned char *low, Py_ssize_t at, Py_ssize_t len, Py_ssize_t run_len)
{
    if (len < 1 || len > MAX_TERM || len == run_len) {
        return 0;
    }
    if (*n == s->cap) {
        Py_ssize_t cap = s->cap ? s->cap * 2 : 16;
        if (s->cap > (PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Key)) / 2) {
            return -1;
        }
        Key *grown = PyMem_RawRealloc(s->parts, (size_t)cap * sizeof(Key));
        if (grown == NULL) {
            return -1;
        }
        s->parts = grown;
        s->cap = cap;
    }
    s->parts[*n].p = low + at;
    s->parts[*n].len = len;
    s->parts[*n].id = 0;
    s->parts[*n].head = key_head(low + at, len); /* key_cmp's first test */
    (*n)++;
    return 0;
}

/* Rule 4 of an ASCII run p (its original case) of len bytes, low its lower case (the parts point
 * into it): _tokens._parts' set without the whole, sorted (bytes' order, as the pure path's
 * sorted()) and distinct, in s->parts. Each piece between underscores (all of the run without
 * one) is a part, except one of more than 12 characters holding a digit; a piece without a digit
 * also gives its camel-case parts (_tokens._CAMEL: a boundary between a-z and A-Z, and between
 * two of A-Z the second followed by a-z, within the piece). The count, or -1 when memory ran out
 * (no Python call: runs without the GIL). */
static Py_ssize_t
ident_parts(const unsigned char *p, const unsigned char *low, Py_ssize_t len, Parts *s)
{
    Py_ssize_t n = 0, i = 0;
    while (i < len) {
        if (p[i] == '_') {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        int digit = 0;
        while (j < len && p[j] != '_') {
            digit |= p[j] >= '0' && p[j] <= '9';
            j++;
        }
        if (digit) {
            if (j - i <= 12 && push_part(s, &n, low, i, j - i, len) < 0) {
                return -1;
            }
            i = j;
            continue;
        }
        if (push_part(s, &n, low, i, j - i, len) < 0) {
            return -1;
        }
        Py_ssize_t from = i;
        for (Py_ssize_t k = i + 1; k < j; k++) {
            int boundary = (is_az(p[k - 1]) && is_AZ(p[k]))
                           || (is_AZ(p[k - 1]) && is_AZ(p[k]) && k + 1 < j && is_az(p[k + 1]));
            if (boundary) {
                if (push_part(s, &n, low, from, k - from, len) < 0) {
                    return -1;
                }
                from = k;
            }
        }
        /* No boundary: the one camel part is the piece, already in. */
        if (from > i && push_part(s, &n, low, from, j - from, len) < 0) {
            return -1;
        }
        i = j;
    }
    if (n > 1) {
        qsort(s->parts, (size_t)n, sizeof(Key), key_cmp);
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (kept == 0 || key_cmp(&s->parts[kept - 1], &s->parts[k]) != 0) {
            s->parts[kept++] = s->parts[k];
        }
    }
    return kept;
}

/* The (tuple of bytes, int) terms_of_run gave for a run, checked; a new reference or NULL. */
static PyObject *
call_rules(PyObject *terms_of_run, const Entry *run, Py_ssize_t *more)
{
    PyObject *arg = PyBytes_FromStringAndSize((const char *)run->p, run->len);
    if (arg == NULL) {
        return NULL;
    }
    PyObject *got = PyObject_CallOneArg(terms_of_run, arg);
    Py_DECREF(arg);
    if (got == NULL) {
        return NULL;
    }
    if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 2 || !PyTuple_CheckExact(PyTuple_GET_ITEM(got, 0))
        || !PyLong_CheckExact(PyTuple_GET_ITEM(got, 1))) {
        Py_DECREF(got);
        PyErr_SetString(PyExc_TypeError, "terms_of_run must return (tuple of bytes, int)");
        return NULL;
    }
    PyObject *terms = PyTuple_GET_ITEM(got, 0);
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(terms); j++) {
        if (!PyBytes_CheckExact(PyTuple_GET_ITEM(terms, j))) {
            Py_DECREF(got);
            PyErr_SetString(PyExc_TypeError, "terms_of_run must return (tuple of bytes, int)");
            return NULL;
        }
    }
    *more = PyLong_AsSsize_t(PyTuple_GET_ITEM(got, 1));
    if (*more == -1 && PyErr_Occurred()) {
        Py_DECREF(got);
        return NULL;
    }
    return got;
}

/* *total += more * n (n >= 0; more is negative for a run of no word: its one run was counted),
 * or -1 with OverflowError. */
static int
add_words(Py_ssize_t *total, Py_ssize_t more, Py_ssize_t n)
{
    if (more == 0 || n == 0) {
        return 0;
    }
    if (more == PY_SSIZE_T_MIN || n > PY_SSIZE_T_MAX / (more > 0 ? more : -more)) {
        goto overflow;
    }
    Py_ssize_t p = more * n;
    if ((p > 0 && *total > PY_SSIZE_T_MAX - p) || (p < 0 && *total < PY_SSIZE_T_MIN - p)) {
        goto overflow;
    }
    *total += p;
    return 0;
overflow:
    PyErr_SetString(PyExc_OverflowError, "a text's length does not fit");
    return -1;
}

/* ---- count_translated ------------------------------------------------------------------- */

/* counts[key] += n (a new key goes last). */
static int
add_count(PyObject *counts, PyObject *key, Py_ssize_t n)
{
    PyObject *old = PyDict_GetItemWithError(counts, key); /* borrowed */
    if (old == NULL && PyErr_Occurred()) {
        return -1;
    }
    PyObject *add = PyLong_FromSsize_t(n);
    if (add == NULL) {
        return -1;
    }
    PyObject *sum = old == NULL ? add : PyNumber_Add(old, add);
    if (old != NULL) {
        Py_DECREF(add);
    }
    if (sum == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(counts, key, sum);
    Py_DECREF(sum);
    return rc;
}

/* The dict from the counted runs (with the GIL), in the pure path's order: the PLAIN runs in the
 * order they first appear, then the other runs' terms (a PLAIN term keeps its place). */
/* An IDENT run's terms (its lower case if it fits, then its sorted parts: _terms_of_run's
 * order) added to counts, n each; -1 with an exception set. */
static int
add_ident_counts(PyObject *counts, const Entry *e, Parts *parts)
{
    unsigned char *low = PyMem_RawMalloc((size_t)e->len + 1);
    if (low == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    lower_into(low, e->p, e->len);
    Py_ssize_t np = ident_parts(e->p, low, e->len, parts);
    int rc = 0;
    if (np < 0) {
        PyErr_NoMemory();
        rc = -1;
    }
    for (Py_ssize_t j = -1; rc == 0 && j < np; j++) {
        const unsigned char *tp = j < 0 ? low : parts->parts[j].p;
        Py_ssize_t tlen = j < 0 ? e->len : parts->parts[j].len;
        if (tlen > MAX_TERM) {
            continue; /* the whole, too long */
        }
        PyObject *key = PyBytes_FromStringAndSize((const char *)tp, tlen);
        rc = key == NULL ? -1 : add_count(counts, key, e->count[0]);
        Py_XDECREF(key);
    }
    PyMem_RawFree(low);
    return rc;
}

static PyObject *
build_counts(const Table *t, PyObject *terms_of_run, Py_ssize_t *length)
{
    PyObject *counts = PyDict_New();
    if (counts == NULL) {
        return NULL;
    }
    Parts parts = {NULL, 0};
    for (int pass = 0; pass < 2; pass++) {
        for (Py_ssize_t k = 0; k < t->n; k++) {
            const Entry *e = &t->entries[k];
            if ((pass == 0) != (e->cls == PLAIN) || e->cls == DROPPED) {
                continue;
            }
            int rc = -1;
            if (e->cls == PYTHON) {
                Py_ssize_t more;
                PyObject *got = call_rules(terms_of_run, e, &more);
                if (got == NULL) {
                    goto fail;
                }
                PyObject *terms = PyTuple_GET_ITEM(got, 0);
                rc = add_words(length, more, e->count[0]);
                for (Py_ssize_t j = 0; rc == 0 && j < PyTuple_GET_SIZE(terms); j++) {
                    rc = add_count(counts, PyTuple_GET_ITEM(terms, j), e->count[0]);
                }
                Py_DECREF(got);
            } else if (e->cls == IDENT) {
                rc = add_ident_counts(counts, e, &parts);
            } else if (e->len > MAX_TERM) { /* PLAIN and LOWER: never (classify's bound) */
                rc = 0;
            } else {
                unsigned char lowered[MAX_TERM];
                const unsigned char *p = e->p;
                if (e->cls == LOWER) {
                    lower_into(lowered, e->p, e->len);
                    p = lowered;
                }
                PyObject *key = PyBytes_FromStringAndSize((const char *)p, e->len);
                if (key != NULL) {
                    rc = add_count(counts, key, e->count[0]);
                    Py_DECREF(key);
                }
            }
            if (rc < 0) {
                goto fail;
            }
        }
    }
    PyMem_RawFree(parts.parts);
    return counts;
fail:
    PyMem_RawFree(parts.parts);
    Py_DECREF(counts);
    return NULL;
}

static PyObject *
count_translated(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "count_translated(raw, terms_of_run) takes 2 arguments");
        return NULL;
    }
    PyObject *raw_obj = args[0];
    PyObject *terms_of_run = args[1];
    if (!PyBytes_CheckExact(raw_obj)) {
        PyErr_SetString(PyExc_TypeError, "raw must be bytes");
        return NULL;
    }
    if (!PyCallable_Check(terms_of_run)) {
        PyErr_SetString(PyExc_TypeError, "terms_of_run must be callable");
        return NULL;
    }
    Table t;
    if (table_init(&t) < 0) {
        return PyErr_NoMemory();
    }
    /* raw_obj is immutable and referenced by the caller for the whole call. */
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(raw_obj);
    Py_ssize_t size = PyBytes_GET_SIZE(raw_obj);
    Py_ssize_t length = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = scan_at(&t, raw, size, 0, &length, space_table); /* bytes.split()'s runs, as the pure path */
    if (rc == 0) {
        classify_all(&t);
    }
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        table_free(&t);
        return PyErr_NoMemory();
    }
    PyObject *counts = build_counts(&t, terms_of_run, &length);
    table_free(&t);
    if (counts == NULL) {
        return NULL;
    }
    PyObject *result = Py_BuildValue("(Nn)", counts, length);
    return result;
}

/* ---- pack_fields ------------------------------------------------------------------------ */

/* Adds a run's per-field counts to term [p, p + len): tf += the counts, mask |= the bits of the
 * fields it appears in. A new term's key is copied into *arena when arena is not NULL (p is
 * then a scratch buffer or a Python object's; else p must outlive the table). */
static int
add_term(Table *terms, Block **arena, const unsigned char *p, Py_ssize_t len, const Entry *run, const int *bits,
         int nfields)
{
    Py_ssize_t before = terms->n;
    Py_ssize_t k = table_find(terms, p, len);
    if (k < 0) {
        return -1;
    }
    Entry *e = &terms->entries[k];
    if (arena != NULL && terms->n > before) {
        const unsigned char *kept = arena_copy(arena, p, len);
        if (kept == NULL) {
            return -1;
        }
        e->p = kept;
    }
    for (int f = 0; f < nfields; f++) {
        if (run->count[f] == 0) {
            continue;
        }
        if (e->count[0] > PY_SSIZE_T_MAX - run->count[f]) {
            return -1;
        }
        e->count[0] += run->count[f];
        e->cls |= bits[f];
    }
    return 0;
}

/* A scratch buffer of at least len bytes (grown, never shrunk: the caller frees *buf); NULL
 * when memory ran out. */
static unsigned char *
scratch(unsigned char **buf, Py_ssize_t *cap, Py_ssize_t len)
{
    if (len > *cap || *buf == NULL) {
        Py_ssize_t size = len > MAX_TERM ? len : MAX_TERM;
        unsigned char *grown = PyMem_RawRealloc(*buf, (size_t)size);
        if (grown == NULL) {
            return NULL;
        }
        *buf = grown;
        *cap = size;
    }
    return *buf;
}

/* The terms of the PLAIN, LOWER and IDENT runs (all the ASCII ones), without the GIL: a PLAIN
 * run is its term (the key points into the caller's bytes); a LOWER run's term is its lower
 * case; an IDENT run's terms are its lower case if it fits and its parts (ident_parts). 0, or
 * -1 when memory ran out. */
static int
native_terms(const Table *runs, Table *terms, Block **arena, const int *bits, int nfields)
{
    Parts parts = {NULL, 0};
    unsigned char *low = NULL;
    Py_ssize_t low_cap = 0;
    int rc = 0;
    for (Py_ssize_t k = 0; rc == 0 && k < runs->n; k++) {
        const Entry *run = &runs->entries[k];
        if (run->cls == PLAIN) {
            rc = add_term(terms, NULL, run->p, run->len, run, bits, nfields);
            continue;
        }
        if (run->cls != LOWER && run->cls != IDENT) {
            continue;
        }
        if (scratch(&low, &low_cap, run->len) == NULL) {
            rc = -1;
            break;
        }
        lower_into(low, run->p, run->len);
        if (run->len <= MAX_TERM) {
            rc = add_term(terms, arena, low, run->len, run, bits, nfields);
        }
        if (rc == 0 && run->cls == IDENT) {
            Py_ssize_t np = ident_parts(run->p, low, run->len, &parts);
            rc = np < 0 ? -1 : 0;
            for (Py_ssize_t j = 0; rc == 0 && j < np; j++) {
                rc = add_term(terms, arena, parts.parts[j].p, parts.parts[j].len, run, bits, nfields);
            }
        }
    }
    PyMem_RawFree(parts.parts);
    PyMem_RawFree(low);
    return rc;
}

/* The PYTHON runs' terms (with the GIL): -1 with an exception set. */
static int
python_terms(const Table *runs, Table *terms, Block **arena, const int *bits, int nfields, PyObject *terms_of_run,
             Py_ssize_t *lengths)
{
    for (Py_ssize_t k = 0; k < runs->n; k++) {
        const Entry *run = &runs->entries[k];
        if (run->cls != PYTHON) {
            continue;
        }
        Py_ssize_t more;
        PyObject *got = call_rules(terms_of_run, run, &more);
        if (got == NULL) {
            return -1;
        }
        PyObject *found = PyTuple_GET_ITEM(got, 0);
        int rc = 0;
        for (int f = 0; rc == 0 && f < nfields; f++) {
            rc = add_words(&lengths[f], more, run->count[f]);
        }
        for (Py_ssize_t j = 0; rc == 0 && j < PyTuple_GET_SIZE(found); j++) {
            PyObject *term = PyTuple_GET_ITEM(found, j); /* alive while got is: a new key is copied */
            if (add_term(terms, arena, (const unsigned char *)PyBytes_AS_STRING(term), PyBytes_GET_SIZE(term), run,
                         bits, nfields)
                < 0) {
                PyErr_NoMemory();
                rc = -1;
            }
        }
        Py_DECREF(got);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

/* (terms joined by newlines, tfs as native uint32, masks) of the term table. */
static PyObject *
columns(const Table *terms)
{
    size_t total = 0;
    for (Py_ssize_t k = 0; k < terms->n; k++) {
        size_t add = (size_t)terms->entries[k].len + (k > 0);
        if (total > (size_t)PY_SSIZE_T_MAX - add) {
            return PyErr_NoMemory();
        }
        total += add;
        if (terms->entries[k].count[0] > (Py_ssize_t)UINT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "a term's count does not fit in 32 bits");
            return NULL;
        }
    }
    if ((size_t)terms->n > (size_t)PY_SSIZE_T_MAX / sizeof(uint32_t)) {
        return PyErr_NoMemory();
    }
    PyObject *joined = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    PyObject *tfs = PyBytes_FromStringAndSize(NULL, terms->n * (Py_ssize_t)sizeof(uint32_t));
    PyObject *masks = PyBytes_FromStringAndSize(NULL, terms->n);
    if (joined == NULL || tfs == NULL || masks == NULL) {
        Py_XDECREF(joined);
        Py_XDECREF(tfs);
        Py_XDECREF(masks);
        return NULL;
    }
    unsigned char *j = (unsigned char *)PyBytes_AS_STRING(joined);
    unsigned char *tf = (unsigned char *)PyBytes_AS_STRING(tfs);
    unsigned char *m = (unsigned char *)PyBytes_AS_STRING(masks);
    size_t at = 0;
    for (Py_ssize_t k = 0; k < terms->n; k++) {
        const Entry *e = &terms->entries[k];
        if (k > 0) {
            j[at++] = '\n';
        }
        memcpy(j + at, e->p, (size_t)e->len);
        at += (size_t)e->len;
        uint32_t n = (uint32_t)e->count[0];
        memcpy(tf + (size_t)k * sizeof(n), &n, sizeof(n));
        m[k] = (unsigned char)e->cls;
    }
    return Py_BuildValue("(NNN)", joined, tfs, masks);
}

static PyObject *
pack_fields(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "pack_fields(fields, terms_of_run) takes 2 arguments");
        return NULL;
    }
    PyObject *fields = args[0];
    PyObject *terms_of_run = args[1];
    if (!PyList_CheckExact(fields) || PyList_GET_SIZE(fields) > MAX_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "fields must be a list of at most 4 (bit, bytes) pairs");
        return NULL;
    }
    if (!PyCallable_Check(terms_of_run)) {
        PyErr_SetString(PyExc_TypeError, "terms_of_run must be callable");
        return NULL;
    }
    int nfields = (int)PyList_GET_SIZE(fields);
    int bits[MAX_FIELDS] = {0};
    const unsigned char *raws[MAX_FIELDS] = {NULL};
    Py_ssize_t sizes[MAX_FIELDS] = {0};
    Py_ssize_t lengths[MAX_FIELDS] = {0};
    int seen = 0;
    for (int f = 0; f < nfields; f++) {
        PyObject *pair = PyList_GET_ITEM(fields, f);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyLong_CheckExact(PyTuple_GET_ITEM(pair, 0))
            || !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            PyErr_SetString(PyExc_TypeError, "fields must be a list of at most 4 (bit, bytes) pairs");
            return NULL;
        }
        long bit = PyLong_AsLong(PyTuple_GET_ITEM(pair, 0));
        if (bit != 1 && bit != 2 && bit != 4 && bit != 8) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "a field is one of TITLE, USER, ASSISTANT, TOOL");
            }
            return NULL;
        }
        if (seen & (int)bit) {
            PyErr_SetString(PyExc_ValueError, "each field at most once");
            return NULL;
        }
        seen |= (int)bit;
        bits[f] = (int)bit;
        /* The list holds the bytes for the whole call: the caller's list is not changed by us,
         * and we read the buffers only while `fields` (a new reference below) is alive. */
        raws[f] = (const unsigned char *)PyBytes_AS_STRING(PyTuple_GET_ITEM(pair, 1));
        sizes[f] = PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 1));
    }
    /* Keep every buffer alive even if the caller's list changes while the GIL is released. */
    PyObject *held = PyList_AsTuple(fields);
    if (held == NULL) {
        return NULL;
    }
    Table runs, terms;
    Block *arena = NULL;
    PyObject *result = NULL;
    if (table_init(&runs) < 0) {
        Py_DECREF(held);
        return PyErr_NoMemory();
    }
    if (table_init(&terms) < 0) {
        table_free(&runs);
        Py_DECREF(held);
        return PyErr_NoMemory();
    }
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int f = 0; rc == 0 && f < nfields; f++) {
        rc = scan(&runs, raws[f], sizes[f], f, &lengths[f]);
    }
    if (rc == 0) {
        classify_all(&runs);
        rc = native_terms(&runs, &terms, &arena, bits, nfields);
    }
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (python_terms(&runs, &terms, &arena, bits, nfields, terms_of_run, lengths) < 0) {
        goto done;
    }
    PyObject *cols = columns(&terms);
    if (cols == NULL) {
        goto done;
    }
    PyObject *lens = PyTuple_New(nfields);
    if (lens == NULL) {
        Py_DECREF(cols);
        goto done;
    }
    for (int f = 0; f < nfields; f++) {
        PyObject *n = PyLong_FromSsize_t(lengths[f]);
        if (n == NULL) {
            Py_DECREF(cols);
            Py_DECREF(lens);
            goto done;
        }
        PyTuple_SET_ITEM(lens, f, n);
    }
    result = Py_BuildValue("(OOON)", PyTuple_GET_ITEM(cols, 0), PyTuple_GET_ITEM(cols, 1), PyTuple_GET_ITEM(cols, 2),
                           lens);
    Py_DECREF(cols);
done:
    table_free(&runs);
    table_free(&terms);
    arena_free(arena);
    Py_DECREF(held);
    return result;
}

/* ---- invert_rows ------------------------------------------------------------------------ */

/* Reads a native uint32 column of n values from bytes; NULL with TypeError if its size is wrong. */
static const unsigned char *
u32_column(PyObject *obj, Py_ssize_t n)
{
    if (!PyBytes_CheckExact(obj) || n > PY_SSIZE_T_MAX / 4 || PyBytes_GET_SIZE(obj) != n * 4) {
        PyErr_SetString(PyExc_TypeError, "the columns differ in length");
        return NULL;
    }
    return (const unsigned char *)PyBytes_AS_STRING(obj);
}

static uint32_t
u32_at(const unsigned char *col, Py_ssize_t i)
{
    uint32_t v;
    memcpy(&v, col + (size_t)i * 4, 4);
    return v;
}

static void
u32_put(unsigned char *col, Py_ssize_t i, uint32_t v)
{
    memcpy(col + (size_t)i * 4, &v, 4);
}

/* The rows' terms hashed into t (each term's df in count[0]), then the distinct terms sorted
 * into keys; *total gets the joined terms' size. Without the GIL: 0, or -1 when memory ran out. */
static int
invert_hash_sort(Table *t, const Key *rows, Py_ssize_t n, Py_ssize_t *row_term, Key **keys, size_t *total)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = table_find(t, rows[i].p, rows[i].len);
        if (k < 0) {
            return -1;
        }
        t->entries[k].count[0]++; /* the term's df */
        row_term[i] = k;
    }
    *keys = PyMem_RawMalloc(((size_t)t->n + 1) * sizeof(Key));
    if (*keys == NULL) {
        return -1;
    }
    *total = 0;
    for (Py_ssize_t k = 0; k < t->n; k++) {
        (*keys)[k].p = t->entries[k].p;
        (*keys)[k].len = t->entries[k].len;
        (*keys)[k].id = k;
        (*keys)[k].head = key_head(t->entries[k].p, t->entries[k].len);
        *total += (size_t)t->entries[k].len + (k > 0); /* at most n * 65: n was checked */
    }
    qsort(*keys, (size_t)t->n, sizeof(Key), key_cmp);
    return 0;
}

/* The output columns filled from the sorted terms: the joined terms, their dfs, and a stable
 * counting sort of the rows by their term's rank (ordinals stay ascending), then each posting's
 * ordinal less the previous one of its term (the first: its ordinal). Without the GIL: 0, -1
 * when memory ran out, -2 when the rows are not in ordinal order. */
static int
invert_fill(const Table *t, const Key *keys, const Py_ssize_t *row_term, Py_ssize_t n, const unsigned char *ords,
            const unsigned char *tfs, const unsigned char *masks, unsigned char *j, unsigned char *dfs,
            unsigned char *d, unsigned char *tf, unsigned char *m)
{
    Py_ssize_t nt = t->n;
    Py_ssize_t *rank = PyMem_RawMalloc(((size_t)nt + 1) * sizeof(Py_ssize_t));
    Py_ssize_t *cursor = PyMem_RawMalloc(((size_t)nt + 1) * sizeof(Py_ssize_t));
    unsigned char *o_ords = PyMem_RawMalloc((size_t)n * 4 + 1);
    int rc = -1;
    if (rank == NULL || cursor == NULL || o_ords == NULL) {
        goto done;
    }
    size_t at = 0;
    Py_ssize_t start = 0;
    for (Py_ssize_t r = 0; r < nt; r++) {
        const Entry *e = &t->entries[keys[r].id];
        if (r > 0) {
            j[at++] = '\n';
        }
        memcpy(j + at, e->p, (size_t)e->len);
        at += (size_t)e->len;
        rank[keys[r].id] = r;
        cursor[r] = start;
        u32_put(dfs, r, (uint32_t)e->count[0]); /* df <= n < 2**32 */
        start += e->count[0];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t pos = cursor[rank[row_term[i]]]++;
        u32_put(o_ords, pos, u32_at(ords, i));
        u32_put(tf, pos, u32_at(tfs, i));
        m[pos] = masks[i];
    }
    rc = 0;
    start = 0;
    for (Py_ssize_t r = 0; rc == 0 && r < nt; r++) {
        Py_ssize_t df = t->entries[keys[r].id].count[0];
        uint32_t prev = 0;
        for (Py_ssize_t i = start; i < start + df; i++) {
            uint32_t ord = u32_at(o_ords, i);
            if (ord < prev) {
                rc = -2;
                break;
            }
            u32_put(d, i, ord - prev);
            prev = ord;
        }
        start += df;
    }
done:
    PyMem_RawFree(o_ords);
    PyMem_RawFree(cursor);
    PyMem_RawFree(rank);
    return rc;
}

/* The grouped columns of n rows (rows[i]: row i's term, within bytes the caller holds), as
 * invert_rows returns them: the hashing, the sort and the moves run without the GIL, so the
 * next segment's sessions are read meanwhile. A new reference, or NULL with an exception. */
static PyObject *
invert_core(const Key *rows, Py_ssize_t n, const unsigned char *ords, const unsigned char *tfs,
            const unsigned char *masks)
{
    Table t;
    if (table_init(&t) < 0) {
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    Py_ssize_t *row_term = PyMem_RawMalloc(((size_t)n + 1) * sizeof(Py_ssize_t));
    Key *keys = NULL;
    PyObject *joined = NULL, *dfs = NULL, *deltas = NULL, *o_tfs = NULL, *o_masks = NULL;
    if (row_term == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    size_t total = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = invert_hash_sort(&t, rows, n, row_term, &keys, &total);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t nt = t.n;
    joined = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    dfs = PyBytes_FromStringAndSize(NULL, nt * 4);
    deltas = PyBytes_FromStringAndSize(NULL, n * 4);
    o_tfs = PyBytes_FromStringAndSize(NULL, n * 4);
    o_masks = PyBytes_FromStringAndSize(NULL, n);
    if (joined == NULL || dfs == NULL || deltas == NULL || o_tfs == NULL || o_masks == NULL) {
        goto done;
    }
    /* The new bytes are this call's alone until it returns: filled without the GIL. */
    unsigned char *jp = (unsigned char *)PyBytes_AS_STRING(joined);
    unsigned char *dfp = (unsigned char *)PyBytes_AS_STRING(dfs);
    unsigned char *dp = (unsigned char *)PyBytes_AS_STRING(deltas);
    unsigned char *tp = (unsigned char *)PyBytes_AS_STRING(o_tfs);
    unsigned char *mp = (unsigned char *)PyBytes_AS_STRING(o_masks);
    Py_BEGIN_ALLOW_THREADS
    rc = invert_fill(&t, keys, row_term, n, ords, tfs, masks, jp, dfp, dp, tp, mp);
    Py_END_ALLOW_THREADS
    if (rc == -1) {
        PyErr_NoMemory();
        goto done;
    }
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "the rows are not in ordinal order");
        goto done;
    }
    result = PyTuple_Pack(5, joined, dfs, deltas, o_tfs, o_masks);
done:
    Py_XDECREF(joined);
    Py_XDECREF(dfs);
    Py_XDECREF(deltas);
    Py_XDECREF(o_tfs);
    Py_XDECREF(o_masks);
    PyMem_RawFree(keys);
    PyMem_RawFree(row_term);
    table_free(&t);
    return result;
}

/* The ords, tfs and masks columns of n rows (args[1] to args[3]), checked; 0, or -1 with
 * TypeError. n is checked to fit the rows and a df (a uint32): -1 with MemoryError. */
static int
row_columns(PyObject *const *args, Py_ssize_t n, const unsigned char **ords, const unsigned char **tfs,
            const unsigned char **masks)
{
    *ords = u32_column(args[1], n);
    *tfs = *ords ? u32_column(args[2], n) : NULL;
    if (*tfs == NULL) {
        return -1;
    }
    if (!PyBytes_CheckExact(args[3]) || PyBytes_GET_SIZE(args[3]) != n) {
        PyErr_SetString(PyExc_TypeError, "the columns differ in length");
        return -1;
    }
    *masks = (const unsigned char *)PyBytes_AS_STRING(args[3]);
    if ((size_t)n > ((size_t)PY_SSIZE_T_MAX / sizeof(Key)) / 2 || (uint64_t)n > UINT32_MAX) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* invert_rows(terms, ords, tfs, masks) -> (distinct joined, dfs, deltas, tfs, masks): the rows
 * (one per (term, session), added session after session: ordinals ascend within a term) grouped
 * by term, the terms sorted by UTF-8, as SegmentBuilder.invert's pure path.
 *
 * The terms are checked and their buffers noted with the GIL, and held by a tuple of their own
 * (a list another thread changed could drop a term while it is read). */
static PyObject *
invert_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "invert_rows(terms, ords, tfs, masks) takes 4 arguments");
        return NULL;
    }
    if (!PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "terms must be a list of bytes");
        return NULL;
    }
    PyObject *held = PyList_AsTuple(args[0]);
    if (held == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(held);
    const unsigned char *ords, *tfs, *masks;
    PyObject *result = NULL;
    Key *rows = NULL;
    if (row_columns(args, n, &ords, &tfs, &masks) < 0) {
        goto done;
    }
    rows = PyMem_RawMalloc(((size_t)n + 1) * sizeof(Key));
    if (rows == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *term = PyTuple_GET_ITEM(held, i);
        if (!PyBytes_CheckExact(term)) {
            PyErr_SetString(PyExc_TypeError, "terms must be a list of bytes");
            goto done;
        }
        rows[i].p = (const unsigned char *)PyBytes_AS_STRING(term);
        rows[i].len = PyBytes_GET_SIZE(term);
        rows[i].id = i;
        rows[i].head = 0; /* rows are hashed, not sorted */
        if (rows[i].len < 1 || rows[i].len > MAX_TERM || memchr(rows[i].p, '\n', (size_t)rows[i].len) != NULL) {
            PyErr_SetString(PyExc_ValueError, "terms are 1 to 64 UTF-8 bytes without a newline");
            goto done;
        }
    }
    result = invert_core(rows, n, ords, tfs, masks);
done:
    PyMem_RawFree(rows);
    Py_DECREF(held);
    return result;
}

/* The rows of the newline-joined pieces [p[c], p[c] + size[c]) (an empty piece: no row) into
 * rows, at most n. Without the GIL: 0, -1 for a term of no or more than MAX_TERM bytes, -2 when
 * the pieces do not hold exactly n rows. */
static int
cut_rows(const unsigned char *const *p, const Py_ssize_t *size, Py_ssize_t pieces, Key *rows, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (Py_ssize_t c = 0; c < pieces; c++) {
        Py_ssize_t at = 0;
        while (size[c] > 0 && at <= size[c]) {
            const unsigned char *nl = memchr(p[c] + at, '\n', (size_t)(size[c] - at));
            Py_ssize_t end = nl == NULL ? size[c] : nl - p[c];
            if (end - at < 1 || end - at > MAX_TERM) {
                return -1;
            }
            if (i == n) {
                return -2;
            }
            rows[i].p = p[c] + at;
            rows[i].len = end - at;
            rows[i].id = i;
            rows[i].head = 0;
            i++;
            at = end + 1;
        }
    }
    return i == n ? 0 : -2;
}

/* invert_joined(pieces, ords, tfs, masks): invert_rows of the rows the pieces hold, each piece
 * a session's terms joined by newlines (PackedDoc.terms): no bytes object per row. The pieces
 * are held by a tuple of their own and cut without the GIL. */
static PyObject *
invert_joined(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "invert_joined(pieces, ords, tfs, masks) takes 4 arguments");
        return NULL;
    }
    if (!PyList_CheckExact(args[0]) || !PyBytes_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "pieces must be a list of bytes, masks bytes");
        return NULL;
    }
    PyObject *held = PyList_AsTuple(args[0]);
    if (held == NULL) {
        return NULL;
    }
    Py_ssize_t pieces = PyTuple_GET_SIZE(held), n = PyBytes_GET_SIZE(args[3]);
    const unsigned char *ords, *tfs, *masks;
    const unsigned char **p = NULL;
    Py_ssize_t *size = NULL;
    Key *rows = NULL;
    PyObject *result = NULL;
    if (row_columns(args, n, &ords, &tfs, &masks) < 0) {
        goto done;
    }
    p = PyMem_RawMalloc(((size_t)pieces + 1) * sizeof(*p));
    size = PyMem_RawMalloc(((size_t)pieces + 1) * sizeof(*size));
    rows = PyMem_RawMalloc(((size_t)n + 1) * sizeof(Key));
    if (p == NULL || size == NULL || rows == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < pieces; c++) {
        PyObject *piece = PyTuple_GET_ITEM(held, c);
        if (!PyBytes_CheckExact(piece)) {
            PyErr_SetString(PyExc_TypeError, "pieces must be a list of bytes, masks bytes");
            goto done;
        }
        p[c] = (const unsigned char *)PyBytes_AS_STRING(piece);
        size[c] = PyBytes_GET_SIZE(piece);
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cut_rows(p, size, pieces, rows, n);
    Py_END_ALLOW_THREADS
    if (rc == -1) {
        PyErr_SetString(PyExc_ValueError, "terms are 1 to 64 UTF-8 bytes without a newline");
        goto done;
    }
    if (rc == -2) {
        PyErr_SetString(PyExc_TypeError, "the columns differ in length");
        goto done;
    }
    result = invert_core(rows, n, ords, tfs, masks);
done:
    PyMem_RawFree(rows);
    PyMem_RawFree(size);
    PyMem_RawFree(p);
    Py_DECREF(held);
    return result;
}

/* ---- gather_terms ----------------------------------------------------------------------- */

/* gather_terms(moved, dfs, deltas, tfs, masks) -> (dfs, deltas, tfs, masks): the terms' columns
 * (dfs, one per term) and their postings' (deltas, tfs, masks, term after term) in the order
 * *moved* (term indices, native uint32) gives: Inverted._payloads' bucket order, computed from
 * the keyed slots in Python; this only moves the key-free columns. */
static PyObject *
gather_terms(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "gather_terms(moved, dfs, deltas, tfs, masks) takes 5 arguments");
        return NULL;
    }
    for (int a = 0; a < 5; a++) {
        if (!PyBytes_CheckExact(args[a])) {
            PyErr_SetString(PyExc_TypeError, "the columns must be bytes");
            return NULL;
        }
    }
    Py_ssize_t nt = PyBytes_GET_SIZE(args[1]) / 4;
    Py_ssize_t n = PyBytes_GET_SIZE(args[4]);
    const unsigned char *moved = u32_column(args[0], nt);
    const unsigned char *dfs = moved ? u32_column(args[1], nt) : NULL;
    const unsigned char *deltas = dfs ? u32_column(args[2], n) : NULL;
    const unsigned char *tfs = deltas ? u32_column(args[3], n) : NULL;
    if (tfs == NULL) {
        return NULL;
    }
    const unsigned char *masks = (const unsigned char *)PyBytes_AS_STRING(args[4]);
    if ((size_t)nt > (size_t)PY_SSIZE_T_MAX / sizeof(Py_ssize_t) - 1) {
        return PyErr_NoMemory();
    }
    Py_ssize_t *starts = PyMem_RawMalloc(((size_t)nt + 1) * sizeof(Py_ssize_t));
    if (starts == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *result = NULL, *o_dfs = NULL, *o_deltas = NULL, *o_tfs = NULL, *o_masks = NULL;
    starts[0] = 0;
    for (Py_ssize_t k = 0; k < nt; k++) {
        Py_ssize_t df = (Py_ssize_t)u32_at(dfs, k);
        if (starts[k] > n - df) {
            PyErr_SetString(PyExc_ValueError, "the dfs do not add up to the postings");
            goto done;
        }
        starts[k + 1] = starts[k] + df;
    }
    if (starts[nt] != n) {
        PyErr_SetString(PyExc_ValueError, "the dfs do not add up to the postings");
        goto done;
    }
    for (Py_ssize_t k = 0; k < nt; k++) {
        if ((Py_ssize_t)u32_at(moved, k) >= nt) {
            PyErr_SetString(PyExc_ValueError, "a moved term out of range");
            goto done;
        }
    }
    /* The output's size, from the order itself (n when it is a permutation). */
    Py_ssize_t total = 0;
    for (Py_ssize_t k = 0; k < nt; k++) {
        Py_ssize_t df = (Py_ssize_t)u32_at(dfs, u32_at(moved, k));
        if (total > (PY_SSIZE_T_MAX / 4) - df) {
            PyErr_NoMemory();
            goto done;
        }
        total += df;
    }
    o_dfs = PyBytes_FromStringAndSize(NULL, nt * 4);
    o_deltas = PyBytes_FromStringAndSize(NULL, total * 4);
    o_tfs = PyBytes_FromStringAndSize(NULL, total * 4);
    o_masks = PyBytes_FromStringAndSize(NULL, total);
    if (o_dfs == NULL || o_deltas == NULL || o_tfs == NULL || o_masks == NULL) {
        goto done;
    }
    unsigned char *od = (unsigned char *)PyBytes_AS_STRING(o_deltas);
    unsigned char *ot = (unsigned char *)PyBytes_AS_STRING(o_tfs);
    unsigned char *om = (unsigned char *)PyBytes_AS_STRING(o_masks);
    unsigned char *of = (unsigned char *)PyBytes_AS_STRING(o_dfs);
    /* The arguments are immutable bytes the caller holds, the outputs this call's alone. */
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t at = 0;
    for (Py_ssize_t k = 0; k < nt; k++) {
        uint32_t term = u32_at(moved, k);
        Py_ssize_t from = starts[term], df = starts[term + 1] - starts[term];
        u32_put(of, k, (uint32_t)df);
        memcpy(od + (size_t)at * 4, deltas + (size_t)from * 4, (size_t)df * 4);
        memcpy(ot + (size_t)at * 4, tfs + (size_t)from * 4, (size_t)df * 4);
        memcpy(om + at, masks + from, (size_t)df);
        at += df;
    }
    Py_END_ALLOW_THREADS
    result = PyTuple_Pack(4, o_dfs, o_deltas, o_tfs, o_masks);
done:
    Py_XDECREF(o_dfs);
    Py_XDECREF(o_deltas);
    Py_XDECREF(o_tfs);
    Py_XDECREF(o_masks);
    PyMem_RawFree(starts);
    return result;
}

/* ---- bucket_order ----------------------------------------------------------------------- */

/* A big-endian u64 from the first 8 bytes at p. */
static uint64_t
be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* bucket_order(macs, nb) -> (moved, counts): each term's bucket, int.from_bytes(mac[:8], "big")
 * % nb (_format.slot's, from the HMACs computed in Python), then the term indices in bucket
 * order, a stable counting sort (UTF-8 order kept within a bucket: sorted(range(n),
 * key=slots.__getitem__)'s), and each bucket's number of terms; both native uint32. */
static PyObject *
bucket_order(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyLong_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "bucket_order(macs, nb) takes a list of bytes and an int");
        return NULL;
    }
    PyObject *macs = args[0];
    Py_ssize_t nb = PyLong_AsSsize_t(args[1]);
    if (nb == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(macs);
    if (nb < 1 || (uint64_t)nb > UINT32_MAX || (uint64_t)n > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "bucket_order needs 1 to 2**32 - 1 buckets and terms");
        return NULL;
    }
    uint32_t *slot = PyMem_RawMalloc(((size_t)n + 1) * sizeof(uint32_t));
    Py_ssize_t *start = PyMem_RawCalloc((size_t)nb + 1, sizeof(Py_ssize_t));
    PyObject *moved = NULL, *counts = NULL, *result = NULL;
    if (slot == NULL || start == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *mac = PyList_GET_ITEM(macs, i);
        if (!PyBytes_CheckExact(mac) || PyBytes_GET_SIZE(mac) < 8) {
            PyErr_SetString(PyExc_TypeError, "a MAC must be bytes of at least 8 bytes");
            goto done;
        }
        slot[i] = (uint32_t)(be64((const unsigned char *)PyBytes_AS_STRING(mac)) % (uint64_t)nb);
        start[slot[i] + 1]++;
    }
    moved = PyBytes_FromStringAndSize(NULL, n * 4);
    counts = PyBytes_FromStringAndSize(NULL, nb * 4);
    if (moved == NULL || counts == NULL) {
        goto done;
    }
    for (Py_ssize_t b = 0; b < nb; b++) {
        u32_put((unsigned char *)PyBytes_AS_STRING(counts), b, (uint32_t)start[b + 1]);
        start[b + 1] += start[b]; /* now: where bucket b + 1 starts */
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        u32_put((unsigned char *)PyBytes_AS_STRING(moved), start[slot[i]]++, (uint32_t)i);
    }
    result = PyTuple_Pack(2, moved, counts);
done:
    Py_XDECREF(moved);
    Py_XDECREF(counts);
    PyMem_RawFree(start);
    PyMem_RawFree(slot);
    return result;
}

/* ---- prefix_lists ----------------------------------------------------------------------- */

typedef struct {
    Py_ssize_t at, len;
} Line;

/* The newline-separated lines of [p, p + size) (none when size is 0), in *n; NULL with
 * MemoryError. */
static Line *
cut_lines(const unsigned char *p, Py_ssize_t size, Py_ssize_t *n)
{
    Py_ssize_t count = size > 0;
    for (const unsigned char *q = p; size > 0 && (q = memchr(q, '\n', (size_t)(p + size - q))) != NULL; q++) {
        count++;
    }
    Line *lines = PyMem_RawMalloc(((size_t)count + 1) * sizeof(Line));
    if (lines == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        const unsigned char *nl = memchr(p + at, '\n', (size_t)(size - at));
        Py_ssize_t end = nl == NULL ? size : nl - p;
        lines[k].at = at;
        lines[k].len = end - at;
        at = end + 1;
    }
    *n = count;
    return lines;
}

/* The bytes of the first `chars` code points of the UTF-8 [p, p + len) (t[:3] of a term). */
static Py_ssize_t
head_len(const unsigned char *p, Py_ssize_t len, int chars)
{
    int seen = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80 && seen++ == chars) {
            return i;
        }
    }
    return len;
}

static int
same_line(const unsigned char *a, Line x, const unsigned char *b, Line y, Py_ssize_t ylen)
{
    return x.len == ylen && memcmp(a + x.at, b + y.at, (size_t)ylen) == 0;
}

/* Finds each word-like term's df (walking the terms: word-like is a subsequence of them, both
 * in UTF-8 order) and its head's bucket (walking the heads: a term's head never sorts before
 * the previous term's), into wdf and wslot; counts each bucket's terms and bytes. Without the
 * GIL: 0, -1 for a term of no or too many bytes, -2 when they do not match (the caller raises
 * ValueError). */
static int
place_wordlike(const unsigned char *tp, const Line *terms, Py_ssize_t nt, const unsigned char *dfs,
               const unsigned char *wp, const Line *words, Py_ssize_t nw, const unsigned char *hp,
               const Line *heads, Py_ssize_t nh, const unsigned char *slots, Py_ssize_t npf, uint32_t *wdf,
               uint32_t *wslot, Py_ssize_t *count, Py_ssize_t *size)
{
    Py_ssize_t t = 0, h = 0;
    for (Py_ssize_t i = 0; i < nw; i++) {
        Line w = words[i];
        if (w.len < 1 || w.len > MAX_TERM) {
            return -1;
        }
        while (t < nt && !same_line(tp, terms[t], wp, w, w.len)) {
            t++;
        }
        Line head = {w.at, head_len(wp + w.at, w.len, 3)};
        while (h < nh && !same_line(hp, heads[h], wp, head, head.len)) {
            h++;
        }
        if (t == nt || h == nh || u32_at(slots, h) >= (uint64_t)npf) {
            return -2;
        }
        wdf[i] = u32_at(dfs, t++);
        wslot[i] = u32_at(slots, h);
        count[wslot[i]]++;
        size[wslot[i]] += w.len + (count[wslot[i]] > 1);
    }
    return 0;
}

/* One empty prefix payload per bucket: u32 count, u32 size of the term list, the terms joined
 * by newlines, their dfs (encode_prefix's layout, big-endian). A new list or NULL. */
static PyObject *
prefix_buffers(const Py_ssize_t *count, const Py_ssize_t *size, Py_ssize_t npf)
{
    PyObject *out = PyList_New(npf);
    for (Py_ssize_t b = 0; out != NULL && b < npf; b++) {
        /* count <= size <= the word-like bytes (< 2**32, checked by the caller) */
        PyObject *p = PyBytes_FromStringAndSize(NULL, 8 + size[b] + 4 * count[b]);
        if (p == NULL) {
            Py_CLEAR(out);
            break;
        }
        unsigned char *q = (unsigned char *)PyBytes_AS_STRING(p);
        for (int k = 0; k < 4; k++) {
            q[k] = (unsigned char)((uint64_t)count[b] >> (24 - 8 * k));
            q[4 + k] = (unsigned char)((uint64_t)size[b] >> (24 - 8 * k));
        }
        PyList_SET_ITEM(out, b, p);
    }
    return out;
}

/* prefix_lists(terms, dfs, wordlike, heads, head_slots, npf) -> list of npf payloads: the
 * prefix buckets _build._prefix_payloads encodes. terms: the segment's distinct terms sorted by
 * UTF-8 and joined by newlines, dfs theirs (native uint32); wordlike: those of them that are
 * word-like, joined, in the same order; heads: the distinct first three characters of those,
 * sorted and joined, and head_slots their buckets (keyed: computed in Python). Each bucket's
 * terms stay in UTF-8 order (a stable grouping of a sorted list). */
static PyObject *
prefix_lists(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyLong_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "prefix_lists(terms, dfs, wordlike, heads, head_slots, npf)");
        return NULL;
    }
    for (int a = 0; a < 5; a++) {
        if (!PyBytes_CheckExact(args[a])) {
            PyErr_SetString(PyExc_TypeError, "the columns must be bytes");
            return NULL;
        }
    }
    Py_ssize_t npf = PyLong_AsSsize_t(args[5]);
    if (npf == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t wsize = PyBytes_GET_SIZE(args[2]);
    if (npf < 1 || (uint64_t)npf > UINT32_MAX || (uint64_t)wsize >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "prefix_lists needs 1 to 2**32 - 1 buckets");
        return NULL;
    }
    const unsigned char *tp = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const unsigned char *wp = (const unsigned char *)PyBytes_AS_STRING(args[2]);
    const unsigned char *hp = (const unsigned char *)PyBytes_AS_STRING(args[3]);
    Py_ssize_t nt = 0, nw = 0, nh = 0;
    Line *terms = cut_lines(tp, PyBytes_GET_SIZE(args[0]), &nt);
    Line *words = terms ? cut_lines(wp, wsize, &nw) : NULL;
    Line *heads = words ? cut_lines(hp, PyBytes_GET_SIZE(args[3]), &nh) : NULL;
    uint32_t *wdf = NULL, *wslot = NULL;
    Py_ssize_t *count = NULL, *size = NULL;
    PyObject *out = NULL;
    if (heads == NULL) {
        goto done;
    }
    const unsigned char *dfs = u32_column(args[1], nt);
    const unsigned char *slots = dfs ? u32_column(args[4], nh) : NULL;
    if (slots == NULL) {
        goto done;
    }
    wdf = PyMem_RawMalloc(((size_t)nw + 1) * sizeof(uint32_t));
    wslot = PyMem_RawMalloc(((size_t)nw + 1) * sizeof(uint32_t));
    count = PyMem_RawCalloc((size_t)npf, sizeof(Py_ssize_t));
    size = PyMem_RawCalloc((size_t)npf, sizeof(Py_ssize_t));
    if (wdf == NULL || wslot == NULL || count == NULL || size == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS /* the arguments are immutable bytes the caller holds */
    rc = place_wordlike(tp, terms, nt, dfs, wp, words, nw, hp, heads, nh, slots, npf, wdf, wslot, count, size);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_SetString(PyExc_ValueError, rc == -1 ? "terms are 1 to 64 UTF-8 bytes without a newline"
                                                   : "the word-like terms, heads and buckets do not match");
        goto done;
    }
    out = prefix_buffers(count, size, npf);
    if (out == NULL) {
        goto done;
    }
    /* Now the write cursors: size[b] the next term's place, count[b] the next df's. */
    for (Py_ssize_t b = 0; b < npf; b++) {
        count[b] = 8 + size[b];
        size[b] = 8;
    }
    /* The payloads' buffers, noted with the GIL: the list is this call's alone. */
    unsigned char **bufs = PyMem_RawMalloc((size_t)npf * sizeof(unsigned char *));
    if (bufs == NULL) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t b = 0; b < npf; b++) {
        bufs[b] = (unsigned char *)PyBytes_AS_STRING(PyList_GET_ITEM(out, b));
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < nw; i++) {
        Py_ssize_t b = wslot[i];
        unsigned char *q = bufs[b];
        if (size[b] > 8) {
            q[size[b]++] = '\n';
        }
        memcpy(q + size[b], wp + words[i].at, (size_t)words[i].len);
        size[b] += words[i].len;
        unsigned char *d = q + count[b];
        count[b] += 4;
        d[0] = (unsigned char)(wdf[i] >> 24);
        d[1] = (unsigned char)(wdf[i] >> 16);
        d[2] = (unsigned char)(wdf[i] >> 8);
        d[3] = (unsigned char)wdf[i];
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(bufs);
done:
    PyMem_RawFree(size);
    PyMem_RawFree(count);
    PyMem_RawFree(wslot);
    PyMem_RawFree(wdf);
    PyMem_RawFree(heads);
    PyMem_RawFree(words);
    PyMem_RawFree(terms);
    return out;
}

static PyMethodDef methods[] = {
    {"count_translated", (PyCFunction)(void (*)(void))count_translated, METH_FASTCALL,
     "count_translated(raw, terms_of_run) -> (dict[bytes, int], int): _tokens.count_translated, natively."},
    {"pack_fields", (PyCFunction)(void (*)(void))pack_fields, METH_FASTCALL,
     "pack_fields(fields, terms_of_run) -> (terms, tfs, masks, lengths): one session's packed postings."},
    {"invert_rows", (PyCFunction)(void (*)(void))invert_rows, METH_FASTCALL,
     "invert_rows(terms, ords, tfs, masks) -> (terms, dfs, deltas, tfs, masks): a segment's rows by term."},
    {"invert_joined", (PyCFunction)(void (*)(void))invert_joined, METH_FASTCALL,
     "invert_joined(pieces, ords, tfs, masks) -> invert_rows' columns, each piece a session's joined terms."},
    {"gather_terms", (PyCFunction)(void (*)(void))gather_terms, METH_FASTCALL,
     "gather_terms(moved, dfs, deltas, tfs, masks) -> (dfs, deltas, tfs, masks): the terms' columns reordered."},
    {"bucket_order", (PyCFunction)(void (*)(void))bucket_order, METH_FASTCALL,
     "bucket_order(macs, nb) -> (moved, counts): the terms in bucket order, and each bucket's count."},
    {"prefix_lists", (PyCFunction)(void (*)(void))prefix_lists, METH_FASTCALL,
     "prefix_lists(terms, dfs, wordlike, heads, head_slots, npf) -> list[bytes]: the prefix buckets."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ctok", "The index build's optional accelerator (docs/design.md, \"Build speed\").", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__ctok(void)
{
    for (int c = 0; c < 256; c++) {
        space_table[c] = (unsigned char)is_space((unsigned char)c);
        separator_table[c] = (unsigned char)is_separator((unsigned char)c);
    }
    /* The hash seed: random per process (os.urandom). */
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL) {
        return NULL;
    }
    PyObject *seed = PyObject_CallMethod(os, "urandom", "n", (Py_ssize_t)sizeof(hash_seed));
    Py_DECREF(os);
    if (seed == NULL) {
        return NULL;
    }
    if (!PyBytes_Check(seed) || PyBytes_GET_SIZE(seed) != (Py_ssize_t)sizeof(hash_seed)) {
        Py_DECREF(seed);
        PyErr_SetString(PyExc_SystemError, "os.urandom gave the wrong size");
        return NULL;
    }
    memcpy(&hash_seed, PyBytes_AS_STRING(seed), sizeof(hash_seed));
    Py_DECREF(seed);
    return PyModule_Create(&module);
}
