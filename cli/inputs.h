/* The inputs of one translate run: files and directories from the command line or from a
 * list file, expanded and ordered, optionally one shard of them. */
#ifndef MTLA_CLI_INPUTS_H
#define MTLA_CLI_INPUTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct input_item {
    char *path;     /* as given, or joined from a walked directory; "-" is standard input */
    char *relative; /* the output's name under -o: the path within a walked directory, or
                       the file's base name */
    int64_t bytes;  /* file size, for the progress estimate */
} input_item;

typedef struct input_list {
    input_item *items;
    size_t count, capacity;
    int directories; /* a directory was walked */
    /* Warnings of the walk that did not stop it, one line each (e.g. a directory link that
     * leads back into its own ancestors, which is reported and not followed). */
    char **notes;
    size_t note_count;
} input_list;

/* Adds `arg`: a file, a directory (walked recursively for audio files, in name order, links
 * followed; hidden entries and `skip_dir` (the output directory, may be NULL) are left out; a
 * directory that is already one of the walk's ancestors (same device and inode: a link loop)
 * is not entered and gets a note), or "-". Returns 0, or -1 with a message. */
int inputs_add(input_list *list, const char *arg, const char *skip_dir, char *message, size_t size);
/* Adds every line of `list_path` ("-": standard input) as an argument; empty lines and lines
 * starting with '#' are ignored. */
int inputs_add_from(input_list *list, const char *list_path, const char *skip_dir, char *message,
                    size_t size);
/* Keeps shard k of n (1 <= k <= n): the items whose relative name hashes (FNV-1a 64) to
 * k - 1 modulo n. The choice depends only on the name, so every machine of a job array picks
 * a disjoint share without coordination, and adding files never moves the others. */
void inputs_shard(input_list *list, int k, int n);
void inputs_free(input_list *list);

/* True when `name` has an audio file extension (wav, flac, ogg, opus, mp3, ...). */
int inputs_is_audio_name(const char *name);

#endif
