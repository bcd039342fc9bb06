/* safetensors reading: see core/safetensors.h for what is checked. The header is copied out of
 * the mapping before cJSON sees it, NUL-terminated, so the parser never reads the mapping. */
#include "core/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"

/* Offsets and dimensions above 2^53 cannot come exactly through cJSON's doubles; no file that
 * can be mapped is that large, so they are rejected. */
#define MAX_JSON_INTEGER 9007199254740992.0

enum { NAME_TEXT = 96, SHAPE_TEXT = 160 };

/* ---------------------------------------------------------------- dtypes */

size_t mtla_dtype_size(mtla_dtype dtype)
{
    return dtype == MTLA_DTYPE_F32 ? 4 : 2;
}

const char *mtla_dtype_name(mtla_dtype dtype)
{
    switch (dtype) {
    case MTLA_DTYPE_F32: return "F32";
    case MTLA_DTYPE_F16: return "F16";
    case MTLA_DTYPE_BF16: return "BF16";
    }
    return "?";
}

static float bits_to_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float mtla_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1F) /* inf, NaN: the payload moves to the top of the wider mantissa */
        return bits_to_f32(sign | 0x7F800000u | (mantissa << 13));
    if (exponent != 0) /* normal: rebias 15 -> 127 */
        return bits_to_f32(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0)
        return bits_to_f32(sign);
    /* Subnormal, mantissa * 2^-24: normalise until the implicit bit (0x400) is set. */
    exponent = 113;
    while (!(mantissa & 0x400u)) {
        mantissa <<= 1;
        exponent--;
    }
    return bits_to_f32(sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13));
}

float mtla_bf16_to_f32(uint16_t bits)
{
    return bits_to_f32((uint32_t)bits << 16);
}

void mtla_convert_to_f32(mtla_dtype dtype, const unsigned char *src, uint64_t count, float *dst)
{
    switch (dtype) {
    case MTLA_DTYPE_F32:
        for (uint64_t i = 0; i < count; i++) {
            const unsigned char *b = src + 4 * i;
            dst[i] = bits_to_f32((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                                 (uint32_t)b[3] << 24);
        }
        break;
    case MTLA_DTYPE_F16:
        for (uint64_t i = 0; i < count; i++)
            dst[i] = mtla_f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case MTLA_DTYPE_BF16:
        for (uint64_t i = 0; i < count; i++)
            dst[i] = mtla_bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    }
}

const char *mtla_shape_format(const int64_t *shape, int32_t ndim, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int32_t i = 0; i < ndim && used < size; i++)
        used +=
            (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

/* ---------------------------------------------------------------- one file */

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const mtla_st_tensor *)a)->name, ((const mtla_st_tensor *)b)->name);
}

