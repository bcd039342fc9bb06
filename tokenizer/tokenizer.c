#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/spm_shim.h"

/* U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's word boundary. */
static const char WORD_BOUNDARY[] = "\xE2\x96\x81";

struct mtla_tokenizer {
    mtla_special_ids specials;
    char *vocab_text; /* vocab.txt, its newlines replaced by NULs */
    char **pieces;    /* id -> piece, pointing into vocab_text */
    int32_t size;
    int32_t *index;    /* open-addressing hash of pieces: slot -> id, -1 if empty */
    size_t index_size; /* a power of two, at least twice size */
    spm_shim *spm;
};

static uint64_t hash_piece(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int32_t lookup(const mtla_tokenizer *tok, const char *piece)
{
    size_t mask = tok->index_size - 1;
    for (size_t slot = hash_piece(piece) & mask;; slot = (slot + 1) & mask) {
        int32_t id = tok->index[slot];
        if (id < 0 || strcmp(tok->pieces[id], piece) == 0)
            return id;
    }
}

/* Checks that a line is well-formed UTF-8 without control characters. */
static int valid_piece(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s;
        size_t extra = c < 0x80             ? 0
                       : (c & 0xE0) == 0xC0 ? 1
                       : (c & 0xF0) == 0xE0 ? 2
                       : (c & 0xF8) == 0xF0 ? 3
                                            : 4;
        if (extra == 4 || (extra == 0 && c < 0x20) || c == 0x7F)
            return 0;
        for (size_t k = 1; k <= extra; k++)
            if ((s[k] & 0xC0) != 0x80)
                return 0;
        s += extra + 1;
    }
    return 1;
}

static mtla_status read_vocab(mtla_tokenizer *tok, const char *path, mtla_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mtla_fail(err, MTLA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t capacity = 1 << 16, size = 0;
    char *text = malloc(capacity);
    while (text) {
        size += fread(text + size, 1, capacity - size - 1, f);
        if (size < capacity - 1)
            break;
        char *grown = realloc(text, capacity * 2);
        if (!grown)
            free(text);
        text = grown;
        capacity *= 2;
    }
    if (!text) {
        fclose(f);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory reading '%s'", path);
    }
    int failed = ferror(f);
    fclose(f);
    tok->vocab_text = text;
    if (failed)
        return mtla_fail(err, MTLA_ERR_IO, "cannot read '%s'", path);
    if (memchr(text, '\0', size))
        return mtla_fail(err, MTLA_ERR_FORMAT, "'%s' contains a NUL byte", path);
    if (size > 0 && text[size - 1] == '\n')
        size--; /* the final newline ends the last line, it does not start a new one */
    text[size] = '\0';

    size_t lines = size == 0 ? 0 : 1;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n';
    if (lines == 0)
        return mtla_fail(err, MTLA_ERR_FORMAT, "'%s' is empty", path);
    if (lines > INT32_MAX / 4)
        return mtla_fail(err, MTLA_ERR_FORMAT, "'%s' has too many lines", path);
    tok->size = (int32_t)lines;
    tok->pieces = malloc(lines * sizeof(char *));
    tok->index_size = 1;
    while (tok->index_size < 2 * lines)
        tok->index_size *= 2;
    tok->index = malloc(tok->index_size * sizeof(int32_t));
    if (!tok->pieces || !tok->index)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory reading '%s'", path);
    memset(tok->index, 0xFF, tok->index_size * sizeof(int32_t));

    char *line = text;
    for (int32_t id = 0; id < tok->size; id++) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (end && end > line && end[-1] == '\r')
            end[-1] = '\0';
        if (line[0] == '\0')
            return mtla_fail(err, MTLA_ERR_FORMAT, "'%s' line %d is empty", path, (int)id + 1);
        if (!valid_piece((const unsigned char *)line))
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "'%s' line %d is not UTF-8 text without control characters", path,
                             (int)id + 1);
        tok->pieces[id] = line;
        if (lookup(tok, line) >= 0)
            return mtla_fail(err, MTLA_ERR_FORMAT, "'%s' line %d repeats the piece '%s'", path,
                             (int)id + 1, line);
        size_t mask = tok->index_size - 1, slot = hash_piece(line) & mask;
        while (tok->index[slot] >= 0)
            slot = (slot + 1) & mask;
        tok->index[slot] = id;
        line = end ? end + 1 : line + strlen(line);
    }
    return MTLA_OK;
}

