/*
 * mtla-st: speech translation with Multi-head Temporal Latent Attention.
 *
 * The one public header of libmtla-st. Every object is an opaque handle made by a
 * _create / _open function and released by the matching _free / _close. Functions that can
 * fail return an mtla_status and, when `err` is not NULL, fill it with a message naming the
 * problem. The library never prints and never exits. Handles are not shared between threads;
 * distinct handles may be used from distinct threads concurrently.
 *
 * Audio flows: mtla_audio (file or stream, mixed to mono, resampled) -> mtla_fbank (Kaldi
 * log-mel features, incremental) -> mtla_cmvn_* ; mtla_vad cuts a stream into utterances.
 */
#ifndef MTLA_ST_H
#define MTLA_ST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTLA_ST_VERSION_MAJOR 0
#define MTLA_ST_VERSION_MINOR 1
#define MTLA_ST_VERSION_PATCH 0

/* Version string of the linked library, e.g. "0.1.0". */
const char *mtla_version(void);

/* ---------------------------------------------------------------- errors */

typedef enum mtla_status {
    MTLA_OK = 0,
    MTLA_ERR_INVALID_ARGUMENT, /* a parameter out of range, a NULL handle */
    MTLA_ERR_IO,               /* the OS refused: missing file, permission, full disk */
    MTLA_ERR_FORMAT,           /* data that is not what it claims: corrupt audio, bad header */
    MTLA_ERR_UNSUPPORTED,      /* valid data we cannot handle (an unknown codec) */
    MTLA_ERR_TRUNCATED,        /* input ended early, e.g. in the middle of a sample */
    MTLA_ERR_EMPTY,            /* input without any audio */
    MTLA_ERR_NO_MEMORY,
    MTLA_ERR_INTERNAL /* a library we call failed unexpectedly */
} mtla_status;

/* Filled by failing calls; `message` is one line without a trailing newline. */
typedef struct mtla_error {
    mtla_status status;
    char message[512];
} mtla_error;

/* A short constant description of a status code, e.g. "truncated input". */
const char *mtla_status_string(mtla_status status);

/* ---------------------------------------------------------------- audio input */

/* Sample encodings of raw PCM streams. */
typedef enum mtla_pcm_encoding {
    MTLA_PCM_S16LE = 0, /* signed 16-bit little-endian (arecord -f S16_LE) */
    MTLA_PCM_F32LE = 1  /* IEEE float 32-bit little-endian, nominal range [-1, 1] */
} mtla_pcm_encoding;

/* How to interpret a stream (standard input, a pipe). When `detect_wav` is non-zero and the
 * stream starts with a RIFF/WAVE header, the header's rate, channels and encoding are used
 * instead of the raw fields. */
typedef struct mtla_stream_format {
    int32_t sample_rate;        /* Hz, default 16000 */
    int32_t channels;           /* default 1; channels are averaged to mono */
    mtla_pcm_encoding encoding; /* default MTLA_PCM_S16LE */
    int32_t detect_wav;         /* default 1 */
} mtla_stream_format;

mtla_stream_format mtla_stream_format_default(void);

/* A source of mono float samples in [-1, 1] at a chosen output rate (16000 for every model),
 * read from a file or a stream. Resampling uses libsoxr at high quality. */
typedef struct mtla_audio mtla_audio;

/* Opens any file libsndfile reads (WAV incl. WAVE_FORMAT_EXTENSIBLE, FLAC, Ogg/Vorbis, Opus,
 * MP3, ...). */
mtla_status mtla_audio_open_file(const char *path, int32_t output_rate, mtla_audio **out,
                                 mtla_error *err);

/* Reads a stream from file descriptor `fd` incrementally: mtla_audio_read returns as soon as
 * some audio has arrived and never waits for end of file. The descriptor stays open and owned
 * by the caller. `name` labels messages (e.g. "standard input"). */
