/* Software prefetch: a hint that the memory at p will soon be read (into the
 * L2 cache). Nothing where the compiler has no such builtin. */
#ifndef SKMLP_PREFETCH_H
#define SKMLP_PREFETCH_H
#if defined(__GNUC__) || defined(__clang__)
#define skmlp_prefetch(p) __builtin_prefetch((p), 0, 2)
#else
#define skmlp_prefetch(p) ((void)(p))
#endif
#endif
