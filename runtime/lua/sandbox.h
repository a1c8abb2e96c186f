/* sandbox.h - a processor's Lua state: what it may reach, and its limits. */
#ifndef RT_SANDBOX_H
#define RT_SANDBOX_H

#include "processor.h"

/* A new state whose allocator enforces p->limits, and the watchdog that sets the count
 * hook on a call past processor.timeout.ms. NULL when out of memory. */
lua_State *rt_sandbox_newstate(rt_processor *p);
/* Close p->L and let go of the watchdog (the last state to go stops its thread, so
 * that a supervisor forks its workers from a process with one thread). */
void rt_sandbox_close(rt_processor *p);
/* Open the allowed libraries and remove every other global (inside the load's pcall). */
void rt_sandbox_open(lua_State *L, rt_processor *p);
/* Turn the JIT compiler on for this processor (its table says jit = true): its
 * compiled loops can then only be stopped by the supervisor. Raises on failure. */
void rt_sandbox_jit(lua_State *L, rt_processor *p);
/* Arm the deadline for a stretch of Lua that may have run `used_ms` already; the
 * stretch is p->L's, on the calling thread. */
void rt_sandbox_arm(rt_processor *p, int64_t now_ms, int64_t used_ms);
/* The stretch is over: no deadline, and no count hook if the watchdog set one. */
void rt_sandbox_disarm(rt_processor *p);
/* The dead-letter reason and text of the limit the call hit (p->limit). */
void rt_sandbox_limit_reject(const rt_processor *p, rt_reject *why);
/* Count a finished call: limit hits, errors in a row, quarantine. */
void rt_sandbox_count_outcome(rt_processor *p, int rc, const rt_reject *why);

#endif
