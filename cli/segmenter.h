/* Translating one audio input as it is read: the VAD cuts it into utterances and each is
 * translated as soon as it has ended. Memory stays bounded: only the audio of utterances not yet
 * translated (at most the VAD's maximum segment plus padding) is kept.
 *
 * Three ways to report an input:
 *   SEGMENTS_EACH    one record per utterance, written as soon as it is translated (live
 *                    streams, --segment)
 *   SEGMENTS_WHOLE   one record for the whole input: an input no longer than
 *                    WHOLE_LIMIT_SECONDS (and than the VAD's maximum segment, which the
 *                    caller caps at the model's longest input) is translated in one piece (as
 *                    the model was trained on utterances); a longer one segment by segment,
 *                    the texts joined
 */
#ifndef MTLA_CLI_SEGMENTER_H
#define MTLA_CLI_SEGMENTER_H

#include <signal.h>

#include "mtla-st.h"
#include "output.h"

#define WHOLE_LIMIT_SECONDS 20.0

typedef enum segment_mode { SEGMENTS_EACH, SEGMENTS_WHOLE } segment_mode;

typedef struct translate_ctx {
    const mtla_model *model;
    mtla_translator *translator;
    mtla_decode_params decode;
    mtla_fbank_params fbank;
    mtla_vad_params vad;
    volatile sig_atomic_t *stop; /* set by SIGINT/SIGTERM: finish the open utterance, stop */
    int verbose;
    /* Results go to standard output: it is watched while waiting for input, so that a reader
     * that has gone away ends the run at once (output_closed). */
    int watch_stdout;
    /* Why the output failed (an errno value) when a call returned EXIT_OUTPUT; the caller,
     * which knows where the output goes, says so once. */
    int output_errno;
    /* totals over every input, for the summary */
    double audio_seconds;
    double compute_seconds;
    /* When set, the first problem with an input is kept here (error_size bytes, cleared by the
     * caller) instead of printed on stderr: mtla-st serve answers requests with it. */
    char *error;
    size_t error_size;
} translate_ctx;

/* Translates `audio` (opened by the caller; `fd` >= 0 when it is a stream read from that
 * descriptor, so that a signal can interrupt the wait) and writes records to `w`. Returns
 * EXIT_OK, EXIT_INPUT (after reporting on stderr; records of the audio before the problem are
 * still written) or EXIT_OUTPUT (ctx->output_errno says why: a failed write, or EPIPE when
 * the reader of a watched standard output went away). */
int translate_audio(translate_ctx *ctx, mtla_audio *audio, int fd, const char *name,
                    segment_mode mode, output_writer *w);

#endif
