/* FFTW's planner is not thread-safe: every plan in frontend/ is made and destroyed under this
 * one lock (frontend/fbank.c defines it), so that contexts may be created from separate
 * threads. Executing a plan needs no lock. */
#ifndef MTLA_FRONTEND_FFTW_PLANNER_H
#define MTLA_FRONTEND_FFTW_PLANNER_H

#include <pthread.h>

extern pthread_mutex_t mtla_fftw_planner_lock;

#endif