static int compare_by_begin(const void *a, const void *b)
{
    const mtla_st_tensor *x = *(const mtla_st_tensor *const *)a;
    const mtla_st_tensor *y = *(const mtla_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* A JSON integer in [0, 2^53]. */
static int json_index(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0.0 ||
        v->valuedouble > MAX_JSON_INTEGER)
        return 0;
    *out = (uint64_t)v->valuedouble;
    return 1;
}

/* Fills `t` from one header entry `v` named `name`; `data_size` bytes follow the header. */
static mtla_status parse_entry(const mtla_safetensors *f, const cJSON *v, mtla_st_tensor *t,
                               uint64_t data_size, mtla_error *err)
{
    static const char *const dtypes[] = {"F32", "F16", "BF16"};
    char name[NAME_TEXT], shape_text[SHAPE_TEXT], value[NAME_TEXT];
    mtla_printable(t->name, name, sizeof name);
    if (!cJSON_IsObject(v))
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' is not described by an object",
                         f->label, name);
    for (const cJSON *c = v->child; c; c = c->next) {
        if (strcmp(c->string, "dtype") != 0 && strcmp(c->string, "shape") != 0 &&
            strcmp(c->string, "data_offsets") != 0)
            return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' has an unknown key '%s'",
                             f->label, name, mtla_printable(c->string, value, sizeof value));
        for (const cJSON *d = v->child; d != c; d = d->next)
            if (strcmp(d->string, c->string) == 0)
                return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' has '%s' twice", f->label,
                                 name, c->string);
    }

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(v, "dtype");
    if (!cJSON_IsString(dtype))
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' has no dtype string", f->label,
                         name);
    int found = 0;
    for (int i = 0; i < 3 && !found; i++)
        if (strcmp(dtype->valuestring, dtypes[i]) == 0) {
            t->dtype = (mtla_dtype)i;
            found = 1;
        }
    if (!found)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                         "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are supported",
                         f->label, name, mtla_printable(dtype->valuestring, value, sizeof value));

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(v, "shape");
    if (!cJSON_IsArray(shape))
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' has no shape array", f->label,
                         name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > MTLA_TENSOR_MAX_DIMS)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                         "%s: tensor '%s' has %d dimensions; at most %d are supported", f->label,
                         name, ndim, MTLA_TENSOR_MAX_DIMS);
    t->ndim = ndim;
    /* The element count and the byte size must not wrap: a wrapped product could match a
     * small data_offsets span. */
    uint64_t count = 1, too_large = 0;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t dim;
        if (!json_index(d, &dim))
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "%s: tensor '%s' has a shape that is not a list of non-negative "
                             "integers",
                             f->label, name);
        t->shape[i] = (int64_t)dim;
        if (dim != 0 && count > UINT64_MAX / dim)
            too_large = 1;
        else
            count *= dim;
    }
    size_t element = mtla_dtype_size(t->dtype);
    if (count == 0)
        too_large = 0; /* a zero dimension anywhere makes the tensor empty */
    if (too_large || count > UINT64_MAX / element)
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' has shape %s, too large to store",
                         f->label, name,
                         mtla_shape_format(t->shape, t->ndim, shape_text, sizeof shape_text));
    t->count = count;

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(v, "data_offsets");
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_index(offsets->child, &t->begin) || !json_index(offsets->child->next, &t->end))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "%s: tensor '%s' needs data_offsets [begin, end] of two non-negative "
                         "integers",
                         f->label, name);
    if (t->begin > t->end)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "%s: tensor '%s' has data_offsets [%llu, %llu] with begin after end",
                         f->label, name, (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_size)
        return mtla_fail(err, MTLA_ERR_TRUNCATED,
                         "%s: tensor '%s' has data_offsets [%llu, %llu] beyond the %llu bytes of "
                         "data (file truncated?)",
                         f->label, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)data_size);
    if (t->end - t->begin != count * element)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "%s: tensor '%s' has %llu bytes of data but shape %s x %s needs %llu",
                         f->label, name, (unsigned long long)(t->end - t->begin),
                         mtla_shape_format(t->shape, t->ndim, shape_text, sizeof shape_text),
                         mtla_dtype_name(t->dtype), (unsigned long long)(count * element));
    t->data = f->map + 8 + f->header_size + t->begin;
    t->file = f->label;
    return MTLA_OK;
}

static mtla_status check_metadata(const mtla_safetensors *f, const cJSON *v, mtla_error *err)
{
    if (!cJSON_IsObject(v))
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: __metadata__ must be an object", f->label);
    for (const cJSON *c = v->child; c; c = c->next)
        if (!cJSON_IsString(c))
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "%s: __metadata__ values must be strings (see '%s')", f->label,
                             c->string);
    return MTLA_OK;
}

/* Checks the tensors of `f` (sorted by name) for a repeated name and overlapping data. */
static mtla_status check_layout(const mtla_safetensors *f, mtla_error *err)
{
    char a[NAME_TEXT], b[NAME_TEXT];
    for (size_t i = 1; i < f->count; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' appears twice in the header",
                             f->label, mtla_printable(f->tensors[i].name, a, sizeof a));
    const mtla_st_tensor **spans = malloc((f->count ? f->count : 1) * sizeof *spans);
    if (!spans)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "%s: out of memory checking the header",
                         f->label);
    size_t n = 0;
    for (size_t i = 0; i < f->count; i++)
        if (f->tensors[i].end > f->tensors[i].begin) /* empty tensors overlap nothing */
            spans[n++] = &f->tensors[i];
    qsort(spans, n, sizeof *spans, compare_by_begin);
    /* Sorted by begin, an overlap anywhere implies one between neighbours. */
    mtla_status st = MTLA_OK;
    for (size_t i = 1; i < n && st == MTLA_OK; i++)
        if (spans[i]->begin < spans[i - 1]->end)
            st = mtla_fail(
                err, MTLA_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                f->label, mtla_printable(spans[i - 1]->name, a, sizeof a),
                (unsigned long long)spans[i - 1]->begin, (unsigned long long)spans[i - 1]->end,
                mtla_printable(spans[i]->name, b, sizeof b), (unsigned long long)spans[i]->begin,
                (unsigned long long)spans[i]->end);
    free(spans);
    return st;
}

