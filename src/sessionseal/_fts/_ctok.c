/* The index build's optional accelerator: sessionseal._fts._ctok (docs/design.md, "Build speed").
 *
 * count_translated(raw, terms_of_run) gives exactly what _tokens.count_translated_pure gives for
 * the same bytes: every term with its count, and the text's length (docs/spec/fts-v1.md, "Terms").
 * It reads users' sanitized session text, so it is written to fail closed:
 *
 * - it accepts only an immutable `bytes` (never a buffer another thread could change while the
 *   GIL is released), and reads it only inside [0, len);
 * - every allocation is checked, every size computation is checked for overflow, every error
 *   path frees what it allocated and raises (MemoryError, TypeError), never a crash;
 * - no recursion, no fixed-size buffer that input can fill (the one stack buffer holds a term of
 *   at most MAX_TERM bytes, checked before the copy);
 * - it never puts text in an exception message.
 *
 * One pass, with the GIL released: cut the runs (bytes.split()'s ASCII whitespace), count each
 * distinct run in an open-addressing hash table (keys point into `raw`, nothing copied), and
 * classify each distinct run:
 *
 *   PLAIN   no upper-case ASCII letter, "_" or non-ASCII byte, at most 64 bytes: its own term;
 *   LOWER   ASCII, no "_", and ALLCAPS, digits, Capitalized or lower case (the tests of
 *           _terms_of_run, as bytes.isupper/isdigit/islower): its term is its lower case, or
 *           none beyond 64 bytes;
 *   PYTHON  the rest ("_", camel case, non-ASCII): handed to terms_of_run, once per distinct
 *           run (Python's cached rules 2 to 4).
 *
 * The dict is built in the order the pure path builds it: the PLAIN runs in the order they first
 * appear, then the terms of the other runs, in the order those first appear.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define MAX_TERM 64

enum run_class { PLAIN = 0, LOWER = 1, DROPPED = 2, PYTHON = 3 };

typedef struct {
    Py_ssize_t start;  /* offset in raw */
    Py_ssize_t len;
    Py_ssize_t count;
    uint64_t hash;
    int cls;
} Entry;

typedef struct {
    Entry *entries;   /* distinct runs, in the order they first appear */
    Py_ssize_t n;     /* entries used */
    Py_ssize_t cap;   /* entries allocated */
    Py_ssize_t *slots; /* index into entries + 1; 0 = empty */
    size_t mask;      /* slots - 1 (a power of two) */
    Py_ssize_t runs;  /* every run, distinct or not: the length before rules 2 to 4 */
} Table;

static uint64_t hash_seed;

/* A seeded multiplicative hash, 8 bytes at a time (the runs are short, and this is not a MAC).
 * The seed is random per process, so which runs share a slot is not fixed by the text alone. */
static uint64_t
hash_run(const unsigned char *p, Py_ssize_t len)
{
    uint64_t h = hash_seed ^ ((uint64_t)len * 0x9E3779B97F4A7C15ULL);
    Py_ssize_t i = 0;
    while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
        i += 8;
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, p + i, (size_t)(len - i));
        h = (h ^ w) * 0x94D049BB133111EBULL;
        h ^= h >> 29;
    }
    h = (h ^ (h >> 32)) * 0xD6E8FEB86659FD93ULL;
    return h ^ (h >> 32);
}