mtla_status mtla_audio_open_fd(int fd, const char *name, const mtla_stream_format *format,
                               int32_t output_rate, mtla_audio **out, mtla_error *err);

/* Reads up to `capacity` output samples into `samples`. Sets *count to the number read; a
 * count of 0 with MTLA_OK means end of input. Blocks only until the next data arrives. After an
 * error (e.g. MTLA_ERR_TRUNCATED) every sample that came before it has been delivered. */
mtla_status mtla_audio_read(mtla_audio *audio, float *samples, size_t capacity, size_t *count,
                            mtla_error *err);

/* 1 when mtla_audio_read would return samples without waiting for the input: a stream reads
 * its descriptor in large pieces, so after a read more audio may be held here than the
 * descriptor shows (poll() on it says nothing about these). */
int mtla_audio_ready(const mtla_audio *audio);

/* The input's own sample rate and channel count (known after open; for a WAV stream after its
 * header has been read, which open does). */
int32_t mtla_audio_input_rate(const mtla_audio *audio);
int32_t mtla_audio_input_channels(const mtla_audio *audio);
/* Length of the input in seconds when known in advance (files), otherwise -1. */
double mtla_audio_duration(const mtla_audio *audio);

void mtla_audio_close(mtla_audio *audio);

/* Reads a whole input into one malloc'ed buffer (caller frees with free()). `path` "-" reads
 * `stdin_format` from standard input. */
mtla_status mtla_audio_load(const char *path, const mtla_stream_format *stdin_format,
                            int32_t output_rate, float **samples, size_t *count, mtla_error *err);

/* ---------------------------------------------------------------- features */

/* Kaldi-compatible filterbank settings; the defaults are those of SPEC.md section 2 (the
 * fairseq S2T convention), equal to torchaudio.compliance.kaldi.fbank(num_mel_bins=80). */
typedef struct mtla_fbank_params {
    int32_t sample_rate;      /* 16000 */
    int32_t num_mel_bins;     /* 80 */
    float frame_length_ms;    /* 25 */
    float frame_shift_ms;     /* 10 */
    float preemphasis;        /* 0.97 */
    int32_t remove_dc_offset; /* 1 */
    float low_freq;           /* 20 Hz */
    float high_freq;          /* 0: Nyquist; negative: offset from Nyquist (Kaldi) */
    float input_scale;        /* 32768: samples in [-1,1] are scaled to the int16 range */
} mtla_fbank_params;

mtla_fbank_params mtla_fbank_default_params(void);

/* Incremental feature extractor: feeding audio in chunks of any size gives bit-for-bit the
 * same frames as feeding it at once (frames never straddle a decision about chunking). Only
 * snip_edges framing, povey window, dither 0 are supported. */
typedef struct mtla_fbank mtla_fbank;

mtla_status mtla_fbank_create(const mtla_fbank_params *params, mtla_fbank **out, mtla_error *err);
/* Appends samples (nominal range [-1, 1]) and computes every frame they complete. */
mtla_status mtla_fbank_accept(mtla_fbank *fbank, const float *samples, size_t count,
                              mtla_error *err);
/* Frames computed and not yet taken. */
size_t mtla_fbank_frames_ready(const mtla_fbank *fbank);
/* Moves up to `max_frames` ready frames (row-major, num_mel_bins floats each) into `frames`;
 * returns how many were moved. */
size_t mtla_fbank_take(mtla_fbank *fbank, float *frames, size_t max_frames);
int32_t mtla_fbank_num_bins(const mtla_fbank *fbank);
/* Forgets buffered audio and ready frames, ready for a new utterance. */
void mtla_fbank_reset(mtla_fbank *fbank);
void mtla_fbank_free(mtla_fbank *fbank);

/* Whole-signal convenience: fills *frames (malloc'ed, frames x num_mel_bins) for `samples`. */
mtla_status mtla_fbank_compute(const mtla_fbank_params *params, const float *samples, size_t count,
                               float **frames, size_t *num_frames, mtla_error *err);