/* Parses JSON text of `size` bytes (NUL-terminated at text[size]): nothing but whitespace
 * may follow the value. Returns NULL with an MTLA_ERR_FORMAT message on failure; `what` names
 * the text in it ("header"). */
static cJSON *parse_json(const char *label, const char *what, const char *text, size_t size,
                         mtla_error *err)
{
    size_t bad_at;
    if (!mtla_utf8_valid(text, size, &bad_at)) {
        mtla_fail(err, MTLA_ERR_FORMAT, "%s: %s is not valid UTF-8 (byte %zu)", label, what,
                  bad_at);
        return NULL;
    }
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        mtla_fail(err, MTLA_ERR_FORMAT, "%s: %s starts with a byte order mark", label, what);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + size ? (size_t)(end - text) : 0;
        mtla_fail(err, MTLA_ERR_FORMAT, "%s: %s is not valid JSON (near byte %zu)", label, what,
                  at);
        return NULL;
    }
    /* safetensors writers pad the header with spaces to align the data. */
    for (size_t i = (size_t)(end - text); i < size; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n') {
            cJSON_Delete(root);
            mtla_fail(err, MTLA_ERR_FORMAT,
                      "%s: %s is not valid JSON (data after the value at byte %zu)", label, what,
                      i);
            return NULL;
        }
    return root;
}

static mtla_status parse_header(mtla_safetensors *f, mtla_error *err)
{
    const unsigned char *m = f->map;
    if (f->map_size < 8)
        return mtla_fail(err, MTLA_ERR_TRUNCATED,
                         "%s: file is %zu bytes, too short for a safetensors header", f->label,
                         f->map_size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | m[i];
    if (n == 0)
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: header length is 0", f->label);
    if (n > MTLA_SAFETENSORS_MAX_HEADER)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "%s: header length %llu is over the limit of %llu bytes (100 MiB)",
                         f->label, (unsigned long long)n,
                         (unsigned long long)MTLA_SAFETENSORS_MAX_HEADER);
    if (n > f->map_size - 8)
        return mtla_fail(err, MTLA_ERR_TRUNCATED,
                         "%s: header length %llu runs past the end of the file (%zu bytes)",
                         f->label, (unsigned long long)n, f->map_size);
    f->header_size = n;
    uint64_t data_size = f->map_size - 8 - n;

    char *text = malloc((size_t)n + 1);
    if (!text)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "%s: out of memory reading the header", f->label);
    memcpy(text, m + 8, (size_t)n);
    text[n] = '\0';
    cJSON *root = parse_json(f->label, "header", text, (size_t)n, err);
    free(text);
    if (!root)
        return MTLA_ERR_FORMAT;

    mtla_status st = MTLA_OK;
    if (!cJSON_IsObject(root)) {
        st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: header is not a JSON object", f->label);
        goto done;
    }
    size_t count = 0;
    int metadata_seen = 0;
    for (const cJSON *c = root->child; c; c = c->next)
        if (strcmp(c->string, "__metadata__") != 0)
            count++;
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    if (!f->tensors) {
        st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "%s: out of memory reading the header", f->label);
        goto done;
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (metadata_seen++) {
                st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: __metadata__ appears twice", f->label);
                goto done;
            }
            st = check_metadata(f, c, err);
            if (st != MTLA_OK)
                goto done;
            continue;
        }
        mtla_st_tensor *t = &f->tensors[f->count];
        t->name = strdup(c->string);
        if (!t->name) {
            st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "%s: out of memory reading the header",
                           f->label);
            goto done;
        }
        f->count++;
        st = parse_entry(f, c, t, data_size, err);
        if (st != MTLA_OK)
            goto done;
    }
    qsort(f->tensors, f->count, sizeof *f->tensors, compare_by_name);
    st = check_layout(f, err);
done:
    cJSON_Delete(root);
    return st;
}

