/* The model directory loader (core/config.c, core/safetensors.c, core/model_dir.c) against
 * docs/model-format.md: every golden model directory of tests/golden/models loads, its tensors
 * equal the bytes of its files decoded here independently, and each kind of damage a hostile or
 * broken directory can carry is refused with a status and a message naming the problem.
 *
 * Damaged directories are made at run time: a golden directory is copied into a mkdtemp()
 * directory, one thing in it is changed, and the suite's fini removes the copy (also when an
 * assertion failed), so no test leaves files behind. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/model_dir.h"
#include "core/safetensors.h"
#include "test_support.h"

#define GOLDEN_DIR "tests/golden/models/"
#define BASE "transformer_mtla_s2" /* F32, one file, utterance CMVN */

/* ---------------------------------------------------------------- scratch directories */

static char work[256]; /* the copy a test damages; "" when none */

/* Removes `work` and the files in it (the copies are flat; a test may add an empty
 * directory). */
static void remove_work(void)
{
    if (!work[0])
        return;
    DIR *d = opendir(work);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            char path[512];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", work, e->d_name);
            if (unlink(path) != 0)
                rmdir(path); /* an empty directory a test made */
        }
        closedir(d);
    }
    rmdir(work);
    work[0] = '\0';
}

TestSuite(model_dir, .fini = remove_work);

static const char *golden(const char *name)
{
    static char path[4][4096];
    static int next;
    char *buf = path[next++ % 4];
    snprintf(buf, sizeof path[0], "%s", fixture(GOLDEN_DIR));
    strncat(buf, name, sizeof path[0] - strlen(buf) - 1);
    return buf;
}

static int golden_present(const char *name)
{
    struct stat info;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", golden(name));
    return stat(path, &info) == 0;
}

/* "work/name" in a rotating static buffer. */
static const char *in_work(const char *name)
{
    static char path[4][512];
    static int next;
    char *buf = path[next++ % 4];
    snprintf(buf, sizeof path[0], "%s/%s", work, name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *size)
{
    return read_file(path, size);
}

static void write_bytes(const char *path, const void *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(bytes, 1, size, f), size);
    cr_assert_eq(fclose(f), 0);
}

static void write_text(const char *name, const char *text)
{
    write_bytes(in_work(name), text, strlen(text));
}

/* Copies the regular files of golden directory `name` (not its fixtures/) into a new scratch
 * directory, which becomes `work`. */
static void copy_golden(const char *name)
{
    if (!golden_present(name))
        cr_skip_test("golden model %s not generated yet", name);
    snprintf(work, sizeof work, "/tmp/mtla-test-model-XXXXXX");
    cr_assert(mkdtemp(work), "mkdtemp: %s", strerror(errno));
    const char *src = golden(name);
    DIR *d = opendir(src);
    cr_assert(d);
    for (struct dirent *e; (e = readdir(d));) {
        char from[4096];
        struct stat info;
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        if (stat(from, &info) != 0 || !S_ISREG(info.st_mode))
            continue;
        size_t size;
        unsigned char *bytes = slurp(from, &size);
        write_bytes(in_work(e->d_name), bytes, size);
        free(bytes);
    }
    closedir(d);
}

static void remove_file(const char *name)
{
    cr_assert_eq(unlink(in_work(name)), 0, "unlink %s: %s", name, strerror(errno));
}

/* Opening `dir` must fail with `status` and a message containing `needle` (and `needle2`
 * when given). */
static void expect_failure(const char *dir, mtla_status status, const char *needle,
                           const char *needle2)
{
    mtla_model *model = (mtla_model *)(uintptr_t)1;
    mtla_error err = {0};
    mtla_status st = mtla_model_open(dir, &model, &err);
    cr_assert_eq(st, status, "status %d (%s), expected %d; message: %s", (int)st,
                 mtla_status_string(st), (int)status, err.message);
    cr_assert_eq(err.status, status);
    cr_assert_null(model, "a failed open must leave *out NULL");
    cr_assert(strstr(err.message, needle), "message '%s' does not name '%s'", err.message, needle);
    if (needle2)
        cr_assert(strstr(err.message, needle2), "message '%s' does not name '%s'", err.message,
                  needle2);
    cr_assert(!strchr(err.message, '\n'), "messages are one line: '%s'", err.message);
}

static void expect_work_failure(mtla_status status, const char *needle, const char *needle2)
{
    expect_failure(work, status, needle, needle2);
}

static mtla_model *open_ok(const char *dir)
{
    mtla_model *model = NULL;
    mtla_error err = {0};
    mtla_status st = mtla_model_open(dir, &model, &err);
    cr_assert_eq(st, MTLA_OK, "%s: %s", dir, err.message);
    cr_assert_not_null(model);
    return model;
}

/* ---------------------------------------------------------------- config.json edits */

static cJSON *config_read(void)
{
    size_t size;
    unsigned char *text = slurp(in_work("config.json"), &size);
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    free(text);
    cr_assert(root);
    return root;
}

static void config_write(cJSON *root)
{
    char *text = cJSON_Print(root);
    cr_assert(text);
    write_text("config.json", text);
    free(text);
    cJSON_Delete(root);
}

/* The object at a dotted path such as "decoder.attention" ("" for the root). */
static cJSON *object_at(cJSON *root, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *o = root;
    for (char *save, *key = strtok_r(buf, ".", &save); key; key = strtok_r(NULL, ".", &save)) {
        o = cJSON_GetObjectItemCaseSensitive(o, key);
        cr_assert(cJSON_IsObject(o), "no object %s in config.json", path);
    }
    return o;
}

/* Replaces (or adds) member `key` of the object at `path` with `value`. */
static void config_set(const char *path, const char *key, cJSON *value)
{
    cJSON *root = config_read();
    cJSON *o = object_at(root, path);
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, value);
    else
        cJSON_AddItemToObject(o, key, value);
    config_write(root);
}

static void config_remove(const char *path, const char *key)
{
    cJSON *root = config_read();
    cJSON_DeleteItemFromObjectCaseSensitive(object_at(root, path), key);
    config_write(root);
}

/* ---------------------------------------------------------------- safetensors edits */

/* A safetensors file taken apart: its header as JSON and its data area. */
typedef struct st_file {
    cJSON *header;
    unsigned char *data;
    size_t size;
} st_file;

static uint64_t read_le64(const unsigned char *b)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    return n;
}

static void put_le64(unsigned char *b, uint64_t n)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(n >> (8 * i));
}

static st_file st_read_path(const char *path)
{
    size_t size;
    unsigned char *bytes = slurp(path, &size);
    cr_assert(size >= 8);
    uint64_t n = read_le64(bytes);
    cr_assert(n <= size - 8);
    st_file f;
    f.header = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)n);
    cr_assert(f.header, "%s: header does not parse", path);
    f.size = size - 8 - (size_t)n;
    f.data = malloc(f.size ? f.size : 1);
    cr_assert(f.data);
    memcpy(f.data, bytes + 8 + n, f.size);
    free(bytes);
    return f;
}