/* ---------------------------------------------------------------- Whisper log-mel */

/* Whisper's log-mel spectrogram, whisper.audio.log_mel_spectrogram(samples, n_mels) without its
 * padding to 30 s (docs/frontend.md, "Whisper log-mel"): 400-sample periodic Hann frames every
 * 160 samples, centred (reflect padding), count / 160 frames; power spectrum; Slaney mel
 * filters; log10(max(., 1e-10)) clamped below at the maximum over the whole input minus 8;
 * (x + 4) / 4. Not incremental: the clamp depends on the whole utterance, so a stream applies
 * it per utterance. One context keeps its FFTW plan and buffers for any number of inputs. */
typedef struct mtla_whisper_mel mtla_whisper_mel;

/* num_mel_bins 80 or 128; 16 kHz input. */
mtla_status mtla_whisper_mel_create(int32_t num_mel_bins, mtla_whisper_mel **out, mtla_error *err);
/* Frames for `count` samples: count / 160. */
size_t mtla_whisper_mel_frames(size_t count);
/* Fills frames[mtla_whisper_mel_frames(count) x num_mel_bins] (the caller's buffer). */
void mtla_whisper_mel_compute(mtla_whisper_mel *mel, const float *samples, size_t count,
                              float *frames);
int32_t mtla_whisper_mel_num_bins(const mtla_whisper_mel *mel);
void mtla_whisper_mel_free(mtla_whisper_mel *mel);

/* Utterance CMVN: per dimension, x <- (x - mean) / sqrt(max(var, 1e-10)) over the frames. */
void mtla_cmvn_utterance(float *frames, size_t num_frames, int32_t dim);
/* Global CMVN with statistics stored with a model: x <- (x - mean[d]) / std[d]. */
mtla_status mtla_cmvn_global(float *frames, size_t num_frames, int32_t dim, const float *mean,
                             const float *std, mtla_error *err);

/* ---------------------------------------------------------------- voice activity */

/* A streaming energy VAD with an adaptive noise floor. Times are in milliseconds. */
typedef struct mtla_vad_params {
    int32_t sample_rate;    /* 16000 */
    int32_t frame_ms;       /* analysis frame, 10 */
    float onset_db;         /* speech starts when energy exceeds floor + onset_db (9) */
    float offset_db;        /* ... and continues while above floor + offset_db (5) */
    int32_t min_speech_ms;  /* shorter bursts are ignored (120) */
    int32_t min_silence_ms; /* a pause this long ends an utterance (500) */
    int32_t padding_ms;     /* kept before onset and after offset (200) */
    int32_t max_segment_ms; /* longer utterances are cut at their quietest point (20000) */
} mtla_vad_params;

mtla_vad_params mtla_vad_default_params(void);

/* A speech segment as sample indices [start, end) of the audio fed to the VAD. */
typedef struct mtla_segment {
    int64_t start;
    int64_t end;
} mtla_segment;

typedef struct mtla_vad mtla_vad;

mtla_status mtla_vad_create(const mtla_vad_params *params, mtla_vad **out, mtla_error *err);
/* Feeds samples (any chunk size); segments become ready as soon as their end is certain. */
mtla_status mtla_vad_accept(mtla_vad *vad, const float *samples, size_t count, mtla_error *err);
/* Declares end of input: an open utterance is closed at the last sample. */
void mtla_vad_finish(mtla_vad *vad);
/* Takes the oldest ready segment; returns 1 if one was taken, 0 if none is ready. */
int mtla_vad_take(mtla_vad *vad, mtla_segment *segment);
/* 1 while an utterance is open (its onset confirmed, its end not yet certain), with *start
 * (may be NULL) the first sample of its segment so far; 0 otherwise. The segment taken once it
 * ends starts there or, when padding gives way to the maximum length, a little later. */
