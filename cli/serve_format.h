/* The bodies mtla-st serve answers with, in the shapes OpenAI-style audio clients parse
 * (docs/serve.md):
 *   json          {"text": ...}
 *   text          the text and a newline
 *   srt, vtt      subtitles, one cue per utterance (cli/output.c writes them, as for the CLI)
 *   verbose_json  {"task", "language", "duration", "text", "segments": [{"id", "seek", "start",
 *                 "end", "text", "tokens", "temperature", "avg_logprob"}]}
 *   errors        {"error": {"message", "type", "param", "code"}}
 * Every function returns a malloc'ed, NUL-terminated body (its length in *size), or NULL when
 * memory runs out. */
#ifndef MTLA_CLI_SERVE_FORMAT_H
#define MTLA_CLI_SERVE_FORMAT_H

#include <stddef.h>

#include "mtla-st.h"

typedef enum serve_format {
    SERVE_JSON = 0,
    SERVE_TEXT,
    SERVE_SRT,
    SERVE_VTT,
    SERVE_VERBOSE_JSON
} serve_format;

/* "json" -> SERVE_JSON ...; -1 for an unknown name. */
int serve_format_parse(const char *name);
/* The Content-Type of a format's bodies. */
const char *serve_format_content_type(serve_format format);
/* Whether a format reports utterances (srt, vtt, verbose_json): the input is cut where the
 * voice activity detector finds pauses, as `mtla-st --segment`; json and text translate it
 * whole, as `mtla-st FILE`. */
int serve_format_segmented(serve_format format);

/* One translated stretch of the input: seconds from its start, the text, its score. */
typedef struct serve_record {
    double start, end;
    char *text;
    float score;
} serve_record;

typedef struct serve_records {
    serve_record *items;
    size_t count, capacity;
} serve_records;

/* An output_record_fn (cli/output.h) that appends to a serve_records. */
int serve_records_add(void *records, double start, double end, const char *text, float score);
void serve_records_free(serve_records *records);

/* A translation's body. `task` is "translate" or "transcribe" (the endpoint), `language` the
 * model's target language, `duration` the input's length in seconds. */
char *serve_format_result(serve_format format, const serve_records *records, const char *task,
                          const char *language, double duration, size_t *size);

/* An error body; `type` is OpenAI's error type, e.g. "invalid_request_error". */
char *serve_format_error(const char *message, const char *type, size_t *size);

/* GET /v1/models: the one model, `id`, with its description and languages. */
char *serve_format_models(const char *id, const mtla_model *model, size_t *size);

#endif