static st_file st_read(const char *name)
{
    return st_read_path(in_work(name));
}

/* Writes `f` as `name`, then frees it. The header is padded with spaces so that the data
 * starts at a multiple of 8 bytes, as safetensors writers do, plus `misalign` bytes. */
static void st_write(const char *name, st_file f, size_t misalign)
{
    char *json = cJSON_PrintUnformatted(f.header);
    cr_assert(json);
    size_t n = strlen(json);
    size_t padded = (8 + n + 7) / 8 * 8 - 8 + misalign;
    unsigned char *out = malloc(8 + padded + f.size);
    cr_assert(out);
    put_le64(out, padded);
    memcpy(out + 8, json, n);
    memset(out + 8 + n, ' ', padded - n);
    memcpy(out + 8 + padded, f.data, f.size);
    write_bytes(in_work(name), out, 8 + padded + f.size);
    free(out);
    free(json);
    free(f.data);
    cJSON_Delete(f.header);
}

static cJSON *entry(st_file *f, const char *tensor)
{
    cJSON *e = cJSON_GetObjectItemCaseSensitive(f->header, tensor);
    cr_assert(cJSON_IsObject(e), "no tensor %s in the file", tensor);
    return e;
}

static void set_offsets(st_file *f, const char *tensor, double begin, double end)
{
    cJSON *offsets = cJSON_CreateArray();
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber(begin));
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber(end));
    cJSON_ReplaceItemInObjectCaseSensitive(entry(f, tensor), "data_offsets", offsets);
}

static void offsets_of(st_file *f, const char *tensor, uint64_t *begin, uint64_t *end)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(entry(f, tensor), "data_offsets");
    *begin = (uint64_t)cJSON_GetArrayItem(o, 0)->valuedouble;
    *end = (uint64_t)cJSON_GetArrayItem(o, 1)->valuedouble;
}

static void set_shape(st_file *f, const char *tensor, const double *dims, int ndim)
{
    cJSON *shape = cJSON_CreateArray();
    for (int i = 0; i < ndim; i++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(dims[i]));
    cJSON_ReplaceItemInObjectCaseSensitive(entry(f, tensor), "shape", shape);
}

static void set_dtype(st_file *f, const char *tensor, const char *dtype)
{
    cJSON_ReplaceItemInObjectCaseSensitive(entry(f, tensor), "dtype", cJSON_CreateString(dtype));
}

/* Appends `size` bytes of data and a tensor entry describing them. */
static void add_tensor(st_file *f, const char *tensor, const char *dtype, const double *dims,
                       int ndim, size_t size)
{
    f->data = realloc(f->data, f->size + size);
    cr_assert(f->data);
    memset(f->data + f->size, 0, size);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "dtype", dtype);
    cJSON *shape = cJSON_AddArrayToObject(e, "shape");
    for (int i = 0; i < ndim; i++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(dims[i]));
    cJSON *offsets = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)f->size));
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(f->size + size)));
    /* cJSON_AddItemToObject does not look for an existing member: this may add a duplicate. */
    cJSON_AddItemToObject(f->header, tensor, e);
    f->size += size;
}

/* Writes a raw file: an 8-byte header length `n` followed by `body`. */
static void write_raw_safetensors(const char *name, uint64_t n, const char *body)
{
    size_t len = strlen(body);
    unsigned char *out = malloc(8 + len);
    cr_assert(out);
    put_le64(out, n);
    memcpy(out + 8, body, len);
    write_bytes(in_work(name), out, 8 + len);
    free(out);
}

/* ---------------------------------------------------------------- sharding */

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"

/* Splits work/model.safetensors into SHARD1 (the first half in header order) and SHARD2, with
 * model.safetensors.index.json, as tools/reference/model_dir.py writes them. Returns the name
 * of one tensor of each shard in first[], second[] (caller's buffers of 128 bytes). */
static void shard_work(char *first, char *second)
{
    st_file whole = st_read("model.safetensors");
    st_file part[2];
    for (int p = 0; p < 2; p++) {
        part[p].header = cJSON_CreateObject();
        cJSON *meta = cJSON_AddObjectToObject(part[p].header, "__metadata__");
        cJSON_AddStringToObject(meta, "format", "pt");
        part[p].data = NULL;
        part[p].size = 0;
    }
    int count = 0;
    for (cJSON *c = whole.header->child; c; c = c->next)
        count += strcmp(c->string, "__metadata__") != 0;
    cJSON *index = cJSON_CreateObject();
    cJSON_AddObjectToObject(index, "metadata");
    cJSON *map = cJSON_AddObjectToObject(index, "weight_map");
    int i = 0;
    for (cJSON *c = whole.header->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0)
            continue;
        int p = i++ < count / 2 ? 0 : 1;
        uint64_t begin, end;
        offsets_of(&whole, c->string, &begin, &end);
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(c, "shape");
        double dims[MTLA_TENSOR_MAX_DIMS];
        int ndim = cJSON_GetArraySize(shape);
        for (int d = 0; d < ndim; d++)
            dims[d] = cJSON_GetArrayItem(shape, d)->valuedouble;
        const char *dtype = cJSON_GetObjectItemCaseSensitive(c, "dtype")->valuestring;
        size_t at = part[p].size;
        add_tensor(&part[p], c->string, dtype, dims, ndim, (size_t)(end - begin));
        memcpy(part[p].data + at, whole.data + begin, (size_t)(end - begin));
        cJSON_AddStringToObject(map, c->string, p == 0 ? SHARD1 : SHARD2);
        snprintf(p == 0 ? first : second, 128, "%s", c->string);
    }
    st_write(SHARD1, part[0], 0);
    st_write(SHARD2, part[1], 0);
    char *text = cJSON_Print(index);
    write_text(MTLA_SAFETENSORS_INDEX, text);
    free(text);
    cJSON_Delete(index);
    free(whole.data);
    cJSON_Delete(whole.header);
    remove_file("model.safetensors");
}

static void index_set(const char *tensor, const char *file)
{
    size_t size;
    unsigned char *text = slurp(in_work(MTLA_SAFETENSORS_INDEX), &size);
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    free(text);
    cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (cJSON_GetObjectItemCaseSensitive(map, tensor))
        cJSON_ReplaceItemInObjectCaseSensitive(map, tensor, cJSON_CreateString(file));
    else
        cJSON_AddStringToObject(map, tensor, file);
    char *out = cJSON_Print(root);
    write_text(MTLA_SAFETENSORS_INDEX, out);
    free(out);
    cJSON_Delete(root);
}

