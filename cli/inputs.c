#include "inputs.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int inputs_is_audio_name(const char *name)
{
    static const char *const extensions[] = {"wav", "wave", "flac", "ogg",  "oga", "opus",
                                             "mp3", "aif",  "aiff", "aifc", "au",  "snd",
                                             "caf", "w64",  "rf64", "sph"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (strcasecmp(dot + 1, extensions[i]) == 0)
            return 1;
    return 0;
}

static int push(input_list *list, const char *path, const char *relative, int64_t bytes)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 64;
        input_item *grown = realloc(list->items, capacity * sizeof *grown);
        if (!grown)
            return -1;
        list->items = grown;
        list->capacity = capacity;
    }
    input_item *it = &list->items[list->count];
    it->path = strdup(path);
    it->relative = strdup(relative);
    it->bytes = bytes;
    if (!it->path || !it->relative) {
        free(it->path);
        free(it->relative);
        return -1;
    }
    list->count++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_note(input_list *list, const char *text)
{
    char **grown = realloc(list->notes, (list->note_count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    list->notes = grown;
    if (!(list->notes[list->note_count] = strdup(text)))
        return -1;
    list->note_count++;
    return 0;
}

/* One directory on the path from the walk's root to the directory being read: a link loop
 * is a directory whose device and inode are already on this chain. */
typedef struct walk_frame {
    dev_t dev;
    ino_t ino;
    const char *path;
    const struct walk_frame *up;
} walk_frame;

/* Walks `dir` (its path within the root: `rel`, "" at the root; `here`: its own frame, at the
 * head of the chain of its ancestors), adding audio files. */
static int walk(input_list *list, const char *dir, const char *rel, const char *skip_real,
                const walk_frame *here, int depth, char *message, size_t size)
{
    if (depth > 64) {
        snprintf(message, size, "'%s': directories nested too deeply", dir);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(message, size, "cannot read directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int status = 0;
    while (status == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **grown = realloc(names, cap * sizeof *grown);
            if (grown)
                names = grown;
            else
                status = -1;
        }
        if (status == 0 && !(names[n++] = strdup(e->d_name)))
            status = -1, n--;
    }
    closedir(d);
    if (status != 0)
        snprintf(message, size, "out of memory listing '%s'", dir);
    else if (n > 0)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX], child_rel[PATH_MAX];
        int a = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int b = snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        struct stat st;
        if (status != 0 || a >= (int)sizeof path || b >= (int)sizeof child_rel ||
            stat(path, &st) != 0)
            continue; /* a dangling link or an unreadable entry is not an input */
        if (S_ISDIR(st.st_mode)) {
            char real[PATH_MAX];
            if (skip_real && realpath(path, real) && strcmp(real, skip_real) == 0)
                continue;
            const walk_frame *seen = here;
            while (seen && !(seen->dev == st.st_dev && seen->ino == st.st_ino))
                seen = seen->up;
            if (seen) {
                char note[2 * PATH_MAX + 96];
                snprintf(note, sizeof note,
                         "'%s' leads back to '%s' (a directory loop): not followed", path,
                         seen->path);
                if (add_note(list, note) != 0) {
                    snprintf(message, size, "out of memory listing '%s'", dir);
                    status = -1;
                }
                continue;
            }
            walk_frame child = {st.st_dev, st.st_ino, path, here};
            status = walk(list, path, child_rel, skip_real, &child, depth + 1, message, size);
        } else if (S_ISREG(st.st_mode) && inputs_is_audio_name(names[i])) {
            if (push(list, path, child_rel, (int64_t)st.st_size) != 0) {
                snprintf(message, size, "out of memory listing '%s'", dir);
                status = -1;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return status;
}

int inputs_add(input_list *list, const char *arg, const char *skip_dir, char *message, size_t size)
{
    if (strcmp(arg, "-") == 0)
        return push(list, "-", "stdin", -1) == 0 ? 0
                                                 : (snprintf(message, size, "out of memory"), -1);
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        char skip_real[PATH_MAX];
        const char *skip = skip_dir && realpath(skip_dir, skip_real) ? skip_real : NULL;
        size_t before = list->count;
        char root[PATH_MAX];
        snprintf(root, sizeof root, "%s", arg);
        for (size_t len = strlen(root); len > 1 && root[len - 1] == '/'; len--)
            root[len - 1] = '\0';
        walk_frame top = {st.st_dev, st.st_ino, root, NULL};
        if (walk(list, root, "", skip, &top, 0, message, size) != 0)
            return -1;
        list->directories = 1;
        if (list->count == before) {
            snprintf(message, size, "'%s' holds no audio files", arg);
            return -1;
        }
        return 0;
    }
    /* A file (or something missing: translating it reports the reason). */
    const char *base = strrchr(arg, '/');
    base = base && base[1] ? base + 1 : arg;
    if (push(list, arg, base, stat(arg, &st) == 0 ? (int64_t)st.st_size : -1) != 0) {
        snprintf(message, size, "out of memory");
        return -1;
    }
    return 0;
}

int inputs_add_from(input_list *list, const char *list_path, const char *skip_dir, char *message,
                    size_t size)
{
    FILE *f = strcmp(list_path, "-") == 0 ? stdin : fopen(list_path, "r");
    if (!f) {
        snprintf(message, size, "cannot open the list '%s': %s", list_path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int status = 0;
    while (status == 0 && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (strcmp(line, "-") == 0) {
            snprintf(message, size, "the list '%s' may not name standard input", list_path);
            status = -1;
        } else {
            status = inputs_add(list, line, skip_dir, message, size);
        }
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return status;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void inputs_shard(input_list *list, int k, int n)
{
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        input_item it = list->items[i];
        /* the name under its root, so that every machine agrees whatever its mount point */
        if (fnv1a(it.relative) % (uint64_t)n == (uint64_t)(k - 1)) {
            list->items[kept++] = it;
        } else {
            free(it.path);
            free(it.relative);
        }
    }
    list->count = kept;
}

void inputs_free(input_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].path);
        free(list->items[i].relative);
    }
    free(list->items);
    for (size_t i = 0; i < list->note_count; i++)
        free(list->notes[i]);
    free(list->notes);
    memset(list, 0, sizeof *list);
}
