/* mtla-st --partial: simultaneous translation of one input through the library's stream
 * session (mtla_stream_*, docs/streaming.md), showing text while the speaker is still talking.
 *
 *   txt on a terminal  one line per utterance, committed text normal and tentative text
 *                      dimmed, rewritten in place
 *   txt otherwise      committed words appended as they are committed, a newline at the end
 *                      of each utterance, flushed each time
 *   jsonl              one event per line: {"type":"partial","utterance","start","audio_end",
 *                      "committed","tentative"} and {"type":"final","utterance","start","end",
 *                      "text"}, times in seconds of input audio
 *
 * A stream (standard input) is read as it arrives, everything that arrived during a partial
 * translation passed on at once (steps coalesced). A file is paced as if it were live
 * (`realtime`), or fed 100 ms at a time as fast as possible with the same steps. */
#ifndef MTLA_CLI_PARTIAL_H
#define MTLA_CLI_PARTIAL_H

#include <stdio.h>

#include "mtla-st.h"
#include "output.h"
#include "segmenter.h"

typedef struct partial_options {
    mtla_stream_params stream; /* on_event and user are set by translate_partial */
    int realtime;              /* files: pace them as live input */
    output_format format;      /* FORMAT_TXT or FORMAT_JSONL */
    int terminal;              /* txt: rewrite the line in place, tentative text dimmed */
} partial_options;

/* Translates `audio` (opened by the caller; `fd` >= 0 when it is a stream read from that
 * descriptor) to `out`. ctx->stop (SIGINT/SIGTERM) or the end of input finishes the open
 * utterance with its final event. Returns EXIT_OK, EXIT_INPUT or EXIT_OUTPUT (ctx->output_errno
 * says why; EPIPE when the reader of a watched standard output went away). */
int translate_partial(translate_ctx *ctx, const partial_options *options, mtla_audio *audio, int fd,
                      const char *name, FILE *out);

#endif