/* ---------------------------------------------------------------- independent decoding */

/* IEEE binary16 from its definition: (-1)^s 2^(e-15) (1 + m/1024), subnormals 2^-14 m/1024. */
static float f16_reference(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    float v;
    if (e == 0x1F)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexpf((float)m, -24);
    else
        v = ldexpf((float)(m + 1024), e - 25);
    return s ? -v : v;
}

/* bfloat16: 8 exponent bits (bias 127), 7 mantissa bits. */
static float bf16_reference(uint16_t h)
{
    int s = h >> 15, e = (h >> 7) & 0xFF, m = h & 0x7F;
    float v;
    if (e == 0xFF)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexpf((float)m, -133);
    else
        v = ldexpf((float)(m + 128), e - 134);
    return s ? -v : v;
}

static uint32_t float_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* Every tensor of the safetensors file at `path` equals the model's copy, decoded from the raw
 * bytes here. Returns the number of tensors compared. */
static int compare_file_tensors(const mtla_model *model, const char *path)
{
    st_file f = st_read_path(path);
    int compared = 0;
    for (cJSON *c = f.header->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0)
            continue;
        const mtla_tensor *t = mtla_model_dir_tensor(model->dir, c->string);
        cr_assert_not_null(t, "tensor %s not loaded", c->string);
        const char *dtype = cJSON_GetObjectItemCaseSensitive(c, "dtype")->valuestring;
        uint64_t begin, end;
        offsets_of(&f, c->string, &begin, &end);
        size_t width = strcmp(dtype, "F32") == 0 ? 4 : 2;
        cr_assert_eq((end - begin) / width, t->count, "%s: element count", c->string);
        for (size_t i = 0; i < t->count; i++) {
            const unsigned char *b = f.data + begin + width * i;
            float want;
            if (width == 4) {
                uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                                (uint32_t)b[3] << 24;
                memcpy(&want, &bits, sizeof want);
            } else {
                uint16_t bits = (uint16_t)(b[0] | b[1] << 8);
                want = strcmp(dtype, "F16") == 0 ? f16_reference(bits) : bf16_reference(bits);
            }
            cr_assert_eq(float_bits(t->data[i]), float_bits(want), "%s[%zu]: %.9g, file has %.9g",
                         c->string, i, t->data[i], want);
        }
        compared++;
    }
    free(f.data);
    cJSON_Delete(f.header);
    return compared;
}

/* ---------------------------------------------------------------- the golden models */

typedef struct golden_case {
    const char *name;
    const char *description[3]; /* substrings of mtla_model_description */
    const char *stored;         /* dtype of its tensors */
    const char *files[3];       /* its tensor files */
} golden_case;

static const golden_case goldens[] = {
    {"transformer_mtla_s2", {"transformer 2x", "mtla s=2", NULL}, "F32", {"model.safetensors"}},
    {"transformer_mtla_s2_even", {"transformer", "mtla s=2", NULL}, "F16", {"model.safetensors"}},
    {"conformer_relpos_mtla_s3",
     {"conformer rel_pos", "mtla s=3", NULL},
     "BF16",
     {"model.safetensors"}},
    {"transformer_mtla_s1", {"transformer", "mtla s=1", NULL}, "F32", {"model.safetensors"}},
    {"transformer_mla", {"transformer", ", mla ", NULL}, "F32", {"model.safetensors"}},
    {"transformer_mha", {"transformer", ", mha ", NULL}, "F32", {"model.safetensors"}},
    {"conformer_abs_gqa",
     {"conformer abs", "gqa kv_heads=", NULL},
     "F32",
     {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}},
};

/* Parameters as fairseq counts them, from the files' headers: every tensor except BatchNorm
 * running statistics and global CMVN statistics. */
static int64_t count_parameters(const char *dir, const golden_case *g)
{
    int64_t total = 0;
    for (int k = 0; k < 3 && g->files[k]; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, g->files[k]);
        st_file f = st_read_path(path);
        for (cJSON *c = f.header->child; c; c = c->next) {
            if (strcmp(c->string, "__metadata__") == 0 || strstr(c->string, ".running_") ||
                strncmp(c->string, "frontend.cmvn.", 14) == 0)
                continue;
            int64_t n = 1;
            cJSON *dim;
            cJSON_ArrayForEach(dim, cJSON_GetObjectItemCaseSensitive(c, "shape")) n *=
                (int64_t)dim->valuedouble;
            total += n;
        }
        free(f.data);
        cJSON_Delete(f.header);
    }
    return total;
}

static void check_golden(const golden_case *g)
{
    if (!golden_present(g->name))
        cr_skip_test("golden model %s not generated yet (tools/golden/make_golden.py)", g->name);
    const char *dir = golden(g->name);
    mtla_model *model = open_ok(dir);
    const char *description = mtla_model_description(model);
    for (int i = 0; i < 3 && g->description[i]; i++)
        cr_expect(strstr(description, g->description[i]), "%s: description '%s' lacks '%s'",
                  g->name, description, g->description[i]);
    cr_expect(strstr(description, " parameters"), "%s: '%s'", g->name, description);

    const mtla_model_config *c = &model->dir->config;
    cr_expect_str_eq(mtla_model_source_language(model), c->languages.source);
    cr_expect_str_eq(mtla_model_target_language(model), c->languages.target);
    cr_expect_gt(strlen(mtla_model_source_language(model)), 0);
    cr_expect_gt(strlen(mtla_model_target_language(model)), 0);
    cr_expect_eq(mtla_model_vocab_size(model), c->vocab.size);
    cr_expect_str_eq(mtla_model_dir_piece(model->dir, c->vocab.unk), "<unk>");
    cr_expect_null(mtla_model_dir_piece(model->dir, c->vocab.size));
    cr_expect_null(mtla_model_dir_piece(model->dir, -1));

    int64_t params = count_parameters(dir, g);
    cr_expect_eq(model->dir->parameter_count, params, "%s: %lld parameters, the files hold %lld",
                 g->name, (long long)model->dir->parameter_count, (long long)params);
    cr_expect_gt(params, 10000);

    int compared = 0;
    for (int k = 0; k < 3 && g->files[k]; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, g->files[k]);
        compared += compare_file_tensors(model, path);
    }
    cr_expect_eq((size_t)compared, model->dir->tensor_count);
    for (size_t i = 0; i < model->dir->tensor_count; i++)
        cr_expect_str_eq(mtla_dtype_name(model->dir->tensors[i].stored), g->stored, "%s: %s",
                         g->name, model->dir->tensors[i].name);
    mtla_model_close(model);
}

Test(model_dir, golden_transformer_mtla_s2_loads)
{
    check_golden(&goldens[0]);
}

Test(model_dir, golden_transformer_mtla_s2_even_f16_loads_exactly)
{
    check_golden(&goldens[1]);
}