mtla_status mtla_safetensors_open(const char *path, const char *label, mtla_safetensors **out,
                                  mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "safetensors: no output handle");
    *out = NULL;
    if (!path)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "safetensors: no path given");
    if (!label)
        label = path;
    mtla_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(label))) {
        free(f);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "%s: out of memory", label);
    }
    mtla_status st = MTLA_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0) {
        st = mtla_fail(err, MTLA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        goto fail;
    }
    struct stat info;
    if (fstat(fd, &info) != 0) {
        st = mtla_fail(err, MTLA_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
    } else if (!S_ISREG(info.st_mode)) {
        st = mtla_fail(err, MTLA_ERR_IO, "'%s' is not a regular file", path);
    } else if ((uintmax_t)info.st_size > (uintmax_t)SIZE_MAX) {
        st = mtla_fail(err, MTLA_ERR_UNSUPPORTED, "%s: file too large to map", label);
    } else if (info.st_size < 8) {
        st = mtla_fail(err, MTLA_ERR_TRUNCATED,
                       "%s: file is %jd bytes, too short for a safetensors header", label,
                       (intmax_t)info.st_size);
    } else {
        f->map_size = (size_t)info.st_size;
        void *map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
            st = mtla_fail(err, MTLA_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
        else
            f->map = map;
    }
    close(fd);
    if (st == MTLA_OK)
        st = parse_header(f, err);
    if (st == MTLA_OK) {
        *out = f;
        return MTLA_OK;
    }
fail:
    mtla_safetensors_close(f);
    return st;
}

/* Binary search over `count` tensors sorted by name, reached through `at`. */
static const mtla_st_tensor *find_sorted(const void *base, size_t count, const char *name,
                                         const mtla_st_tensor *(*at)(const void *, size_t))
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mtla_st_tensor *t = at(base, mid);
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static const mtla_st_tensor *array_at(const void *base, size_t i)
{
    return &((const mtla_st_tensor *)base)[i];
}

static const mtla_st_tensor *pointer_at(const void *base, size_t i)
{
    return ((const mtla_st_tensor *const *)base)[i];
}

const mtla_st_tensor *mtla_safetensors_find(const mtla_safetensors *file, const char *name)
{
    return file && name ? find_sorted(file->tensors, file->count, name, array_at) : NULL;
}

void mtla_safetensors_close(mtla_safetensors *file)
{
    if (!file)
        return;
    if (file->map)
        munmap(file->map, file->map_size);
    for (size_t i = 0; i < file->count; i++)
        free(file->tensors[i].name);
    free(file->tensors);
    free(file->label);
    free(file);
}

/* ---------------------------------------------------------------- sets */

/* One weight_map entry; both strings belong to the parsed index. */
typedef struct index_entry {
    const char *name;
    const char *file;
} index_entry;

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const index_entry *)a)->name, ((const index_entry *)b)->name);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int compare_tensor_pointers(const void *a, const void *b)
{
    return strcmp((*(const mtla_st_tensor *const *)a)->name,
                  (*(const mtla_st_tensor *const *)b)->name);
}

/* "model-KKKKK-of-NNNNN.safetensors" with 1 <= K <= N: the only names an index may list,
 * which also keeps it from naming files outside the directory. Returns N, or 0. */
static long shard_total(const char *name)
{
    static const char pattern[] = "model-#####-of-#####.safetensors";
    if (strlen(name) != sizeof pattern - 1)
        return 0;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == '#' ? (name[i] < '0' || name[i] > '9') : name[i] != pattern[i])
            return 0;
    }
    long k = strtol(name + 6, NULL, 10), n = strtol(name + 15, NULL, 10);
    return k >= 1 && k <= n ? n : 0;
}

static mtla_status set_add_file(mtla_safetensors_set *set, const char *dir, const char *name,
                                mtla_error *err)
{
    char *path = mtla_path_join(dir, name);
    if (!path)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening %s", name);
    struct stat info;
    if (set->sharded && stat(path, &info) != 0 && errno == ENOENT) {
        free(path);
        return mtla_fail(err, MTLA_ERR_IO,
                         "model directory '%s': shard %s, listed in %s, not found", dir, name,
                         MTLA_SAFETENSORS_INDEX);
    }
    mtla_safetensors *file;
    mtla_status st = mtla_safetensors_open(path, name, &file, err);
    free(path);
    if (st != MTLA_OK)
        return st;
    size_t index = set->file_count;
    set->files[set->file_count++] = file;
    for (size_t i = 0; i < file->count; i++)
        file->tensors[i].file_index = index;
    return MTLA_OK;
}