/* Python's bytes.split() with no argument cuts at these (Py_ISSPACE: ASCII only). */
static int
is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int
table_init(Table *t)
{
    t->n = 0;
    t->cap = 1024;
    t->runs = 0;
    t->mask = 2047;
    t->entries = PyMem_RawMalloc((size_t)t->cap * sizeof(Entry));
    t->slots = PyMem_RawCalloc(t->mask + 1, sizeof(Py_ssize_t));
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
    if (nslots > ((size_t)PY_SSIZE_T_MAX / sizeof(Py_ssize_t)) / 2) {
        return -1;
    }
    nslots *= 2;
    Py_ssize_t *slots = PyMem_RawCalloc(nslots, sizeof(Py_ssize_t));
    if (slots == NULL) {
        return -1;
    }
    size_t mask = nslots - 1;
    for (Py_ssize_t k = 0; k < t->n; k++) {
        size_t s = (size_t)t->entries[k].hash & mask;
        while (slots[s] != 0) {
            s = (s + 1) & mask;
        }
        slots[s] = k + 1;
    }
    PyMem_RawFree(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

/* Counts one run [start, start + len) of raw. */
static int
table_add(Table *t, const unsigned char *raw, Py_ssize_t start, Py_ssize_t len)
{
    const unsigned char *p = raw + start;
    uint64_t h = hash_run(p, len);
    size_t s = (size_t)h & t->mask;
    Py_ssize_t k;
    while ((k = t->slots[s]) != 0) {
        Entry *e = &t->entries[k - 1];
        if (e->hash == h && e->len == len && memcmp(raw + e->start, p, (size_t)len) == 0) {
            e->count++;
            return 0;
        }
        s = (s + 1) & t->mask;
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
    e->start = start;
    e->len = len;
    e->count = 1;
    e->hash = h;
    e->cls = PLAIN;
    t->n++;
    t->slots[s] = t->n;
    if ((size_t)t->n * 2 > t->mask + 1) {
        return table_grow_slots(t);
    }
    return 0;
}

/* _terms_of_run's class of one distinct run, with the predicates of bytes.isupper, isdigit and
 * islower (ASCII cased letters only). */
static int
classify(const unsigned char *p, Py_ssize_t len)
{
    int upper = 0, other_ascii = 0, lower = 0, underscore = 0, high = 0, all_digits = 1;
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
        } else if (c >= '0' && c <= '9') {
            /* a digit */
        } else {
            underscore |= (c == '_');
            other_ascii = 1;
            all_digits = 0;
        }
    }
    (void)other_ascii;
    if (!upper && !underscore && !high && len <= MAX_TERM) {
        return PLAIN;
    }
    if (high || underscore) {
        return PYTHON;
    }
    /* ASCII, no "_": bytes.isupper(), isdigit(), run[1:].islower(), islower() */
    int is_upper = upper && !lower;
    int is_digit = all_digits && len > 0;
    int tail_is_lower = tail_lower && !tail_upper;
    int is_lower = lower && !upper;
    if (is_upper || is_digit || tail_is_lower || is_lower) {
        return len <= MAX_TERM ? LOWER : DROPPED;
    }
    return PYTHON;
}

/* The scan, without the GIL: 0, or -1 when memory ran out. */
static int
scan(Table *t, const unsigned char *raw, Py_ssize_t size)
{
    Py_ssize_t i = 0;
    while (i < size) {
        while (i < size && is_space(raw[i])) {
            i++;
        }
        if (i >= size) {
            break;
        }
        Py_ssize_t start = i;
        while (i < size && !is_space(raw[i])) {
            i++;
        }
        t->runs++;
        if (table_add(t, raw, start, i - start) < 0) {
            return -1;
        }
    }
    for (Py_ssize_t k = 0; k < t->n; k++) {
        t->entries[k].cls = classify(raw + t->entries[k].start, t->entries[k].len);
    }
    return 0;
}

/* counts[key] += n (a new key goes last). Steals nothing. */
static int
add_count(PyObject *counts, PyObject *key, PyObject *n)
{
    PyObject *old = PyDict_GetItemWithError(counts, key); /* borrowed */
    if (old == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        return PyDict_SetItem(counts, key, n);
    }
    PyObject *sum = PyNumber_Add(old, n);
    if (sum == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(counts, key, sum);
    Py_DECREF(sum);
    return rc;
}

/* The terms of one PYTHON run from terms_of_run: a (tuple of bytes, int) pair. Adds them to
 * counts and (words - 1) * n to *length. */
static int
add_python_run(PyObject *counts, PyObject **length, PyObject *terms_of_run, PyObject *run, PyObject *n)
{
    PyObject *got = PyObject_CallOneArg(terms_of_run, run);
    if (got == NULL) {
        return -1;
    }
    int rc = -1;
    if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 2 || !PyTuple_CheckExact(PyTuple_GET_ITEM(got, 0))
        || !PyLong_CheckExact(PyTuple_GET_ITEM(got, 1))) {
        PyErr_SetString(PyExc_TypeError, "terms_of_run must return (tuple of bytes, int)");
        goto done;
    }
    PyObject *terms = PyTuple_GET_ITEM(got, 0);
    PyObject *more = PyTuple_GET_ITEM(got, 1);
    int nonzero = PyObject_IsTrue(more);
    if (nonzero < 0) {
        goto done;
    }
    if (nonzero) {
        PyObject *extra = PyNumber_Multiply(more, n);
        if (extra == NULL) {
            goto done;
        }
        PyObject *sum = PyNumber_Add(*length, extra);
        Py_DECREF(extra);
        if (sum == NULL) {
            goto done;
        }
        Py_SETREF(*length, sum);
    }
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(terms); j++) {
        PyObject *term = PyTuple_GET_ITEM(terms, j);
        if (!PyBytes_CheckExact(term)) {
            PyErr_SetString(PyExc_TypeError, "terms_of_run must return (tuple of bytes, int)");
            goto done;
        }
        if (add_count(counts, term, n) < 0) {
            goto done;
        }
    }
    rc = 0;
done:
    Py_DECREF(got);
    return rc;
}