Test(model_dir, golden_conformer_relpos_mtla_s3_bf16_loads_exactly)
{
    check_golden(&goldens[2]);
}

Test(model_dir, golden_transformer_mtla_s1_loads)
{
    check_golden(&goldens[3]);
}

Test(model_dir, golden_transformer_mla_loads)
{
    check_golden(&goldens[4]);
}

Test(model_dir, golden_transformer_mha_loads)
{
    check_golden(&goldens[5]);
}

Test(model_dir, golden_conformer_abs_gqa_sharded_global_cmvn_loads)
{
    check_golden(&goldens[6]);
    mtla_model *model = open_ok(golden(goldens[6].name));
    cr_expect_eq(model->dir->config.frontend.cmvn, MTLA_CMVN_GLOBAL);
    const mtla_tensor *mean = mtla_model_dir_tensor(model->dir, "frontend.cmvn.mean");
    cr_assert_not_null(mean);
    cr_expect_eq(mean->count, (size_t)model->dir->config.frontend.fbank.num_mel_bins);
    mtla_model_close(model);
}

/* ---------------------------------------------------------------- conversions */

Test(model_dir, f16_conversion_is_exact_for_every_value)
{
    for (uint32_t h = 0; h <= 0xFFFF; h++) {
        float got = mtla_f16_to_f32((uint16_t)h), want = f16_reference((uint16_t)h);
        if (isnan(want)) {
            cr_assert(isnan(got), "0x%04x", h);
            cr_assert_eq(!!signbit(got), !!(h & 0x8000), "0x%04x: sign of NaN", h);
            /* The quiet bit and payload move to the top of the binary32 mantissa. */
            cr_assert_eq(float_bits(got) & 0x7FFFFF, (uint32_t)(h & 0x3FF) << 13, "0x%04x", h);
        } else {
            cr_assert_eq(float_bits(got), float_bits(want), "0x%04x: %a, expected %a", h, got,
                         want);
        }
    }
    /* Landmarks: smallest subnormal, largest subnormal, smallest normal, max, -0, inf. */
    cr_expect_eq(mtla_f16_to_f32(0x0001), ldexpf(1, -24));
    cr_expect_eq(mtla_f16_to_f32(0x03FF), ldexpf(1023, -24));
    cr_expect_eq(mtla_f16_to_f32(0x0400), ldexpf(1, -14));
    cr_expect_eq(mtla_f16_to_f32(0x7BFF), 65504.0f);
    cr_expect_eq(float_bits(mtla_f16_to_f32(0x8000)), 0x80000000u);
    cr_expect(isinf(mtla_f16_to_f32(0xFC00)) && mtla_f16_to_f32(0xFC00) < 0);
}

Test(model_dir, bf16_conversion_is_exact_for_every_value)
{
    for (uint32_t h = 0; h <= 0xFFFF; h++) {
        float got = mtla_bf16_to_f32((uint16_t)h), want = bf16_reference((uint16_t)h);
        if (isnan(want))
            cr_assert_eq(float_bits(got), h << 16, "0x%04x: NaN payload", h);
        else
            cr_assert_eq(float_bits(got), float_bits(want), "0x%04x: %a, expected %a", h, got,
                         want);
    }
}

Test(model_dir, convert_reads_unaligned_little_endian_bytes)
{
    /* 1.5f, -2.0f (F32), then F16 1.0 and BF16 -3.0 at an odd address. */
    const unsigned char raw[] = {0xAA, 0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0};
    float out[2];
    mtla_convert_to_f32(MTLA_DTYPE_F32, raw + 1, 2, out);
    cr_expect_eq(out[0], 1.5f);
    cr_expect_eq(out[1], -2.0f);
    const unsigned char half[] = {0xAA, 0x00, 0x3C, 0x40, 0xC0};
    mtla_convert_to_f32(MTLA_DTYPE_F16, half + 1, 1, out);
    cr_expect_eq(out[0], 1.0f);
    mtla_convert_to_f32(MTLA_DTYPE_BF16, half + 3, 1, out);
    cr_expect_eq(out[0], -3.0f);
}

/* The F32 golden, rewritten as BF16 (the top half of each float), loads as exactly those
 * truncated values. */
Test(model_dir, bf16_copy_of_a_model_loads_exactly)
{
    copy_golden(BASE);
    st_file f = st_read("model.safetensors");
    st_file g = {cJSON_CreateObject(), NULL, 0};
    for (cJSON *c = f.header->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0)
            continue;
        uint64_t begin, end;
        offsets_of(&f, c->string, &begin, &end);
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(c, "shape");
        double dims[MTLA_TENSOR_MAX_DIMS];
        int ndim = cJSON_GetArraySize(shape);
        for (int d = 0; d < ndim; d++)
            dims[d] = cJSON_GetArrayItem(shape, d)->valuedouble;
        size_t n = (size_t)(end - begin) / 4, at = g.size;
        add_tensor(&g, c->string, "BF16", dims, ndim, 2 * n);
        for (size_t i = 0; i < n; i++) {
            g.data[at + 2 * i] = f.data[begin + 4 * i + 2];
            g.data[at + 2 * i + 1] = f.data[begin + 4 * i + 3];
        }
    }
    free(f.data);
    cJSON_Delete(f.header);
    st_write("model.safetensors", g, 0);
    mtla_model *model = open_ok(work);
    cr_expect_eq(compare_file_tensors(model, in_work("model.safetensors")),
                 (int)model->dir->tensor_count);
    cr_expect_eq(model->dir->tensors[0].stored, MTLA_DTYPE_BF16);
    mtla_model_close(model);
}

Test(model_dir, aligned_f32_is_used_in_place)
{
    copy_golden(BASE);
    st_file f = st_read("model.safetensors");
    st_write("model.safetensors", f, 0); /* data at a multiple of 8: F32 tensors aligned */
    mtla_model *model = open_ok(work);
    for (size_t i = 0; i < model->dir->tensor_count; i++) {
        const mtla_tensor *t = &model->dir->tensors[i];
        cr_expect_null(t->owned, "%s copied although aligned", t->name);
        cr_expect_eq((uintptr_t)t->data % 4, 0);
    }
    mtla_model_close(model);
}

Test(model_dir, misaligned_f32_is_copied)
{
    copy_golden(BASE);
    st_file f = st_read("model.safetensors");
    st_write("model.safetensors", f, 1); /* data at an odd offset: all misaligned */
    mtla_model *model = open_ok(work);
    for (size_t i = 0; i < model->dir->tensor_count; i++) {
        const mtla_tensor *t = &model->dir->tensors[i];
        cr_expect_not_null(t->owned, "%s used in place although misaligned", t->name);
        cr_expect_eq((uintptr_t)t->data % 4, 0);
    }
    cr_expect_eq(compare_file_tensors(model, in_work("model.safetensors")),
                 (int)model->dir->tensor_count);
    mtla_model_close(model);
}