/* Collects the tensors of every file, sorted by name; a name in two files is an error. */
static mtla_status set_merge(mtla_safetensors_set *set, mtla_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < set->file_count; i++)
        total += set->files[i]->count;
    set->tensors = malloc((total ? total : 1) * sizeof *set->tensors);
    if (!set->tensors)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory listing tensors");
    for (size_t i = 0; i < set->file_count; i++)
        for (size_t k = 0; k < set->files[i]->count; k++)
            set->tensors[set->count++] = &set->files[i]->tensors[k];
    qsort(set->tensors, set->count, sizeof *set->tensors, compare_tensor_pointers);
    char name[NAME_TEXT];
    for (size_t i = 1; i < set->count; i++)
        if (strcmp(set->tensors[i - 1]->name, set->tensors[i]->name) == 0) {
            const char *a = set->tensors[i - 1]->file, *b = set->tensors[i]->file;
            if (strcmp(a, b) > 0) {
                const char *swap = a;
                a = b, b = swap;
            }
            return mtla_fail(err, MTLA_ERR_FORMAT, "tensor '%s' is in both %s and %s",
                             mtla_printable(set->tensors[i]->name, name, sizeof name), a, b);
        }
    return MTLA_OK;
}

/* Reads the index, opens every shard it names and checks the two agree. */
static mtla_status set_open_sharded(mtla_safetensors_set *set, const char *dir, mtla_error *err)
{
    const char *label = MTLA_SAFETENSORS_INDEX;
    char *text;
    size_t size;
    char name[NAME_TEXT], other[NAME_TEXT];
    mtla_status st =
        mtla_dir_read_file(dir, label, (size_t)MTLA_SAFETENSORS_MAX_HEADER, &text, &size, err);
    if (st != MTLA_OK)
        return st;
    cJSON *root = parse_json(label, "the file", text, size, err);
    free(text);
    if (!root)
        return MTLA_ERR_FORMAT;
    index_entry *entries = NULL;
    const char **files = NULL;
    size_t count = 0;

    if (!cJSON_IsObject(root)) {
        st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: the top level must be an object", label);
        goto done;
    }
    const cJSON *map = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        int is_map = strcmp(c->string, "weight_map") == 0;
        if (!is_map && strcmp(c->string, "metadata") != 0) {
            st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: unknown key '%s'", label,
                           mtla_printable(c->string, name, sizeof name));
            goto done;
        }
        if (!cJSON_IsObject(c)) {
            st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: %s must be an object", label, c->string);
            goto done;
        }
        if (is_map && map) {
            st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: weight_map appears twice", label);
            goto done;
        }
        if (is_map)
            map = c;
    }
    if (!map || !map->child) {
        st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: weight_map is %s", label,
                       map ? "empty" : "missing");
        goto done;
    }
    for (const cJSON *c = map->child; c; c = c->next)
        count++;
    entries = malloc(count * sizeof *entries);
    files = malloc(count * sizeof *files);
    if (!entries || !files) {
        st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "%s: out of memory", label);
        goto done;
    }
    long total = 0;
    size_t i = 0;
    for (const cJSON *c = map->child; c; c = c->next, i++) {
        long n = cJSON_IsString(c) ? shard_total(c->valuestring) : 0;
        if (n == 0 || (total != 0 && n != total)) {
            char value[NAME_TEXT] = "a non-string";
            if (cJSON_IsString(c))
                snprintf(value, sizeof value, "'%s'",
                         mtla_printable(c->valuestring, other, sizeof other));
            st = mtla_fail(err, MTLA_ERR_FORMAT,
                           "%s: tensor '%s' maps to %s, not a shard name "
                           "model-KKKKK-of-NNNNN.safetensors%s",
                           label, mtla_printable(c->string, name, sizeof name), value,
                           n ? " with the same NNNNN as the others" : "");
            goto done;
        }
        total = n;
        entries[i].name = c->string;
        entries[i].file = c->valuestring;
        files[i] = c->valuestring;
    }
    qsort(entries, count, sizeof *entries, compare_entries);
    for (i = 1; i < count; i++)
        if (strcmp(entries[i - 1].name, entries[i].name) == 0) {
            st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' is listed twice", label,
                           mtla_printable(entries[i].name, name, sizeof name));
            goto done;
        }

    qsort(files, count, sizeof *files, compare_strings);
    set->files = calloc(count, sizeof *set->files);
    if (!set->files) {
        st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "%s: out of memory", label);
        goto done;
    }
    for (i = 0; i < count; i++) {
        if (i > 0 && strcmp(files[i - 1], files[i]) == 0)
            continue;
        st = set_add_file(set, dir, files[i], err);
        if (st != MTLA_OK)
            goto done;
    }
    st = set_merge(set, err);
    if (st != MTLA_OK)
        goto done;

    /* Every tensor found is listed, in its own shard; every tensor listed was found. */
    for (i = 0; i < set->count; i++) {
        const mtla_st_tensor *t = set->tensors[i];
        index_entry key = {t->name, NULL};
        const index_entry *e = bsearch(&key, entries, count, sizeof *entries, compare_entries);
        if (!e) {
            st = mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' is not listed in %s", t->file,
                           mtla_printable(t->name, name, sizeof name), label);
            goto done;
        }
        if (strcmp(e->file, t->file) != 0) {
            st = mtla_fail(err, MTLA_ERR_FORMAT, "%s maps tensor '%s' to %s, but it is in %s",
                           label, mtla_printable(t->name, name, sizeof name), e->file, t->file);
            goto done;
        }
    }
    for (i = 0; i < count; i++)
        if (!mtla_safetensors_set_find(set, entries[i].name)) {
            st = mtla_fail(err, MTLA_ERR_FORMAT,
                           "%s maps tensor '%s' to %s, which does not hold it", label,
                           mtla_printable(entries[i].name, name, sizeof name), entries[i].file);
            goto done;
        }
