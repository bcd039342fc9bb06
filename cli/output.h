/* Result formats of the translate command: one record per translated segment.
 *   txt    the text, one line per record ("start<TAB>end<TAB>text" with timestamps on)
 *   jsonl  {"file", "start", "end", "text", "score"} per line
 *   srt    SubRip cues; vtt  WebVTT cues (a header, then cues)
 * Times are seconds from the start of the input. Every record is flushed as it is written,
 * so a live stream's lines appear at once. */
#ifndef MTLA_CLI_OUTPUT_H
#define MTLA_CLI_OUTPUT_H

#include <stdio.h>

#include "mtla-st.h"

typedef enum output_format { FORMAT_TXT = 0, FORMAT_JSONL, FORMAT_SRT, FORMAT_VTT } output_format;

/* "txt" -> FORMAT_TXT ...; returns -1 for an unknown name. */
int output_format_parse(const char *name);
/* The file extension of a format, without the dot. */
const char *output_format_extension(output_format format);

/* Receives the records instead of a stream (mtla-st serve builds its responses from them);
 * returns 0, or -1 to fail the run like a refused write. */
typedef int (*output_record_fn)(void *user, double start, double end, const char *text,
                                float score);

typedef struct output_writer {
    FILE *f;
    output_format format;
    int timestamps;   /* txt: prefix start and end */
    const char *file; /* the input's name for jsonl */
    int cues;         /* srt/vtt cues written so far */
    output_record_fn sink; /* when set, records go here and nothing is written */
    void *sink_user;
} output_writer;

/* Starts a document (the WebVTT header). Returns 0, or -1 when the stream refuses. */
int output_begin(output_writer *w, FILE *f, output_format format, int timestamps, const char *file);
/* A writer that hands every record to `sink` instead of formatting it. */
void output_begin_sink(output_writer *w, output_record_fn sink, void *user);
int output_record(output_writer *w, double start, double end, const char *text, float score);
/* Writes `s` as a JSON string literal: quotes, backslashes and control characters escaped. */
void output_json_string(FILE *f, const char *s);
/* 1 when nothing written to `fd` can be read any more: a pipe or socket whose reader has gone
 * (`mtla-st - | head -1` after head has exited; poll reports POLLERR or POLLHUP). Files and
 * terminals never are. Does not block. */
int output_closed(int fd);
/* One event of a simultaneous-translation session as a JSON object on one line (--partial
 * --format jsonl, and the WebSocket endpoint of mtla-st serve), times in seconds at `rate`:
 *   {"type":"partial","utterance","start","audio_end","committed","tentative"}
 *   {"type":"final","utterance","start","end","text"} */
void output_stream_event(FILE *f, const mtla_stream_event *e, int32_t rate);

#endif