Test(model_dir, sharded_copy_loads_the_same_tensors)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    mtla_model *model = open_ok(work);
    int compared =
        compare_file_tensors(model, in_work(SHARD1)) + compare_file_tensors(model, in_work(SHARD2));
    cr_expect_eq(compared, (int)model->dir->tensor_count);
    mtla_model_close(model);
}

/* ---------------------------------------------------------------- the directory */

Test(model_dir, bad_arguments_and_paths)
{
    mtla_model *model;
    mtla_error err;
    cr_expect_eq(mtla_model_open(golden(BASE), NULL, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(mtla_model_open(NULL, &model, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect_null(model);
    cr_expect_eq(mtla_model_open(golden(BASE), &model, NULL), MTLA_OK); /* err may be NULL */
    mtla_model_close(model);
    mtla_model_close(NULL);
    cr_expect_str_eq(mtla_model_description(NULL), "");
    cr_expect_eq(mtla_model_vocab_size(NULL), 0);
    expect_failure("/nonexistent/mtla-model", MTLA_ERR_IO, "/nonexistent/mtla-model", "not found");
    char file[4096];
    snprintf(file, sizeof file, "%s/config.json", golden(BASE));
    expect_failure(file, MTLA_ERR_IO, "not a directory", NULL);
}

/* ---------------------------------------------------------------- hostile config.json */

Test(model_dir, config_missing)
{
    copy_golden(BASE);
    remove_file("config.json");
    expect_work_failure(MTLA_ERR_IO, "config.json not found", NULL);
}

Test(model_dir, config_not_json)
{
    copy_golden(BASE);
    write_text("config.json", "{\"format\": \"mtla-st\", \"format_version\": 1,");
    expect_work_failure(MTLA_ERR_FORMAT, "config.json is not valid JSON", NULL);
}

Test(model_dir, config_trailing_data)
{
    copy_golden(BASE);
    cJSON *root = config_read();
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t n = strlen(text);
    text = realloc(text, n + 8);
    memcpy(text + n, "\n{}", 4);
    write_text("config.json", text);
    free(text);
    expect_work_failure(MTLA_ERR_FORMAT, "config.json is not valid JSON", "data after");
}

Test(model_dir, config_unknown_key)
{
    copy_golden(BASE);
    config_set("decoder.attention", "down_rat", cJSON_CreateNumber(2));
    expect_work_failure(MTLA_ERR_FORMAT, "unknown key decoder.attention.down_rat", NULL);
}

Test(model_dir, config_unknown_key_in_every_section)
{
    const char *sections[] = {"frontend", "encoder",    "encoder.subsampler", "decoder",
                              "vocab",    "generation", "languages"};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
        copy_golden(BASE);
        config_set(sections[i], "typo", cJSON_CreateTrue());
        char needle[96];
        snprintf(needle, sizeof needle, "unknown key %s.typo", sections[i]);
        expect_work_failure(MTLA_ERR_FORMAT, needle, NULL);
        remove_work();
    }
}

Test(model_dir, config_unknown_top_level_key)
{
    copy_golden(BASE);
    config_set("", "tokenizer", cJSON_CreateString("spm"));
    expect_work_failure(MTLA_ERR_FORMAT, "unknown key tokenizer", NULL);
}

Test(model_dir, config_key_twice)
{
    copy_golden(BASE);
    cJSON *root = config_read();
    cJSON_AddItemToObject(object_at(root, "vocab"), "bos", cJSON_CreateNumber(0));
    config_write(root);
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.bos appears twice", NULL);
}

Test(model_dir, config_missing_key)
{
    copy_golden(BASE);
    config_remove("vocab", "eos");
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.eos is missing", NULL);
}

Test(model_dir, config_wrong_type)
{
    copy_golden(BASE);
    config_set("encoder", "layers", cJSON_CreateString("2"));
    expect_work_failure(MTLA_ERR_FORMAT, "encoder.layers must be a 32-bit integer", "\"2\"");
}

Test(model_dir, config_fractional_integer)
{
    copy_golden(BASE);
    config_set("decoder", "ffn_dim", cJSON_CreateNumber(64.5));
    expect_work_failure(MTLA_ERR_FORMAT, "decoder.ffn_dim must be a 32-bit integer", "64.5");
}

Test(model_dir, config_unknown_enum_value)
{
    copy_golden(BASE);
    config_set("decoder.attention", "type", cJSON_CreateString("flash"));
    expect_work_failure(MTLA_ERR_FORMAT, "decoder.attention.type must be one of", "\"flash\"");
}

Test(model_dir, config_unknown_cmvn)
{
    copy_golden(BASE);
    config_set("frontend", "cmvn", cJSON_CreateString("Global"));
    expect_work_failure(MTLA_ERR_FORMAT, "frontend.cmvn", "\"Global\"");
}

Test(model_dir, config_format_version_2)
{
    copy_golden(BASE);
    config_set("", "format_version", cJSON_CreateNumber(2));
    expect_work_failure(MTLA_ERR_UNSUPPORTED, "format_version 2 is not supported", NULL);
}

Test(model_dir, config_format_name)
{
    copy_golden(BASE);
    config_set("", "format", cJSON_CreateString("mtla"));
    expect_work_failure(MTLA_ERR_FORMAT, "format must be \"mtla-st\"", NULL);
}

Test(model_dir, config_key_not_applying_to_type)
{
    copy_golden(BASE);
    config_set("decoder.attention", "type", cJSON_CreateString("mla"));
    expect_work_failure(MTLA_ERR_FORMAT, "decoder.attention.down_rate does not apply", "\"mla\"");
}

Test(model_dir, config_value_out_of_range)
{
    copy_golden(BASE);
    config_set("decoder.attention", "down_rate", cJSON_CreateNumber(0));
    expect_work_failure(MTLA_ERR_FORMAT, "decoder.attention.down_rate must be an integer >= 1",
                        NULL);
}

Test(model_dir, config_d_model_not_divisible_by_heads)
{
    copy_golden(BASE);
    config_set("encoder", "heads", cJSON_CreateNumber(5));
    expect_work_failure(MTLA_ERR_FORMAT, "encoder.d_model (48) must be divisible by encoder.heads",
                        NULL);
}

Test(model_dir, config_vocab_ids_not_distinct)
{
    copy_golden(BASE);
    config_set("vocab", "unk", cJSON_CreateNumber(2));
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.bos, vocab.pad, vocab.eos and vocab.unk", NULL);
}

Test(model_dir, config_kernel_size_even)
{
    copy_golden(BASE);
    cJSON *root = config_read();
    cJSON *kernels =
        cJSON_GetObjectItemCaseSensitive(object_at(root, "encoder.subsampler"), "kernel_sizes");
    cJSON_ReplaceItemInArray(kernels, 1, cJSON_CreateNumber(4));
    config_write(root);
    expect_work_failure(MTLA_ERR_FORMAT, "encoder.subsampler.kernel_sizes[1]", "(got 4)");
}

/* The attention kernels keep a per-head accumulator of MTLA_OPS_MAX_HEAD_DIM values. */
Test(model_dir, config_latent_rank_above_kernel_limit)
{
    copy_golden(BASE);
    config_set("decoder.attention", "kv_lora_rank", cJSON_CreateNumber(4097));
    expect_work_failure(MTLA_ERR_FORMAT, "decoder.attention.kv_lora_rank", "4096");
}

Test(model_dir, config_head_dims_above_kernel_limit)
{
    const char *keys[] = {"qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"};
    for (int i = 0; i < 3; i++) {
        copy_golden(BASE);
        config_set("decoder.attention", keys[i], cJSON_CreateNumber(4098));
        char path[64];
        snprintf(path, sizeof path, "decoder.attention.%s", keys[i]);
        expect_work_failure(MTLA_ERR_FORMAT, path, "4096");
        remove_work();
    }
    /* mha: head_dim */
    copy_golden(BASE);
    cJSON *root = config_read();
    cJSON *att = object_at(root, "decoder.attention");
    const char *drop[] = {"kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                          "v_head_dim",   "down_rate",        "hyper_rank"};
    for (int i = 0; i < 6; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(att, drop[i]);
    cJSON_ReplaceItemInObjectCaseSensitive(att, "type", cJSON_CreateString("mha"));
    cJSON_AddNumberToObject(att, "kv_heads", 4);
    cJSON_AddNumberToObject(att, "head_dim", 4098);
    config_write(root);
    expect_work_failure(MTLA_ERR_FORMAT, "decoder.attention.head_dim", "4096");
}

Test(model_dir, config_latent_rank_at_kernel_limit_passes_the_config)
{
    copy_golden(BASE);
    config_set("decoder.attention", "kv_lora_rank", cJSON_CreateNumber(4096));
    /* The config is accepted; the tensors then disagree with it. */
    expect_work_failure(MTLA_ERR_FORMAT, "has shape", "config needs");
}

Test(model_dir, config_notes_are_free_form_and_transformer_ignores_conv_kernel)
{
    copy_golden(BASE);
    cJSON *notes = cJSON_CreateObject();
    cJSON_AddNumberToObject(notes, "anything", -1);
    cJSON_AddItemToObject(notes, "nested", cJSON_CreateArray());
    config_set("", "notes", notes);
    config_set("encoder", "conv_kernel", cJSON_CreateNumber(0));
    mtla_model *model = open_ok(work);
    cr_expect_eq(model->dir->config.encoder.conv_kernel, 0);
    mtla_model_close(model);
    config_remove("encoder", "conv_kernel");
    model = open_ok(work);
    mtla_model_close(model);
    config_set("encoder", "conv_kernel", cJSON_CreateString("31"));
    expect_work_failure(MTLA_ERR_FORMAT, "encoder.conv_kernel must be a 32-bit integer", NULL);
}

Test(model_dir, config_conformer_conv_kernel_even_or_missing)
{
    copy_golden("conformer_abs_gqa");
    config_set("encoder", "conv_kernel", cJSON_CreateNumber(4));
    expect_work_failure(MTLA_ERR_FORMAT, "encoder.conv_kernel must be an odd integer", "(got 4)");
    config_remove("encoder", "conv_kernel");
    expect_work_failure(MTLA_ERR_FORMAT, "encoder.conv_kernel is missing", NULL);
}

Test(model_dir, config_positions_do_not_fit_the_encoder)
{
    copy_golden(BASE);
    config_set("encoder", "positions", cJSON_CreateString("rel_pos"));
    expect_work_failure(MTLA_ERR_FORMAT, "encoder.positions must be \"sinusoidal\"", NULL);
}

Test(model_dir, config_is_a_fifo)
{
    copy_golden(BASE);
    remove_file("config.json");
    cr_assert_eq(mkfifo(in_work("config.json"), 0600), 0, "mkfifo: %s", strerror(errno));
    /* Opening must neither block on the FIFO nor read from it. */
    expect_work_failure(MTLA_ERR_IO, "config.json is not a regular file", NULL);
}

/* ---------------------------------------------------------------- hostile vocab.txt, tokenizer */

Test(model_dir, vocab_line_count_differs)
{
    copy_golden(BASE);
    size_t size;
    unsigned char *text = slurp(in_work("vocab.txt"), &size);
    cr_assert(size > 2 && text[size - 1] == '\n');
    size_t cut = size - 1;
    while (cut > 0 && text[cut - 1] != '\n')
        cut--;
    write_bytes(in_work("vocab.txt"), text, cut); /* the last line dropped */
    free(text);
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.txt has 156 lines", "vocab.size is 157");
}

Test(model_dir, vocab_empty_line)
{
    copy_golden(BASE);
    size_t size;
    unsigned char *text = slurp(in_work("vocab.txt"), &size);
    unsigned char *out = malloc(size + 1);
    cr_assert(out);
    /* A blank line after line 1, and the last line dropped to keep the count. */
    size_t first = (size_t)((unsigned char *)memchr(text, '\n', size) - text) + 1;
    memcpy(out, text, first);
    out[first] = '\n';
    size_t cut = size - 1;
    while (text[cut - 1] != '\n')
        cut--;
    memcpy(out + first + 1, text + first, cut - first);
    write_bytes(in_work("vocab.txt"), out, cut + 1);
    free(out);
    free(text);
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.txt line 2 is empty", NULL);
}

Test(model_dir, vocab_crlf_and_bad_utf8)
{
    copy_golden(BASE);
    size_t size;
    unsigned char *text = slurp(in_work("vocab.txt"), &size);
    unsigned char *nl = memchr(text, '\n', size);
    nl[-1] = '\r';
    write_bytes(in_work("vocab.txt"), text, size);
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.txt line 1", "carriage return");
    nl[-1] = 0xC0; /* an overlong lead byte */
    write_bytes(in_work("vocab.txt"), text, size);
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.txt line 1 is not valid UTF-8", NULL);
    free(text);
}

Test(model_dir, vocab_byte_order_mark_and_nul)
{
    copy_golden(BASE);
    size_t size;
    unsigned char *text = slurp(in_work("vocab.txt"), &size);
    unsigned char *out = malloc(size + 3);
    cr_assert(out);
    memcpy(out, "\xEF\xBB\xBF", 3);
    memcpy(out + 3, text, size);
    write_bytes(in_work("vocab.txt"), out, size + 3);
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.txt starts with a byte order mark", NULL);
    text[1] = '\0';
    write_bytes(in_work("vocab.txt"), text, size);
    expect_work_failure(MTLA_ERR_FORMAT, "vocab.txt line 1 contains a NUL byte", NULL);
    free(out);
    free(text);
}

Test(model_dir, vocab_missing)
{
    copy_golden(BASE);
    remove_file("vocab.txt");
    expect_work_failure(MTLA_ERR_IO, "vocab.txt not found", NULL);
}

Test(model_dir, tokenizer_missing)
{
    copy_golden(BASE);
    remove_file("tokenizer.model");
    expect_work_failure(MTLA_ERR_IO, "tokenizer.model not found", NULL);
}

Test(model_dir, tokenizer_empty)
{
    copy_golden(BASE);
    write_text("tokenizer.model", "");
    expect_work_failure(MTLA_ERR_FORMAT, "tokenizer.model is empty", NULL);
}

/* ---------------------------------------------------------------- hostile safetensors */

#define ST "model.safetensors"
#define EMBED "decoder.embed_tokens.weight"                   /* [157, 32] in BASE */
#define KV_NORM_W "decoder.layers.0.self_attn.kv_norm.weight" /* [32] */
#define KV_NORM_B "decoder.layers.0.self_attn.kv_norm.bias"   /* [32] */

Test(model_dir, tensors_missing)
{
    copy_golden(BASE);
    remove_file(ST);
    expect_work_failure(MTLA_ERR_IO, "neither model.safetensors nor", NULL);
}

Test(model_dir, tensors_in_a_fifo_or_directory)
{
    copy_golden(BASE);
    remove_file(ST);
    cr_assert_eq(mkfifo(in_work(ST), 0600), 0, "mkfifo: %s", strerror(errno));
    expect_work_failure(MTLA_ERR_IO, "model.safetensors' is not a regular file", NULL);
    remove_file(ST);
    cr_assert_eq(mkdir(in_work(ST), 0700), 0);
    expect_work_failure(MTLA_ERR_IO, "model.safetensors' is not a regular file", NULL);
    cr_assert_eq(rmdir(in_work(ST)), 0);
}

Test(model_dir, header_shorter_than_length_field)
{
    copy_golden(BASE);
    write_text(ST, "\x10\x00\x00");
    expect_work_failure(MTLA_ERR_TRUNCATED, "model.safetensors", "too short");
}

Test(model_dir, header_length_past_end_of_file)
{
    copy_golden(BASE);
    write_raw_safetensors(ST, 4096, "{\"__metadata__\": {}}");
    expect_work_failure(MTLA_ERR_TRUNCATED, "header length 4096 runs past the end", NULL);
}

Test(model_dir, header_length_over_100_mib)
{
    copy_golden(BASE);
    write_raw_safetensors(ST, MTLA_SAFETENSORS_MAX_HEADER + 1, "{}");
    expect_work_failure(MTLA_ERR_FORMAT, "header length 104857601", "100 MiB");
    write_raw_safetensors(ST, UINT64_MAX, "{}"); /* would wrap 8 + N */
    expect_work_failure(MTLA_ERR_FORMAT, "header length", "over the limit");
}

Test(model_dir, header_length_zero)
{
    copy_golden(BASE);
    write_raw_safetensors(ST, 0, "{}");
    expect_work_failure(MTLA_ERR_FORMAT, "header length is 0", NULL);
}

Test(model_dir, header_not_json)
{
    copy_golden(BASE);
    write_raw_safetensors(ST, 11, "{\"a\": [1, 2");
    expect_work_failure(MTLA_ERR_FORMAT, "model.safetensors: header is not valid JSON", NULL);
    write_raw_safetensors(ST, 8, "\xFF\xFE{}    ");
    expect_work_failure(MTLA_ERR_FORMAT, "header is not valid UTF-8", NULL);
    write_raw_safetensors(ST, 6, "{}  x ");
    expect_work_failure(MTLA_ERR_FORMAT, "header is not valid JSON", "data after");
}

Test(model_dir, header_not_an_object)
{
    copy_golden(BASE);
    write_raw_safetensors(ST, 2, "[]");
    expect_work_failure(MTLA_ERR_FORMAT, "header is not a JSON object", NULL);
    write_raw_safetensors(ST, 12, "{\"x\": 5}    ");
    expect_work_failure(MTLA_ERR_FORMAT, "tensor 'x' is not described by an object", NULL);
}

Test(model_dir, offsets_begin_after_end)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    uint64_t begin, end;
    offsets_of(&f, EMBED, &begin, &end);
    set_offsets(&f, EMBED, (double)end, (double)begin);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, EMBED, "begin after end");
}

Test(model_dir, offsets_outside_data_area)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    double size = (double)f.size;
    set_offsets(&f, KV_NORM_W, size - 64, size + 64);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_TRUNCATED, KV_NORM_W, "beyond the");
}

Test(model_dir, offsets_beyond_2_to_the_53)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    set_offsets(&f, KV_NORM_W, 18446744073709551616.0, 18446744073709551616.0 + 128);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, KV_NORM_W, "data_offsets");
}