done:
    free(entries);
    free(files);
    cJSON_Delete(root);
    return st;
}

mtla_status mtla_safetensors_set_open(const char *dir, mtla_safetensors_set **out, mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "safetensors: no output handle");
    *out = NULL;
    if (!dir)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "safetensors: no directory given");
    mtla_safetensors_set *set = calloc(1, sizeof *set);
    char *single = mtla_path_join(dir, MTLA_SAFETENSORS_SINGLE);
    char *index = mtla_path_join(dir, MTLA_SAFETENSORS_INDEX);
    mtla_status st = MTLA_OK;
    struct stat info;
    if (!set || !single || !index) {
        st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening tensors");
    } else if (stat(single, &info) == 0 || errno != ENOENT) {
        set->label = MTLA_SAFETENSORS_SINGLE;
        set->files = calloc(1, sizeof *set->files);
        if (!set->files)
            st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening tensors");
        else
            st = set_add_file(set, dir, MTLA_SAFETENSORS_SINGLE, err);
        if (st == MTLA_OK)
            st = set_merge(set, err);
    } else if (stat(index, &info) == 0 || errno != ENOENT) {
        set->label = MTLA_SAFETENSORS_INDEX;
        set->sharded = 1;
        st = set_open_sharded(set, dir, err);
    } else {
        st = mtla_fail(err, MTLA_ERR_IO, "model directory '%s': neither %s nor %s found", dir,
                       MTLA_SAFETENSORS_SINGLE, MTLA_SAFETENSORS_INDEX);
    }
    free(single);
    free(index);
    if (st != MTLA_OK) {
        mtla_safetensors_set_close(set);
        return st;
    }
    *out = set;
    return MTLA_OK;
}

const mtla_st_tensor *mtla_safetensors_set_find(const mtla_safetensors_set *set, const char *name)
{
    return set && name ? find_sorted(set->tensors, set->count, name, pointer_at) : NULL;
}

void mtla_safetensors_set_unmap(mtla_safetensors_set *set, size_t index)
{
    if (!set || index >= set->file_count || !set->files[index]->map)
        return;
    mtla_safetensors *f = set->files[index];
    munmap(f->map, f->map_size);
    f->map = NULL;
    for (size_t i = 0; i < f->count; i++)
        f->tensors[i].data = NULL;
}

void mtla_safetensors_set_close(mtla_safetensors_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->file_count; i++)
        mtla_safetensors_close(set->files[i]);
    free(set->files);
    free(set->tensors);
    free(set);
}