/* The dict from the counted table (with the GIL). */
static PyObject *
build_counts(const Table *t, PyObject *raw_obj, PyObject *terms_of_run, PyObject **length)
{
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(raw_obj);
    PyObject *counts = PyDict_New();
    if (counts == NULL) {
        return NULL;
    }
    /* Pass 1: the PLAIN runs, their own terms, in the order they first appear. */
    for (Py_ssize_t k = 0; k < t->n; k++) {
        const Entry *e = &t->entries[k];
        if (e->cls != PLAIN) {
            continue;
        }
        PyObject *key = PyBytes_FromStringAndSize((const char *)raw + e->start, e->len);
        PyObject *n = key ? PyLong_FromSsize_t(e->count) : NULL;
        int rc = n ? PyDict_SetItem(counts, key, n) : -1;
        Py_XDECREF(key);
        Py_XDECREF(n);
        if (rc < 0) {
            goto fail;
        }
    }
    /* Pass 2: the other runs' terms, summed with the PLAIN ones (a PLAIN term keeps its place). */
    for (Py_ssize_t k = 0; k < t->n; k++) {
        const Entry *e = &t->entries[k];
        if (e->cls == PLAIN || e->cls == DROPPED) {
            continue;
        }
        PyObject *key;
        if (e->cls == LOWER) {
            char lowered[MAX_TERM];
            if (e->len > MAX_TERM) { /* classify() never gives LOWER for these */
                PyErr_SetString(PyExc_SystemError, "a lowered run is too long");
                goto fail;
            }
            for (Py_ssize_t i = 0; i < e->len; i++) {
                unsigned char c = raw[e->start + i];
                lowered[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
            }
            key = PyBytes_FromStringAndSize(lowered, e->len);
        } else {
            key = PyBytes_FromStringAndSize((const char *)raw + e->start, e->len);
        }
        PyObject *n = key ? PyLong_FromSsize_t(e->count) : NULL;
        int rc = -1;
        if (n != NULL) {
            rc = e->cls == LOWER ? add_count(counts, key, n) : add_python_run(counts, length, terms_of_run, key, n);
        }
        Py_XDECREF(key);
        Py_XDECREF(n);
        if (rc < 0) {
            goto fail;
        }
    }
    return counts;
fail:
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
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = scan(&t, raw, size);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        table_free(&t);
        return PyErr_NoMemory();
    }
    PyObject *length = PyLong_FromSsize_t(t.runs);
    if (length == NULL) {
        table_free(&t);
        return NULL;
    }
    PyObject *counts = build_counts(&t, raw_obj, terms_of_run, &length);
    table_free(&t);
    if (counts == NULL) {
        Py_DECREF(length);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, counts, length);
    Py_DECREF(counts);
    Py_DECREF(length);
    return result;
}

static PyMethodDef methods[] = {
    {"count_translated", (PyCFunction)(void (*)(void))count_translated, METH_FASTCALL,
     "count_translated(raw, terms_of_run) -> (dict[bytes, int], int): _tokens.count_translated, natively."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ctok", "The index build's optional accelerator (docs/design.md, \"Build speed\").", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__ctok(void)
{
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