mtla_status mtla_tokenizer_open(const char *model_path, const char *vocab_path,
                                const mtla_special_ids *specials, mtla_tokenizer **out,
                                mtla_error *err)
{
    *out = NULL;
    mtla_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening the tokenizer");
    tok->specials = *specials;
    mtla_status st = read_vocab(tok, vocab_path, err);
    if (st == MTLA_OK) {
        const int32_t ids[] = {specials->bos, specials->pad, specials->eos, specials->unk};
        for (size_t i = 0; i < 4 && st == MTLA_OK; i++)
            if (ids[i] < 0 || ids[i] >= tok->size)
                st = mtla_fail(err, MTLA_ERR_FORMAT,
                               "special id %d is outside the %d pieces of '%s'", (int)ids[i],
                               (int)tok->size, vocab_path);
    }
    if (st == MTLA_OK) {
        char message[400];
        FILE *probe = fopen(model_path, "rb");
        if (!probe)
            st = mtla_fail(err, MTLA_ERR_IO, "cannot open '%s': %s", model_path, strerror(errno));
        else if (fclose(probe), spm_shim_load(model_path, &tok->spm, message, sizeof message))
            st = mtla_fail(err, MTLA_ERR_FORMAT, "'%s' is not a SentencePiece model: %s",
                           model_path, message);
    }
    if (st != MTLA_OK) {
        mtla_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return MTLA_OK;
}

void mtla_tokenizer_free(mtla_tokenizer *tok)
{
    if (!tok)
        return;
    spm_shim_free(tok->spm);
    free(tok->pieces);
    free(tok->index);
    free(tok->vocab_text);
    free(tok);
}

int32_t mtla_tokenizer_size(const mtla_tokenizer *tok)
{
    return tok ? tok->size : 0;
}

const char *mtla_tokenizer_piece(const mtla_tokenizer *tok, int32_t id)
{
    return tok && id >= 0 && id < tok->size ? tok->pieces[id] : NULL;
}

mtla_status mtla_tokenizer_decode(const mtla_tokenizer *tok, const int32_t *ids, size_t count,
                                  char **text, mtla_error *err)
{
    *text = NULL;
    size_t length = 1;
    for (size_t i = 0; i < count; i++) {
        if (ids[i] < 0 || ids[i] >= tok->size)
            return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "model id %d is not in [0, %d)",
                             (int)ids[i], (int)tok->size);
        length += strlen(tok->pieces[ids[i]]);
    }
    char *out = malloc(length);
    if (!out)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory detokenising");
    /* Joining with spaces and then deleting every space is concatenating without spaces. */
    size_t n = 0;
    const size_t boundary = sizeof WORD_BOUNDARY - 1;
    for (size_t i = 0; i < count; i++) {
        int32_t id = ids[i];
        if (id == tok->specials.bos || id == tok->specials.pad || id == tok->specials.eos)
            continue;
        for (const char *p = tok->pieces[id]; *p;) {
            if (strncmp(p, WORD_BOUNDARY, boundary) == 0) {
                out[n++] = ' ';
                p += boundary;
            } else if (*p == ' ') {
                p++;
            } else {
                out[n++] = *p++;
            }
        }
    }
    /* Python's str.strip(): leading and trailing whitespace. */
    size_t begin = 0;
    while (begin < n && (out[begin] == ' ' || (out[begin] >= '\t' && out[begin] <= '\r')))
        begin++;
    while (n > begin && (out[n - 1] == ' ' || (out[n - 1] >= '\t' && out[n - 1] <= '\r')))
        n--;
    memmove(out, out + begin, n - begin);
    out[n - begin] = '\0';
    *text = out;
    return MTLA_OK;
}

mtla_status mtla_tokenizer_encode(const mtla_tokenizer *tok, const char *text, int32_t **ids,
                                  size_t *count, mtla_error *err)
{
    *ids = NULL;
    *count = 0;
    char **pieces;
    size_t n;
    char message[400];
    if (spm_shim_encode(tok->spm, text, &pieces, &n, message, sizeof message))
        return mtla_fail(err, MTLA_ERR_INTERNAL, "SentencePiece cannot encode the text: %s",
                         message);
    int32_t *out = malloc((n + 1) * sizeof(int32_t));
    if (!out) {
        spm_shim_free_pieces(pieces, n);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory encoding text");
    }
    for (size_t i = 0; i < n; i++) {
        int32_t id = lookup(tok, pieces[i]);
        out[i] = id >= 0 ? id : tok->specials.unk;
    }
    spm_shim_free_pieces(pieces, n);
    *ids = out;
    *count = n;
    return MTLA_OK;
}
