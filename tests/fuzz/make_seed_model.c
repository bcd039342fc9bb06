/* Writes the model.safetensors a config.json asks for (every tensor of mtla_model_tensor_specs,
 * F16, small deterministic values), so that tests/fuzz/make_corpus.py can make a model
 * directory seed a few kilobytes long: make_seed_model CONFIG.json OUT.safetensors */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/model_dir.h"

static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *size = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seed_model CONFIG.json OUT.safetensors\n");
        return 2;
    }
    size_t size;
    char *text = read_all(argv[1], &size);
    mtla_model_config config;
    mtla_tensor_spec *specs;
    size_t count;
    mtla_error err;
    if (!text || mtla_model_config_parse(text, size, &config, &err) != MTLA_OK ||
        mtla_model_tensor_specs(&config, &specs, &count, &err) != MTLA_OK) {
        fprintf(stderr, "make_seed_model: %s\n", text ? err.message : "cannot read the config");
        return 1;
    }
    size_t header_cap = 256 * count + 64, header_len = 0;
    char *header = malloc(header_cap);
    uint64_t offset = 0;
    header_len += (size_t)snprintf(header, header_cap, "{");
    for (size_t i = 0; i < count; i++) {
        uint64_t elements = 1;
        char shape[160];
        size_t at = (size_t)snprintf(shape, sizeof shape, "[");
        for (int32_t d = 0; d < specs[i].ndim; d++) {
            elements *= (uint64_t)specs[i].shape[d];
            at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%lld", d ? "," : "",
                                   (long long)specs[i].shape[d]);
        }
        snprintf(shape + at, sizeof shape - at, "]");
        header_len += (size_t)snprintf(
            header + header_len, header_cap - header_len,
            "%s\"%s\":{\"dtype\":\"F16\",\"shape\":%s,\"data_offsets\":[%llu,%llu]}", i ? "," : "",
            specs[i].name, shape, (unsigned long long)offset,
            (unsigned long long)(offset + 2 * elements));
        offset += 2 * elements;
    }
    header_len += (size_t)snprintf(header + header_len, header_cap - header_len, "}");
    while (header_len % 8)
        header[header_len++] = ' ';
    FILE *out = fopen(argv[2], "wb");
    if (!out)
        return 1;
    unsigned char n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    fwrite(n, 1, 8, out);
    fwrite(header, 1, header_len, out);
    /* 0x2E66 is about 0.1 in binary16: small enough for every layer, not zero. Variances
     * (BatchNorm running_var, global CMVN std) get 1.0 (0x3C00) so they stay positive. */
    for (size_t i = 0; i < count; i++) {
        uint64_t elements = 1;
        for (int32_t d = 0; d < specs[i].ndim; d++)
            elements *= (uint64_t)specs[i].shape[d];
        int positive = strstr(specs[i].name, "running_var") || strstr(specs[i].name, "std");
        unsigned char v[2] = {positive ? 0x00 : 0x66, positive ? 0x3C : 0x2E};
        for (uint64_t e = 0; e < elements; e++)
            fwrite(v, 1, 2, out);
    }
    free(header);
    free(specs);
    free(text);
    return fclose(out) == 0 ? 0 : 1;
}
