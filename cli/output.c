#include "output.h"

#include <math.h>
#include <poll.h>
#include <string.h>

int output_format_parse(const char *name)
{
    static const char *const names[] = {"txt", "jsonl", "srt", "vtt"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

const char *output_format_extension(output_format format)
{
    static const char *const ext[] = {"txt", "jsonl", "srt", "vtt"};
    return ext[format];
}

int output_begin(output_writer *w, FILE *f, output_format format, int timestamps, const char *file)
{
    w->f = f;
    w->format = format;
    w->timestamps = timestamps;
    w->file = file;
    w->cues = 0;
    w->sink = NULL;
    w->sink_user = NULL;
    if (format == FORMAT_VTT && fputs("WEBVTT\n\n", f) < 0)
        return -1;
    return fflush(f) == 0 ? 0 : -1;
}

void output_begin_sink(output_writer *w, output_record_fn sink, void *user)
{
    memset(w, 0, sizeof *w);
    w->sink = sink;
    w->sink_user = user;
}

/* HH:MM:SS,mmm (srt) or HH:MM:SS.mmm (vtt). */
static void cue_time(FILE *f, double seconds, char separator)
{
    long long ms = llround(seconds * 1000.0);
    if (ms < 0)
        ms = 0;
    fprintf(f, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
            separator, ms % 1000);
}

/* A JSON string literal: quotes, backslashes and control characters escaped; UTF-8 passes. */
void output_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void output_stream_event(FILE *f, const mtla_stream_event *e, int32_t rate)
{
    double start = (double)e->start / rate, end = (double)e->end / rate;
    if (e->type == MTLA_STREAM_PARTIAL) {
        fprintf(f,
                "{\"type\":\"partial\",\"utterance\":%lld,\"start\":%.3f,\"audio_end\":%.3f,"
                "\"committed\":",
                (long long)e->utterance, start, end);
        output_json_string(f, e->committed);
        fputs(",\"tentative\":", f);
        output_json_string(f, e->tentative);
    } else {
        fprintf(f, "{\"type\":\"final\",\"utterance\":%lld,\"start\":%.3f,\"end\":%.3f,\"text\":",
                (long long)e->utterance, start, end);
        output_json_string(f, e->committed);
    }
    fputs("}\n", f);
}

int output_record(output_writer *w, double start, double end, const char *text, float score)
{
    if (w->sink)
        return w->sink(w->sink_user, start, end, text, score);
    FILE *f = w->f;
    switch (w->format) {
    case FORMAT_TXT:
        if (w->timestamps)
            fprintf(f, "%.2f\t%.2f\t", start, end);
        fprintf(f, "%s\n", text);
        break;
    case FORMAT_JSONL:
        fputs("{\"file\": ", f);
        output_json_string(f, w->file);
        fprintf(f, ", \"start\": %.3f, \"end\": %.3f, \"text\": ", start, end);
        output_json_string(f, text);
        if (isfinite(score))
            fprintf(f, ", \"score\": %.6f}\n", score);
        else
            fputs(", \"score\": null}\n", f);
        break;
    case FORMAT_SRT:
    case FORMAT_VTT:
        /* An empty cue text would end the cue at once: an empty translation gets no cue. */
        if (!*text)
            return 0;
        if (w->format == FORMAT_SRT)
            fprintf(f, "%d\n", w->cues + 1);
        cue_time(f, start, w->format == FORMAT_SRT ? ',' : '.');
        fputs(" --> ", f);
        cue_time(f, end > start ? end : start + 0.001, w->format == FORMAT_SRT ? ',' : '.');
        fprintf(f, "\n%s\n\n", text);
        break;
    }
    w->cues++;
    return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

int output_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
}