int mtla_vad_open(const mtla_vad *vad, int64_t *start);
/* Samples fed so far. */
int64_t mtla_vad_position(const mtla_vad *vad);
void mtla_vad_free(mtla_vad *vad);

/* ---------------------------------------------------------------- models */

/* A model directory (docs/model-format.md): config.json, model.safetensors (or shards with
 * model.safetensors.index.json), vocab.txt and tokenizer.model. Opening validates every field
 * and every tensor and maps the tensor files; fp32 tensors are used in place, fp16 and bf16 ones
 * are converted to fp32 when a translator first needs them so (mtla_translator_params.dtype); a
 * model is read-only once open, so its accessors and mtla_translator_create may be called from
 * any thread. */
typedef struct mtla_model mtla_model;

/* Fails with a message naming the file and the problem, e.g. "model.safetensors: tensor
 * 'decoder.layers.3.fc1.weight' has shape [2048, 256], config needs [2048, 512]". */
mtla_status mtla_model_open(const char *dir, mtla_model **out, mtla_error *err);
void mtla_model_close(mtla_model *model);

/* One line, e.g. "transformer 12x512 encoder, mtla s=2 9x512 decoder, 78.1M parameters". */
const char *mtla_model_description(const mtla_model *model);
/* languages.source and languages.target of config.json, e.g. "en" and "de". */
const char *mtla_model_source_language(const mtla_model *model);
const char *mtla_model_target_language(const mtla_model *model);
/* Entries of the target vocabulary (vocab.size). */
int32_t mtla_model_vocab_size(const mtla_model *model);

/* ---------------------------------------------------------------- translation */

/* A model made ready to run on a backend: the weights bound, the encoder and the decoder
 * built, buffers kept between calls. One translator translates one input at a time; use one
 * per thread. It borrows the model, which must outlive it. */
typedef struct mtla_translator mtla_translator;

/* The element type of the linear layers' weights on the CPU (docs/engine.md "Reduced
 * precision"). FP32 is the reference, token-identical to the PyTorch oracle. BF16 rounds
 * weights and activations to bfloat16 and sums in float32; INT8 quantises weights per output
 * channel and activations per row, summing in int32. Weights stored in that type in the model
 * are used in place; others are converted once when the translator is made (no fp32 copy).
 * Other tensors (norms, biases, embeddings, convolutions, MTLA's absorbed W_kvb) stay fp32. */
typedef enum mtla_compute_dtype {
    MTLA_COMPUTE_FP32 = 0,
    MTLA_COMPUTE_BF16 = 1,
    MTLA_COMPUTE_INT8 = 2
} mtla_compute_dtype;

/* "fp32", "bf16", "int8"; "" for a value out of range. */
const char *mtla_compute_dtype_name(mtla_compute_dtype dtype);

typedef struct mtla_translator_params {
    int32_t threads; /* CPU threads for matrix products and attention; 0: all cores */
    int32_t device;  /* -1: the CPU (default); N >= 0: CUDA device N, from the CUDA plugin */
    mtla_compute_dtype dtype; /* MTLA_COMPUTE_FP32 (default); BF16 and INT8 on the CPU only */
} mtla_translator_params;

mtla_translator_params mtla_translator_default_params(void);

/* Decoding settings (SPEC.md 6, fairseq's generation options). */
typedef struct mtla_decode_params {
    int32_t beam;     /* beam size; 1 is greedy decoding */
    float lenpen;     /* length penalty: score = log-prob / length^lenpen */
    double max_len_a; /* at most max_len_a * fbank frames + max_len_b tokens (and 1023) */
    int32_t max_len_b;
    int32_t min_len; /* EOS is not allowed before this many tokens (1) */
} mtla_decode_params;

/* The model's frontend settings (config.json "frontend"): the features it was trained on. For
 * a "whisper" frontend only sample_rate, num_mel_bins and the frame timing (25 ms frames every
 * 10 ms) are meaningful: compute its features with mtla_model_features. */
