// C interface to SentencePiece (tokenizer/spm_shim.h). Kept to what the C tokenizer needs:
// loading a model and encoding text to pieces. No C++ exception crosses into C.
#include "tokenizer/spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

struct spm_shim {
    sentencepiece::SentencePieceProcessor processor;
};

static void set_message(char *message, size_t size, const std::string &text)
{
    if (message && size > 0)
        std::snprintf(message, size, "%s", text.c_str());
}

extern "C" int spm_shim_load(const char *path, spm_shim **out, char *message, size_t message_size)
{
    *out = nullptr;
    try {
        // Load may throw as well as fail (darts_clone throws on a model with an empty piece):
        // the shim is released either way.
        std::unique_ptr<spm_shim> shim(new spm_shim);
        const auto status = shim->processor.Load(path);
        if (!status.ok()) {
            set_message(message, message_size, status.ToString());
            return -1;
        }
        *out = shim.release();
        return 0;
    } catch (const std::exception &e) {
        set_message(message, message_size, e.what());
        return -1;
    }
}

extern "C" int spm_shim_encode(const spm_shim *shim, const char *text, char ***pieces,
                               size_t *count, char *message, size_t message_size)
{
    *pieces = nullptr;
    *count = 0;
    try {
        std::vector<std::string> encoded;
        const auto status = shim->processor.Encode(text, &encoded);
        if (!status.ok()) {
            set_message(message, message_size, status.ToString());
            return -1;
        }
        char **out = static_cast<char **>(std::calloc(encoded.size() + 1, sizeof(char *)));
        if (!out)
            throw std::bad_alloc();
        for (size_t i = 0; i < encoded.size(); i++) {
            out[i] = static_cast<char *>(std::malloc(encoded[i].size() + 1));
            if (!out[i]) {
                spm_shim_free_pieces(out, i);
                throw std::bad_alloc();
            }
            std::memcpy(out[i], encoded[i].c_str(), encoded[i].size() + 1);
        }
        *pieces = out;
        *count = encoded.size();
        return 0;
    } catch (const std::exception &e) {
        set_message(message, message_size, e.what());
        return -1;
    }
}

extern "C" void spm_shim_free_pieces(char **pieces, size_t count)
{
    if (!pieces)
        return;
    for (size_t i = 0; i < count; i++)
        std::free(pieces[i]);
    std::free(pieces);
}

extern "C" void spm_shim_free(spm_shim *shim) { delete shim; }