Test(model_dir, offsets_do_not_match_shape)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    uint64_t begin, end;
    offsets_of(&f, EMBED, &begin, &end);
    set_offsets(&f, EMBED, (double)begin, (double)end - 4);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, EMBED, "needs 20096");
}

Test(model_dir, dtype_does_not_match_size)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    set_dtype(&f, KV_NORM_B, "F16");
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, KV_NORM_B, "x F16 needs 64");
}

Test(model_dir, tensors_overlap)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    uint64_t begin, end;
    offsets_of(&f, KV_NORM_W, &begin, &end);
    set_offsets(&f, KV_NORM_B, (double)begin + 4, (double)end + 4);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, "overlap", KV_NORM_B);
}

Test(model_dir, data_truncated)
{
    copy_golden(BASE);
    size_t size;
    unsigned char *bytes = slurp(in_work(ST), &size);
    write_bytes(in_work(ST), bytes, size - 100);
    free(bytes);
    expect_work_failure(MTLA_ERR_TRUNCATED, "beyond the", "truncated");
}

Test(model_dir, shape_negative_dimension)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    const double dims[] = {-157, -32};
    set_shape(&f, EMBED, dims, 2);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, EMBED, "non-negative integers");
}

Test(model_dir, shape_product_overflows)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    /* 2^32 * 2^32 wraps to 0 in 64 bits, which would match an empty span. */
    const double dims[] = {4294967296.0, 4294967296.0};
    set_shape(&f, KV_NORM_W, dims, 2);
    uint64_t begin, end;
    offsets_of(&f, KV_NORM_W, &begin, &end);
    set_offsets(&f, KV_NORM_W, (double)begin, (double)begin);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, KV_NORM_W, "too large");
    /* A single dimension above 2^53 cannot come exactly through JSON doubles. */
    remove_work();
    copy_golden(BASE);
    f = st_read(ST);
    const double dims2[] = {4611686018427387904.0};
    set_shape(&f, KV_NORM_W, dims2, 1);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, KV_NORM_W, "non-negative integers");
    /* 2^52 * 2^52 * 1024 overflows 64 bits in the middle of the product. */
    f = st_read(ST);
    const double dims3[] = {4503599627370496.0, 4503599627370496.0, 1024.0};
    set_shape(&f, KV_NORM_W, dims3, 3);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, KV_NORM_W, "too large");
}

