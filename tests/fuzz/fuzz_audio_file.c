/* Audio files through libsndfile and libsoxr as mtla-st drives them (frontend/audio.c
 * mtla_audio_open_file, read to the end at 16 kHz): any format libsndfile detects, with a
 * damaged header or body, must end in samples or an error, never a crash. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "mtla-st.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_fresh_dir("audio");
    char *path = fuzz_write_file(dir, "input.audio", data, size);
    mtla_audio *audio = NULL;
    mtla_error err;
    if (mtla_audio_open_file(path, 16000, &audio, &err) == MTLA_OK) {
        float samples[4096];
        size_t count, total = 0;
        /* A damaged length field may promise hours; what a small file holds is read well
         * before this bound, which only keeps a pathological decoder loop finite. */
        while (total < ((size_t)1 << 26) &&
               mtla_audio_read(audio, samples, 4096, &count, &err) == MTLA_OK && count > 0)
            total += count;
        mtla_audio_close(audio);
    }
    free(path);
    return 0;
}
