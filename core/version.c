#include "mtla-st.h"

#define MTLA_STRINGIFY2(x) #x
#define MTLA_STRINGIFY(x) MTLA_STRINGIFY2(x)

const char *mtla_version(void)
{
    return MTLA_STRINGIFY(MTLA_ST_VERSION_MAJOR) "." MTLA_STRINGIFY(
        MTLA_ST_VERSION_MINOR) "." MTLA_STRINGIFY(MTLA_ST_VERSION_PATCH);
}