Test(model_dir, shape_too_many_dimensions)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    const double dims[] = {32, 1, 1, 1, 1, 1, 1, 1, 1};
    set_shape(&f, KV_NORM_W, dims, 9);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_UNSUPPORTED, KV_NORM_W, "9 dimensions");
}

Test(model_dir, dtype_unknown)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    set_dtype(&f, EMBED, "F64");
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_UNSUPPORTED, EMBED, "dtype F64");
}

Test(model_dir, entry_unknown_key)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    cJSON_AddStringToObject(entry(&f, EMBED), "layout", "row_major");
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, EMBED, "unknown key 'layout'");
}

Test(model_dir, tensor_wrong_shape)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    const double dims[] = {32, 157}; /* transposed: same bytes, wrong shape */
    set_shape(&f, EMBED, dims, 2);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, "tensor '" EMBED "' has shape [32, 157]",
                        "config needs [157, 32]");
}

Test(model_dir, tensor_wrong_rank)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    const double dims[] = {32, 1};
    set_shape(&f, KV_NORM_B, dims, 2);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, KV_NORM_B "' has shape [32, 1]", "config needs [32]");
}

Test(model_dir, tensor_missing)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    cJSON_DeleteItemFromObjectCaseSensitive(f.header, "decoder.layers.1.self_attn.wkv_b.weight");
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, "'decoder.layers.1.self_attn.wkv_b.weight' is missing",
                        NULL);
}