mtla_fbank_params mtla_model_fbank_params(const mtla_model *model);

/* config.json frontend.type: "kaldi_fbank" or "whisper". */
const char *mtla_model_frontend_type(const mtla_model *model);

/* The model's input features for `count` mono samples at its sample rate, before CMVN, as
 * mtla_translate_samples computes them: Kaldi fbank, or Whisper log-mel clamped over these
 * samples. *frames is malloc'ed (frames x num_mel_bins); *num_frames may be 0. */
mtla_status mtla_model_features(const mtla_model *model, const float *samples, size_t count,
                                float **frames, size_t *num_frames, mtla_error *err);

/* The longest input the model's encoder accepts, in milliseconds of audio (a Whisper encoder
 * with P positions: 20 P ms, 30 s for Whisper's own); 0 when it has no limit of its own.
 * Longer inputs are refused by mtla_translate_*; the CLI cuts them at pauses. */
int64_t mtla_model_max_input_ms(const mtla_model *model);

/* The model's own defaults (config.json "generation"). */
mtla_decode_params mtla_decode_default_params(const mtla_model *model);

mtla_status mtla_translator_create(const mtla_model *model, const mtla_translator_params *params,
                                   mtla_translator **out, mtla_error *err);
void mtla_translator_free(mtla_translator *translator);

/* One translation: the best hypothesis of the beam. */
typedef struct mtla_translation {
    char *text;          /* detokenised UTF-8, as fairseq prints it */
    int32_t *tokens;     /* model ids, without the final EOS */
    int32_t token_count;
    float score;    /* length-normalised log-probability */
    int64_t frames; /* fbank frames of the input */
} mtla_translation;

void mtla_translation_free(mtla_translation *translation);

/* Translates audio: mono samples at 16 kHz, nominal range [-1, 1]. */
mtla_status mtla_translate_samples(mtla_translator *translator, const float *samples,
                                   size_t count, const mtla_decode_params *params,
                                   mtla_translation *out, mtla_error *err);

/* Translates fbank features (frames x num_mel_bins, row-major, before CMVN: the model's CMVN is
 * applied here), e.g. those `mtla-st features` writes. */
mtla_status mtla_translate_features(mtla_translator *translator, const float *features,
                                    int64_t frames, const mtla_decode_params *params,
                                    mtla_translation *out, mtla_error *err);

/* ---------------------------------------------------------------- simultaneous translation */

/* A session translating one live stream while it is heard (docs/streaming.md). Its VAD cuts
 * the stream into utterances; while one is open, every partial_step_ms of new audio the
 * utterance so far is translated again, each hypothesis forced to start with the tokens
 * committed so far, and the policy commits a longer prefix. Committed text is never retracted.
 * When the utterance ends it is translated a last time, the committed tokens forced, and a
 * final event gives its text. Commits fall on word boundaries. */
typedef enum mtla_stream_policy {
    /* LocalAgreement-2: commit the longest common prefix of the last two hypotheses */
    MTLA_POLICY_LOCAL_AGREEMENT = 0,
    /* wait-k over chunks of partial_step_ms (SimulEval's fixed pre-decision): after c chunks of
     * the utterance, the first c - k + 1 tokens of the hypothesis are committed */
    MTLA_POLICY_WAIT_K = 1,
    /* no partial translations: one final event per utterance, as offline */
    MTLA_POLICY_OFFLINE = 2
} mtla_stream_policy;

typedef enum mtla_stream_event_type {
    MTLA_STREAM_PARTIAL = 0, /* the utterance so far: committed and tentative text */
    MTLA_STREAM_FINAL = 1    /* the utterance has ended: its whole text */
} mtla_stream_event_type;

/* Times are sample indices of the audio fed to the session (at the model's sample rate). The
 * strings belong to the session and are valid during the callback only. */
