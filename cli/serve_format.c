#include "serve_format.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

static const char *const format_names[] = {"json", "text", "srt", "vtt", "verbose_json"};

int serve_format_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof format_names / sizeof format_names[0]); i++)
        if (strcmp(name, format_names[i]) == 0)
            return i;
    return -1;
}

const char *serve_format_content_type(serve_format format)
{
    switch (format) {
    case SERVE_TEXT:
    case SERVE_SRT: return "text/plain; charset=utf-8";
    case SERVE_VTT: return "text/vtt; charset=utf-8";
    default: return "application/json";
    }
}

int serve_format_segmented(serve_format format)
{
    return format == SERVE_SRT || format == SERVE_VTT || format == SERVE_VERBOSE_JSON;
}

int serve_records_add(void *user, double start, double end, const char *text, float score)
{
    serve_records *r = user;
    if (r->count == r->capacity) {
        size_t capacity = r->capacity ? 2 * r->capacity : 16;
        serve_record *grown = realloc(r->items, capacity * sizeof *grown);
        if (!grown)
            return -1;
        r->items = grown;
        r->capacity = capacity;
    }
    char *copy = strdup(text);
    if (!copy)
        return -1;
    r->items[r->count++] = (serve_record){start, end, copy, score};
    return 0;
}

void serve_records_free(serve_records *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->items[i].text);
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* cJSON prints numbers with up to 17 digits: times are rounded to milliseconds first. */
static double milliseconds(double seconds)
{
    return round(seconds * 1000.0) / 1000.0;
}

static char *print_json(cJSON *root, size_t *size)
{
    char *body = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (body)
        *size = strlen(body);
    return body;
}

/* The records' texts joined by spaces (a whole input has one record). */
static char *joined_text(const serve_records *r)
{
    size_t length = 1;
    for (size_t i = 0; i < r->count; i++)
        length += strlen(r->items[i].text) + 1;
    char *text = malloc(length), *p = text;
    if (!text)
        return NULL;
    *p = '\0';
    for (size_t i = 0; i < r->count; i++) {
        if (!*r->items[i].text)
            continue;
        if (p > text)
            *p++ = ' ';
        size_t n = strlen(r->items[i].text);
        memcpy(p, r->items[i].text, n + 1);
        p += n;
    }
    return text;
}

static char *json_result(serve_format format, const serve_records *r, const char *task,
                         const char *language, double duration, size_t *size)
{
    char *text = joined_text(r);
    if (!text)
        return NULL;
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && format == SERVE_VERBOSE_JSON) {
        ok = cJSON_AddStringToObject(root, "task", task) &&
             cJSON_AddStringToObject(root, "language", language) &&
             cJSON_AddNumberToObject(root, "duration", milliseconds(duration));
    }
    ok = ok && cJSON_AddStringToObject(root, "text", text);
    if (ok && format == SERVE_VERBOSE_JSON) {
        cJSON *segments = cJSON_AddArrayToObject(root, "segments");
        ok = segments != NULL;
        for (size_t i = 0; ok && i < r->count; i++) {
            const serve_record *rec = &r->items[i];
            cJSON *s = cJSON_CreateObject();
            ok = s && cJSON_AddItemToArray(segments, s);
            /* avg_logprob is the translation's length-normalised log-probability (with the
             * default length penalty 1, the mean over its tokens); decoding is beam search,
             * never sampling, so temperature is 0. */
            ok = ok && cJSON_AddNumberToObject(s, "id", (double)i) &&
                 cJSON_AddNumberToObject(s, "start", milliseconds(rec->start)) &&
                 cJSON_AddNumberToObject(s, "end", milliseconds(rec->end)) &&
                 cJSON_AddStringToObject(s, "text", rec->text) &&
                 cJSON_AddNumberToObject(s, "temperature", 0.0) &&
                 (isfinite(rec->score) ? cJSON_AddNumberToObject(s, "avg_logprob", rec->score)
                                       : cJSON_AddNullToObject(s, "avg_logprob"));
        }
    }
    free(text);
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_json(root, size);
}

/* text, srt and vtt through the CLI's writer, into memory. */
static char *written_result(serve_format format, const serve_records *r, size_t *size)
{
    output_format of = format == SERVE_SRT ? FORMAT_SRT : format == SERVE_VTT ? FORMAT_VTT
                                                                              : FORMAT_TXT;
    char *body = NULL;
    FILE *f = open_memstream(&body, size);
    if (!f)
        return NULL;
    output_writer w;
    int failed = output_begin(&w, f, of, 0, "") != 0;
    for (size_t i = 0; !failed && i < r->count; i++)
        failed = output_record(&w, r->items[i].start, r->items[i].end, r->items[i].text,
                               r->items[i].score) != 0;
    failed |= fclose(f) != 0;
    if (failed) {
        free(body);
        return NULL;
    }
    return body;
}

char *serve_format_result(serve_format format, const serve_records *records, const char *task,
                          const char *language, double duration, size_t *size)
{
    if (format == SERVE_JSON || format == SERVE_VERBOSE_JSON)
        return json_result(format, records, task, language, duration, size);
    return written_result(format, records, size);
}

char *serve_format_error(const char *message, const char *type, size_t *size)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *error = root ? cJSON_AddObjectToObject(root, "error") : NULL;
    if (!error || !cJSON_AddStringToObject(error, "message", message) ||
        !cJSON_AddStringToObject(error, "type", type) || !cJSON_AddNullToObject(error, "param") ||
        !cJSON_AddNullToObject(error, "code")) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_json(root, size);
}

char *serve_format_models(const char *id, const mtla_model *model, size_t *size)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = ok ? cJSON_AddArrayToObject(root, "data") : NULL;
    cJSON *m = data ? cJSON_CreateObject() : NULL;
    ok = m && cJSON_AddItemToArray(data, m);
    ok = ok && cJSON_AddStringToObject(m, "id", id) &&
         cJSON_AddStringToObject(m, "object", "model") &&
         cJSON_AddNumberToObject(m, "created", 0) &&
         cJSON_AddStringToObject(m, "owned_by", "mtla-st") &&
         cJSON_AddStringToObject(m, "description", mtla_model_description(model)) &&
         cJSON_AddStringToObject(m, "source_language", mtla_model_source_language(model)) &&
         cJSON_AddStringToObject(m, "target_language", mtla_model_target_language(model));
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_json(root, size);
}