Test(model_dir, tensor_extra)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    const double dims[] = {4};
    add_tensor(&f, "decoder.layers.0.self_attn.q_proj.bias", "F32", dims, 1, 16);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT,
                        "unexpected tensor 'decoder.layers.0.self_attn.q_proj.bias'", NULL);
}

Test(model_dir, tensor_twice_in_one_header)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    const double dims[] = {32};
    add_tensor(&f, KV_NORM_B, "F32", dims, 1, 128);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, KV_NORM_B, "appears twice");
}

Test(model_dir, metadata_not_strings)
{
    copy_golden(BASE);
    st_file f = st_read(ST);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(f.header, "__metadata__");
    cr_assert(meta);
    cJSON_AddNumberToObject(meta, "step", 3);
    st_write(ST, f, 0);
    expect_work_failure(MTLA_ERR_FORMAT, "__metadata__ values must be strings", "step");
}

/* ---------------------------------------------------------------- hostile shards and index */

Test(model_dir, shard_duplicate_tensor_across_shards)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    st_file f = st_read(SHARD2);
    const double dims[] = {1};
    add_tensor(&f, first, "F32", dims, 1, 4);
    st_write(SHARD2, f, 0);
    char needle[256];
    snprintf(needle, sizeof needle, "tensor '%s' is in both " SHARD1 " and " SHARD2, first);
    expect_work_failure(MTLA_ERR_FORMAT, needle, NULL);
}

Test(model_dir, index_points_outside_the_directory)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    index_set(first, "../" SHARD1);
    expect_work_failure(MTLA_ERR_FORMAT, "'../" SHARD1 "', not a shard name", first);
    index_set(first, "/etc/passwd");
    expect_work_failure(MTLA_ERR_FORMAT, "'/etc/passwd', not a shard name", NULL);
    index_set(first, "model-00001-of-00002.safetensors/../../x");
    expect_work_failure(MTLA_ERR_FORMAT, "not a shard name", NULL);
}

Test(model_dir, index_inconsistent_shard_names)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    index_set(first, "model-00003-of-00002.safetensors");
    expect_work_failure(MTLA_ERR_FORMAT, "model-00003-of-00002.safetensors", "not a shard name");
    index_set(first, "model-00001-of-00003.safetensors");
    expect_work_failure(MTLA_ERR_FORMAT, "with the same NNNNN", NULL);
}

Test(model_dir, index_names_missing_shard)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    remove_file(SHARD2);
    expect_work_failure(MTLA_ERR_IO, "shard " SHARD2, "not found");
}

Test(model_dir, index_maps_tensor_to_wrong_shard)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    index_set(first, SHARD2);
    expect_work_failure(MTLA_ERR_FORMAT, first, "but it is in " SHARD1);
}

Test(model_dir, index_lists_absent_tensor)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    index_set("decoder.layers.0.self_attn.wq.bias", SHARD1);
    expect_work_failure(MTLA_ERR_FORMAT, "'decoder.layers.0.self_attn.wq.bias'",
                        "which does not hold it");
}

Test(model_dir, index_omits_a_tensor)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    size_t size;
    unsigned char *text = slurp(in_work(MTLA_SAFETENSORS_INDEX), &size);
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    free(text);
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "weight_map"),
                                            second);
    char *out = cJSON_Print(root);
    write_text(MTLA_SAFETENSORS_INDEX, out);
    free(out);
    cJSON_Delete(root);
    expect_work_failure(MTLA_ERR_FORMAT, second, "is not listed in " MTLA_SAFETENSORS_INDEX);
}

Test(model_dir, index_not_json_or_empty)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    write_text(MTLA_SAFETENSORS_INDEX, "{\"weight_map\": ");
    expect_work_failure(MTLA_ERR_FORMAT, MTLA_SAFETENSORS_INDEX, "not valid JSON");
    write_text(MTLA_SAFETENSORS_INDEX, "{\"weight_map\": {}}");
    expect_work_failure(MTLA_ERR_FORMAT, "weight_map is empty", NULL);
    write_text(MTLA_SAFETENSORS_INDEX, "{\"weights\": {}}");
    expect_work_failure(MTLA_ERR_FORMAT, "unknown key 'weights'", NULL);
    write_text(MTLA_SAFETENSORS_INDEX, "{\"weight_map\": {\"x\": 3}}");
    expect_work_failure(MTLA_ERR_FORMAT, "tensor 'x' maps to a non-string", NULL);
}

Test(model_dir, shard_with_damaged_header_is_named)
{
    copy_golden(BASE);
    char first[128], second[128];
    shard_work(first, second);
    st_file f = st_read(SHARD2);
    set_dtype(&f, second, "I8");
    st_write(SHARD2, f, 0);
    expect_work_failure(MTLA_ERR_UNSUPPORTED, SHARD2 ": tensor '", "dtype I8");
}