typedef struct mtla_stream_event {
    mtla_stream_event_type type;
    int64_t utterance; /* 0, 1, ...: the utterances that gave events, in order */
    int64_t start;     /* first sample of the utterance */
    int64_t end;       /* partial: samples heard so far; final: end of the utterance */
    /* Partial: every committed text of the utterance starts with the one before. Final: the
     * whole text, which starts with the last committed text. */
    const char *committed;
    /* Partial: the rest of the current hypothesis (to be joined with a space), may change or
     * vanish; final: "". */
    const char *tentative;
    int32_t committed_tokens;
    float avg_logprob; /* of the hypothesis: mean log-prob of its tokens and final EOS */
} mtla_stream_event;

typedef void (*mtla_stream_callback)(const mtla_stream_event *event, void *user);

typedef struct mtla_stream_params {
    mtla_stream_policy policy; /* MTLA_POLICY_LOCAL_AGREEMENT */
    int32_t partial_step_ms;   /* new audio between two partial translations: 1000 (>= 100) */
    int32_t wait_k;            /* k of MTLA_POLICY_WAIT_K: 3 (>= 1) */
    /* Guards against output for non-speech: while nothing of the utterance is committed, a
     * hypothesis whose avg_logprob is below this is refused (-1.0, as Whisper's
     * logprob_threshold; -INFINITY: off) ... */
    float logprob_threshold;
    /* ... and so is one in which an n-gram of up to repeat_ngram tokens (4) occurs more than
     * repeat_limit times in a row (3; 0: off). A refused partial hypothesis is ignored; a
     * refused final one leaves the committed text as the utterance's text. */
    int32_t repeat_ngram;
    int32_t repeat_limit;
    mtla_vad_params vad;           /* mtla_vad_default_params at the model's rate, capped at its
                                      longest input */
    mtla_decode_params decode;     /* mtla_decode_default_params(model) */
    mtla_stream_callback on_event; /* may be NULL */
    void *user;                    /* passed to on_event */
} mtla_stream_params;

/* The defaults above for `model` (not NULL): its decoding defaults, the VAD at its rate. */
mtla_stream_params mtla_stream_default_params(const mtla_model *model);

typedef struct mtla_stream mtla_stream;

/* A session on `translator`, which it uses alone until freed (and which must outlive it). */
mtla_status mtla_stream_create(mtla_translator *translator, const mtla_stream_params *params,
                               mtla_stream **out, mtla_error *err);
/* Feeds mono samples at the model's rate. Events are delivered through on_event before it
 * returns. One call runs at most one partial translation, for all the audio it brings: a
 * caller that falls behind real time passes everything that arrived meanwhile in one call, so
 * steps are skipped (coalesced), never queued. Memory stays bounded (the open utterance, at
 * most the VAD's maximum segment, and a little history). */
mtla_status mtla_stream_accept(mtla_stream *stream, const float *samples, size_t count,
                               mtla_error *err);
/* End of input (or a stop): the open utterance is finished with its final event. The
 * session then accepts no more audio. */
mtla_status mtla_stream_finish(mtla_stream *stream, mtla_error *err);
/* Samples fed so far. */
int64_t mtla_stream_position(const mtla_stream *stream);
/* Partial translations run and steps skipped because one call brought more than one step. */
void mtla_stream_counts(const mtla_stream *stream, int64_t *steps, int64_t *skipped);
void mtla_stream_free(mtla_stream *stream);

/* ---------------------------------------------------------------- build information */

/* Number of CUDA devices usable by this build: 0 when the CUDA plugin (libmtla-st-cuda.so,
 * which this loads) cannot be loaded or no device/driver is present. `detail` (may be NULL)
 * receives a one-line description, or why there is no device. */
int32_t mtla_cuda_device_count(char *detail, size_t detail_size);

#ifdef __cplusplus
}
#endif

#endif /* MTLA_ST_H */
